// Elementwise binary ops: arithmetic with numpy broadcasting, variadic Max/Min/Sum/Mean,
// comparisons, logic and Where (the unary math functions are in elementwise_unary.cpp). Integer
// arithmetic wraps (no undefined behaviour on overflow) and integer Div truncates like C;
// division by zero throws naming the node. Backward (float types): the arithmetic, Pow (base and
// exponent), Max / Min (to the selected input), Sum, Mean and Where; comparisons and logic have
// none.
#include <cmath>
#include <cstring>

#include "ops/broadcast.h"
#include "ops/elementwise_kernel.h"

namespace mixq {
namespace {

// ---- binary ops -----------------------------------------------------------------------------

struct AddOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T a, T b) const {
    return static_cast<T>(wrapping(a) + wrapping(b));
  }
  template <class T>
  T da(T, T) const {
    return T(1);
  }
  template <class T>
  T db(T, T) const {
    return T(1);
  }
};
struct SubOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T a, T b) const {
    return static_cast<T>(wrapping(a) - wrapping(b));
  }
  template <class T>
  T da(T, T) const {
    return T(1);
  }
  template <class T>
  T db(T, T) const {
    return T(-1);
  }
};
struct MulOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T a, T b) const {
    return static_cast<T>(wrapping(a) * wrapping(b));
  }
  template <class T>
  T da(T, T b) const {
    return b;
  }
  template <class T>
  T db(T a, T) const {
    return a;
  }
};
struct DivOp {
  static constexpr unsigned types = kNumericTypes;
  explicit DivOp(const Node& node) : where(node.label()) {}
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) throw Error(where, "integer division by zero");
      if constexpr (std::is_signed_v<T>)
        if (b == -1) return static_cast<T>(0 - wrapping(a));  // INT_MIN / -1 wraps
    }
    return static_cast<T>(a / b);
  }
  template <class T>
  T da(T, T b) const {
    return T(1) / b;
  }
  template <class T>
  T db(T a, T b) const {
    return -a / (b * b);
  }
  std::string where;
};
template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return v != v;
  else
    return false;
}
// NaN in either operand gives NaN, as numpy's maximum / minimum. Ties select the first operand,
// and the gradient goes to the selected operand alone.
// Max (Larger true) and Min share everything but which operand wins.
template <bool Larger>
struct ExtremumOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  static bool second(T a, T b) {
    return (Larger ? a < b : b < a) | is_nan(b);
  }
  template <class T>
  T operator()(T a, T b) const {
    return pick(second(a, b), b, a);
  }
  template <class T>
  T da(T a, T b) const {
    return pick(second(a, b), T(0), T(1));
  }
  template <class T>
  T db(T a, T b) const {
    return pick(second(a, b), T(1), T(0));
  }
};
using MaxOp = ExtremumOp<true>;
using MinOp = ExtremumOp<false>;

struct EqualOp {
  static constexpr unsigned types = kAllTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a == b;
  }
};
struct LessOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a < b;
  }
};
struct GreaterOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a > b;
  }
};
struct LessOrEqualOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a <= b;
  }
};
struct GreaterOrEqualOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a >= b;
  }
};
struct AndOp {
  static constexpr unsigned types = kBoolTypes;
  bool operator()(bool a, bool b) const { return a && b; }
};
struct OrOp {
  static constexpr unsigned types = kBoolTypes;
  bool operator()(bool a, bool b) const { return a || b; }
};
struct XorOp {
  static constexpr unsigned types = kBoolTypes;
  bool operator()(bool a, bool b) const { return a != b; }
};

// x ** e. Integer powers are exact (wrapping) by squaring; a negative integer exponent and any
// float operand go through double and convert back to x's type, saturating for integers.
template <class T, class U>
T pow_value(T x, U e) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<U, float>) {
    return std::pow(x, e);
  } else if constexpr (std::is_integral_v<T> && std::is_integral_v<U>) {
    if (e < 0) return saturate_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(e)));
    auto base = wrapping(x);
    decltype(base) acc = 1;
    for (auto n = static_cast<uint64_t>(e); n; n >>= 1) {
      if (n & 1) acc *= base;
      base *= base;
    }
    return static_cast<T>(acc);
  } else {
    return saturate_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(e)));
  }
}

// Pow: the exponent may have another type than the base (opset 12+); the result has the base's.
class PowKernel : public Kernel {
 public:
  PowKernel(const Node& node, bool fast) : where_(node.label()), fast_(fast) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = arg(in, 0, where_);
    const Tensor& e = arg(in, 1, where_);
    Tensor& y = result(out, 0, where_);
    Shape shape = broadcast_all({x.shape(), e.shape()}, where_);
    visit_dtype<kNumericTypes>(x.dtype(), where_, [&](auto xt) {
      using T = typename decltype(xt)::type;
      visit_dtype<kNumericTypes>(e.dtype(), where_, [&](auto et) {
        using U = typename decltype(et)::type;
        ensure(y, x.dtype(), shape);
        auto f = [](T a, U b) { return pow_value<T, U>(a, b); };
        if constexpr (std::is_same_v<T, float> && std::is_same_v<U, float>)
          if (fast_ && binary_fast_f32<float>(x, e, y, f)) return;
        binary_reference<T, U, T>(x, e, y, f);
      });
    });
  }

  // d/dx = e x^(e-1); d/de = x^e log x, taken as 0 where x <= 0 (no real logarithm). An integer
  // exponent gets no gradient; an integer base none at all.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& x = arg(in, 0, where_);
    const Tensor& e = arg(in, 1, where_);
    const Tensor& gy = grad_arg(gout, 0, where_);
    Tensor* gx = grad_slot(gin, 0);
    Tensor* ge = grad_slot(gin, 1);
    visit_dtype<kFloatTypes>(x.dtype(), where_, [&](auto xt) {
      using T = typename decltype(xt)::type;
      visit_dtype<kNumericTypes>(e.dtype(), where_, [&](auto et) {
        using U = typename decltype(et)::type;
        auto dx = [](T a, U b) {
          const T p = static_cast<T>(b);
          return p * static_cast<T>(std::pow(a, p - T(1)));
        };
        auto de = [](T a, U b) -> U {
          if constexpr (std::is_floating_point_v<U>) {
            if (!(a > T(0))) return U(0);
            const U la = static_cast<U>(a);
            return std::pow(la, b) * std::log(la);
          } else {
            return U(0);
          }
        };
        binary_backward_reference<T, U>(x, e, gy, gx, std::is_floating_point_v<U> ? ge : nullptr,
                                        dx, de);
      });
    });
  }

 private:
  std::string where_;
  bool fast_;
};

std::unique_ptr<Kernel> make_pow_ref(const Node& node, const Graph& graph) {
  if (!dtype_in(kNumericTypes, input_dtype(node, graph, 0)) ||
      !dtype_in(kNumericTypes, input_dtype(node, graph, 1)))
    return nullptr;
  return std::make_unique<PowKernel>(node, false);
}
std::unique_ptr<Kernel> make_pow_fast(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32 || input_dtype(node, graph, 1) != DType::f32)
    return nullptr;
  return std::make_unique<PowKernel>(node, true);
}

// Max, Min, Sum, Mean over one or more inputs, all broadcast together; folded left to right.
template <class Op, bool Mean>
class VariadicKernel : public Kernel {
 public:
  static constexpr unsigned types = Mean ? kFloatTypes : Op::types;
  explicit VariadicKernel(const Node& node) : where_(node.label()), op_(make_op<Op>(node)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    check(!in.empty(), where_, "needs at least one input");
    std::vector<Shape> shapes;
    for (size_t i = 0; i < in.size(); ++i) {
      const Tensor& t = arg(in, i, where_);
      check(t.dtype() == in[0]->dtype(), where_,
            std::string("input types differ: ") + dtype_name(in[0]->dtype()) + " and " +
                dtype_name(t.dtype()));
      shapes.push_back(t.shape());
    }
    Shape shape = broadcast_all(shapes, where_);
    Tensor& y = result(out, 0, where_);
    visit_dtype<types>(in[0]->dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(y, in[0]->dtype(), shape);
      binary_reference<T, T, T>(y, *in[0], y, [](T, T b) { return b; });  // y = in[0]
      for (size_t i = 1; i < in.size(); ++i) binary_reference<T, T, T>(y, *in[i], y, op_);
      if constexpr (Mean) {
        T* p = y.data<T>();
        const T n = static_cast<T>(in.size());
        for (int64_t i = 0; i < y.numel(); ++i) p[i] /= n;
      }
    });
  }

  // Sum and Mean pass the gradient to every input (scaled by 1/n for Mean); Max and Min to the
  // input each output element came from (the first one on ties, as the forward fold keeps it).
  static constexpr bool kSelects = requires { Op::second(0.0, 0.0); };
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& gy = grad_arg(gout, 0, where_);
    const Shape& shape = arg(out, 0, where_).shape();
    visit_dtype<types & kFloatTypes>(arg(in, 0, where_).dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      std::vector<uint32_t> from;  // for Max / Min: index of the selected input per element
      if constexpr (kSelects) from = selected<T>(in, shape);
      for (size_t k = 0; k < in.size(); ++k) {
        Tensor* g = grad_slot(gin, k);
        if (!g) continue;
        if constexpr (kSelects) {
          zeros<T>(*g, in[k]->shape());
          if (gy.numel() == 0) continue;
          BroadcastLoop loop(shape, {in[k]->shape()});
          const T* pg = gy.data<T>();
          T* r = g->data<T>();
          const int64_t n = loop.row_len(), s = loop.step(0);
          loop.for_each_row([&](int64_t o, const int64_t* off) {
            for (int64_t i = 0; i < n; ++i)
              if (from[o + i] == k) r[off[0] + i * s] += pg[o + i];
          });
        } else {
          reduce_to_shape<T>(gy, in[k]->shape(), *g);
          if constexpr (Mean) {
            T* r = g->data<T>();
            const T inv = T(1) / static_cast<T>(in.size());
            for (int64_t i = 0; i < g->numel(); ++i) r[i] *= inv;
          }
        }
      }
    });
  }

 private:
  // For each output element, the index of the input the fold took it from.
  template <class T>
  std::vector<uint32_t> selected(const std::vector<const Tensor*>& in, const Shape& shape) const;

  std::string where_;
  Op op_;
};

template <class Op, bool Mean>
template <class T>
std::vector<uint32_t> VariadicKernel<Op, Mean>::selected(const std::vector<const Tensor*>& in,
                                                         const Shape& shape) const {
  const int64_t total = shape_numel(shape);
  std::vector<uint32_t> from(total, 0);
  std::vector<T> best(total);
  for (size_t k = 0; k < in.size(); ++k) {
    if (total == 0) break;
    BroadcastLoop loop(shape, {in[k]->shape()});
    const T* p = in[k]->data<T>();
    const int64_t n = loop.row_len(), s = loop.step(0);
    loop.for_each_row([&](int64_t o, const int64_t* off) {
      for (int64_t i = 0; i < n; ++i) {
        const T v = p[off[0] + i * s];
        if (k == 0 || Op::second(best[o + i], v)) {
          best[o + i] = v;
          from[o + i] = static_cast<uint32_t>(k);
        }
      }
    });
  }
  return from;
}

template <class Op, bool Mean>
std::unique_ptr<Kernel> make_variadic(const Node& node, const Graph& graph) {
  if (!dtype_in(VariadicKernel<Op, Mean>::types, input_dtype(node, graph, 0))) return nullptr;
  return std::make_unique<VariadicKernel<Op, Mean>>(node);
}

// Where(cond, x, y): three-way broadcast; x and y of any one type.
class WhereKernel : public Kernel {
 public:
  explicit WhereKernel(const Node& node) : where_(node.label()) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& c = arg(in, 0, where_);
    const Tensor& a = arg(in, 1, where_);
    const Tensor& b = arg(in, 2, where_);
    check(c.dtype() == DType::boolean, where_,
          std::string("condition must be bool, got ") + dtype_name(c.dtype()));
    check(a.dtype() == b.dtype(), where_,
          std::string("input types differ: ") + dtype_name(a.dtype()) + " and " +
              dtype_name(b.dtype()));
    Shape shape = broadcast_all({c.shape(), a.shape(), b.shape()}, where_);
    Tensor& y = result(out, 0, where_);
    visit_dtype<kAllTypes>(a.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(y, a.dtype(), shape);
      BroadcastLoop loop(shape, {c.shape(), a.shape(), b.shape()});
      const bool* pc = c.data<bool>();
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* py = y.data<T>();
      const int64_t n = loop.row_len(), sc = loop.step(0), sa = loop.step(1), sb = loop.step(2);
      loop.for_each_row([&](int64_t o, const int64_t* off) {
        for (int64_t i = 0; i < n; ++i)
          py[o + i] = pc[off[0] + i * sc] ? pa[off[1] + i * sa] : pb[off[2] + i * sb];
      });
    });
  }

  // The gradient goes to X where the condition holds and to Y elsewhere; none to the condition.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& c = arg(in, 0, where_);
    const Tensor& a = arg(in, 1, where_);
    const Tensor& b = arg(in, 2, where_);
    const Tensor& gy = grad_arg(gout, 0, where_);
    Tensor* ga = grad_slot(gin, 1);
    Tensor* gb = grad_slot(gin, 2);
    visit_dtype<kFloatTypes>(a.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if (ga) zeros<T>(*ga, a.shape());
      if (gb) zeros<T>(*gb, b.shape());
      if (gy.numel() == 0) return;
      BroadcastLoop loop(gy.shape(), {c.shape(), a.shape(), b.shape()});
      const bool* pc = c.data<bool>();
      const T* pg = gy.data<T>();
      T* pa = ga ? ga->data<T>() : nullptr;
      T* pb = gb ? gb->data<T>() : nullptr;
      const int64_t n = loop.row_len(), sc = loop.step(0), sa = loop.step(1), sb = loop.step(2);
      loop.for_each_row([&](int64_t o, const int64_t* off) {
        for (int64_t i = 0; i < n; ++i) {
          if (pc[off[0] + i * sc]) {
            if (pa) pa[off[1] + i * sa] += pg[o + i];
          } else if (pb) {
            pb[off[2] + i * sb] += pg[o + i];
          }
        }
      });
    });
  }

 private:
  std::string where_;
};

std::unique_ptr<Kernel> make_where(const Node& node, const Graph&) {
  return std::make_unique<WhereKernel>(node);
}

template <class Op>
void add_binary(Registry& r, const std::string& op_type, bool with_fast) {
  if (with_fast) r.add(op_type, "fast", &make_binary_fast<Op>, false);
  r.add(op_type, "ref", &make_binary_ref<Op>, true);
}

}  // namespace

void register_elementwise_ops(Registry& r) {
  add_binary<AddOp>(r, "Add", true);
  add_binary<SubOp>(r, "Sub", true);
  add_binary<MulOp>(r, "Mul", true);
  add_binary<DivOp>(r, "Div", true);
  r.add("Pow", "fast", &make_pow_fast, false);
  r.add("Pow", "ref", &make_pow_ref, true);
  // The variadic ops take the binary fast path when given exactly two f32 inputs.
  r.add("Max", "fast", &make_binary_fast<MaxOp>, false);
  r.add("Max", "ref", &make_variadic<MaxOp, false>, true);
  r.add("Min", "fast", &make_binary_fast<MinOp>, false);
  r.add("Min", "ref", &make_variadic<MinOp, false>, true);
  r.add("Sum", "fast", &make_binary_fast<AddOp>, false);
  r.add("Sum", "ref", &make_variadic<AddOp, false>, true);
  r.add("Mean", "ref", &make_variadic<AddOp, true>, true);

  add_binary<EqualOp>(r, "Equal", false);
  add_binary<LessOp>(r, "Less", false);
  add_binary<GreaterOp>(r, "Greater", false);
  add_binary<LessOrEqualOp>(r, "LessOrEqual", false);
  add_binary<GreaterOrEqualOp>(r, "GreaterOrEqual", false);
  add_binary<AndOp>(r, "And", false);
  add_binary<OrOp>(r, "Or", false);
  add_binary<XorOp>(r, "Xor", false);
  r.add("Where", "ref", &make_where, true);
}

}  // namespace mixq
