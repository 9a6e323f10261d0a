// Mod and CumSum.
// Mod with numpy broadcasting: fmod = 0 (integers only) takes the sign of the divisor like
// Python's %, fmod = 1 the sign of the dividend like C's fmod; integer division by zero throws
// naming the node, and floats require fmod = 1 as the specification says. No backward.
// CumSum along the axis given as an input (scalar, negative counts from the back), inclusive or
// exclusive, forward or reverse. Backward (float data): the cumulative sum of the gradient in
// the opposite direction with the same exclusivity; the axis gets none.
#include <cmath>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/elementwise_kernel.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

struct ModOp {
  static constexpr unsigned types = kNumericTypes;
  explicit ModOp(const Node& node) : where(node.label()), fmod(node.get_int("fmod", 0) != 0) {}
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (!fmod) throw Error(where, "fmod must be 1 for floating-point inputs");
      return std::fmod(a, b);
    } else {
      if (b == 0) throw Error(where, "integer modulo by zero");
      if constexpr (std::is_signed_v<T>) {
        if (b == -1) return T(0);  // INT_MIN % -1 overflows in C
        T r = static_cast<T>(a % b);
        if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
        return r;
      } else {
        return static_cast<T>(a % b);
      }
    }
  }
  std::string where;
  bool fmod;
};

class CumSum final : public Kernel {
 public:
  CumSum(const Node& node, const Graph&)
      : node_(node),
        exclusive_(node.get_int("exclusive", 0) != 0),
        reverse_(node.get_int("reverse", 0) != 0) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Layout l = layout(x, in);
    ensure(*out.at(0), x.dtype(), x.shape());
    visit_dtype<kNumericTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      scan<T>(x.data<T>(), out[0]->data<T>(), l, reverse_);
    });
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    (void)out;
    Tensor* gx = grad_slot(gin, 0);
    if (!gx) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& gy = grad_arg(gout, 0, node_.label());
    check(gy.shape() == x.shape() && gy.dtype() == x.dtype(), node_.label(),
          "gradient has the wrong type or shape");
    const Layout l = layout(x, in);
    visit_dtype<kFloatTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(*gx, x.dtype(), x.shape());
      scan<T>(gy.data<T>(), gx->data<T>(), l, !reverse_);
    });
  }

 private:
  struct Layout {
    int64_t outer = 1, dim = 1, inner = 1;
  };

  Layout layout(const Tensor& x, const std::vector<const Tensor*>& in) const {
    const Tensor& axis = required_input(in, 1, node_);
    check(axis.numel() == 1 && axis.rank() <= 1, node_.label(),
          "axis must hold a single value, got shape " + shape_str(axis.shape()));
    check(axis.dtype() == DType::i64 || axis.dtype() == DType::i32, node_.label(),
          std::string("axis must be int32 or int64, got ") + dtype_name(axis.dtype()));
    check(x.rank() >= 1, node_.label(), "input must have rank >= 1");
    const size_t a = static_cast<size_t>(normalize_axis(axis.get_int(0), x.rank(), node_));
    Layout l;
    l.dim = x.dim(a);
    for (size_t d = 0; d < a; ++d) l.outer *= x.dim(d);
    for (size_t d = a + 1; d < x.rank(); ++d) l.inner *= x.dim(d);
    return l;
  }

  template <class T>
  void scan(const T* src, T* dst, const Layout& l, bool reverse) const {
    for (int64_t o = 0; o < l.outer; ++o)
      for (int64_t j = 0; j < l.inner; ++j) {
        T acc = T(0);
        for (int64_t s = 0; s < l.dim; ++s) {
          const int64_t i = reverse ? l.dim - 1 - s : s;
          const int64_t e = (o * l.dim + i) * l.inner + j;
          const T v = src[e];
          if (exclusive_) dst[e] = acc;
          acc = static_cast<T>(wrapping(acc) + wrapping(v));
          if (!exclusive_) dst[e] = acc;
        }
      }
  }

  Node node_;
  bool exclusive_, reverse_;
};

}  // namespace

void register_math_ops(Registry& r) {
  r.add("Mod", "ref", make_binary_ref<ModOp>, true);
  r.add("CumSum", "ref", make_kernel<CumSum>, true);
}

}  // namespace mixq
