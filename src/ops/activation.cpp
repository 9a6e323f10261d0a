// Activation ops: pointwise nonlinearities (attributes read once per node), PRelu with a
// broadcast slope, Clip in its attribute (opset < 11) and input (opset >= 11) forms, and
// Softmax / LogSoftmax in their opset < 13 (coerce to 2D) and opset >= 13 (single axis) forms.
// Backward: every op here; Relu's and the other pointwise ones' f32 fast form is a parallel
// vectorisable loop, PRelu's slope gradient is summed back to the slope's own shape.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "ops/broadcast.h"
#include "ops/elementwise_kernel.h"

namespace mixq {
namespace {

// Clamps to [0, 1] letting NaN through.
template <class T>
T unit_clamp(T v) {
  return pick(v > T(1), T(1), pick(v < T(0), T(0), v));
}

struct ReluOp {
  static constexpr unsigned types = kFloatTypes | kSignedIntTypes;
  template <class T>
  T operator()(T x) const {
    return pick(x < T(0), T(0), x);
  }
  template <class T>
  T grad(T x, T) const {
    return pick(x > T(0), T(1), T(0));
  }
};
struct LeakyReluOp {
  static constexpr unsigned types = kFloatTypes;
  explicit LeakyReluOp(const Node& node) : alpha(node.get_float("alpha", 0.01f)) {}
  template <class T>
  T operator()(T x) const {
    return pick(x < T(0), static_cast<T>(alpha) * x, x);
  }
  template <class T>
  T grad(T x, T) const {
    return pick(x < T(0), static_cast<T>(alpha), T(1));
  }
  float alpha;
};
// Written so that exp never overflows: exp(-|x|) is at most 1.
struct SigmoidOp {
  static constexpr unsigned types = kFloatTypes;
  template <class T>
  T operator()(T x) const {
    const T e = std::exp(-std::fabs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  }
  // The numerator (1 or e by the sign of x) is chosen with a bit mask so the loop vectorises.
  float fast(float x) const {
    const float e = vexp(-std::fabs(x));
    const uint32_t neg = 0u - (std::bit_cast<uint32_t>(x) >> 31);
    const uint32_t num =
        (std::bit_cast<uint32_t>(e) & neg) | (std::bit_cast<uint32_t>(1.0f) & ~neg);
    return std::bit_cast<float>(num) / (1.0f + e);
  }
  template <class T>
  T grad(T, T y) const {
    return y * (T(1) - y);
  }
};
struct HardSigmoidOp {
  static constexpr unsigned types = kFloatTypes;
  explicit HardSigmoidOp(const Node& node)
      : alpha(node.get_float("alpha", 0.2f)), beta(node.get_float("beta", 0.5f)) {}
  template <class T>
  T operator()(T x) const {
    return unit_clamp(static_cast<T>(alpha) * x + static_cast<T>(beta));
  }
  template <class T>
  T grad(T x, T) const {
    const T v = static_cast<T>(alpha) * x + static_cast<T>(beta);
    return pick((v > T(0)) & (v < T(1)), static_cast<T>(alpha), T(0));
  }
  float alpha, beta;
};
struct HardSwishOp {
  static constexpr unsigned types = kFloatTypes;
  template <class T>
  T operator()(T x) const {
    return x * unit_clamp(x / T(6) + T(0.5));
  }
  // 0 below -3, 1 above 3, x/3 + 1/2 between.
  template <class T>
  T grad(T x, T) const {
    return pick(x < T(-3), T(0), pick(x > T(3), T(1), x / T(3) + T(0.5)));
  }
};
struct EluOp {
  static constexpr unsigned types = kFloatTypes;
  explicit EluOp(const Node& node) : alpha(node.get_float("alpha", 1.0f)) {}
  template <class T>
  T operator()(T x) const {
    return x < T(0) ? static_cast<T>(alpha) * std::expm1(x) : x;
  }
  template <class T>
  T grad(T x, T) const {
    return x < T(0) ? static_cast<T>(alpha) * std::exp(x) : T(1);
  }
  float alpha;
};
struct SeluOp {
  static constexpr unsigned types = kFloatTypes;
  explicit SeluOp(const Node& node)
      : alpha(node.get_float("alpha", 1.67326319217681884765625f)),
        gamma(node.get_float("gamma", 1.05070102214813232421875f)) {}
  template <class T>
  T operator()(T x) const {
    const T g = static_cast<T>(gamma);
    return x > T(0) ? g * x : g * static_cast<T>(alpha) * std::expm1(x);
  }
  template <class T>
  T grad(T x, T) const {
    const T g = static_cast<T>(gamma);
    return x > T(0) ? g : g * static_cast<T>(alpha) * std::exp(x);
  }
  float alpha, gamma;
};
// log(1 + exp(x)) without overflow for large x.
struct SoftplusOp {
  static constexpr unsigned types = kFloatTypes;
  template <class T>
  T operator()(T x) const {
    return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  }
  // The logistic function, written as SigmoidOp so exp never overflows.
  template <class T>
  T grad(T x, T) const {
    return SigmoidOp()(x);
  }
};
struct SoftsignOp {
  static constexpr unsigned types = kFloatTypes;
  template <class T>
  T operator()(T x) const {
    return x / (T(1) + std::fabs(x));
  }
  template <class T>
  T grad(T x, T) const {
    const T d = T(1) + std::fabs(x);
    return T(1) / (d * d);
  }
};
// PRelu as a binary op: the slope is broadcast to the input's shape.
struct PReluOp {
  static constexpr unsigned types = kFloatTypes | kSignedIntTypes;
  // Before opset 7 a [C] slope applied along dimension 1, and models converted from then keep
  // that slope; read it so when numpy broadcasting would reject it, which changes no valid case.
  static Tensor adapt_second(const Tensor& x, const Tensor& slope) {
    if (slope.rank() != 1 || x.rank() < 2 || slope.dim(0) == 1 || slope.dim(0) != x.dim(1) ||
        x.shape().back() == slope.dim(0))
      return slope;
    Shape s(x.rank() - 1, 1);
    s[0] = slope.dim(0);
    return slope.reshaped(s);
  }
  template <class T>
  T operator()(T x, T slope) const {
    return pick(x < T(0), static_cast<T>(wrapping(x) * wrapping(slope)), x);
  }
  template <class T>
  T da(T x, T slope) const {
    return pick(x < T(0), slope, T(1));
  }
  template <class T>
  T db(T x, T) const {
    return pick(x < T(0), x, T(0));
  }
};

// ---- Clip -----------------------------------------------------------------------------------

class ClipKernel : public Kernel {
 public:
  ClipKernel(const Node& node, const Graph& graph, bool fast)
      : where_(node.label()), from_attrs_(graph.opset < 11), fast_(fast) {
    if (from_attrs_) {
      lo_ = node.get_float("min", -std::numeric_limits<float>::infinity());
      hi_ = node.get_float("max", std::numeric_limits<float>::infinity());
    }
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = arg(in, 0, where_);
    Tensor& y = result(out, 0, where_);
    visit_dtype<kNumericTypes>(x.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      // Named variables, not a structured binding: clang before 16 cannot capture bindings.
      const std::pair<T, T> range = bounds<T>(in, x);
      const T lo = range.first, hi = range.second;
      ensure(y, x.dtype(), x.shape());
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const int64_t n = x.numel();
      // As numpy's clip: max(x, lo) then min(., hi), so lo > hi gives hi; NaN stays NaN.
      auto f = [lo, hi](T v) {
        const T t = pick(v < lo, lo, v);
        return pick(t > hi, hi, t);
      };
      if constexpr (std::is_same_v<T, float>) {
        if (fast_) {
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
          for (int64_t i = 0; i < n; ++i) py[i] = f(px[i]);
          return;
        }
      }
      for (int64_t i = 0; i < n; ++i) py[i] = f(px[i]);
    });
  }

  // Following the forward's max-then-min: the gradient goes to max where x > max (or where the
  // bounds cross), to min where x < min, else to x (bounds included). min and max are scalars.
  bool has_backward() const override {
    return true;
  }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& x = arg(in, 0, where_);
    const Tensor& gy = grad_arg(gout, 0, where_);
    Tensor* gx = grad_slot(gin, 0);
    Tensor* glo = !from_attrs_ && optional_input(in, 1) ? grad_slot(gin, 1) : nullptr;
    Tensor* ghi = !from_attrs_ && optional_input(in, 2) ? grad_slot(gin, 2) : nullptr;
    visit_dtype<kFloatTypes>(x.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      auto [lo, hi] = bounds<T>(in, x);
      const T* px = x.data<T>();
      const T* pg = gy.data<T>();
      const int64_t n = x.numel();
      T sum_lo = 0, sum_hi = 0;
      T* pgx = nullptr;
      if (gx) {
        ensure(*gx, x.dtype(), x.shape());
        pgx = gx->data<T>();
      }
      for (int64_t i = 0; i < n; ++i) {
        const T t = px[i] < lo ? lo : px[i];
        const bool to_hi = t > hi, to_lo = !to_hi && px[i] < lo;
        if (pgx) pgx[i] = to_hi || to_lo ? T(0) : pg[i];
        if (to_hi) sum_hi += pg[i];
        if (to_lo) sum_lo += pg[i];
      }
      if (glo) {
        ensure(*glo, x.dtype(), in[1]->shape());
        glo->data<T>()[0] = sum_lo;
      }
      if (ghi) {
        ensure(*ghi, x.dtype(), in[2]->shape());
        ghi->data<T>()[0] = sum_hi;
      }
    });
  }

 private:
  // [lo, hi] from the attributes or the optional inputs; unbounded when absent.
  template <class T>
  std::pair<T, T> bounds(const std::vector<const Tensor*>& in, const Tensor& x) const {
    T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
    if constexpr (std::is_floating_point_v<T>) {
      lo = -std::numeric_limits<T>::infinity();
      hi = std::numeric_limits<T>::infinity();
    }
    if (from_attrs_) {
      lo = saturate_cast<T>(lo_);
      hi = saturate_cast<T>(hi_);
    } else {
      if (optional_input(in, 1)) lo = bound<T>(*in[1], x, "min");
      if (optional_input(in, 2)) hi = bound<T>(*in[2], x, "max");
    }
    return {lo, hi};
  }

  template <class T>
  T bound(const Tensor& t, const Tensor& x, const char* name) const {
    check(t.numel() == 1, where_,
          std::string(name) + " must be a scalar, got shape " + shape_str(t.shape()));
    check(t.dtype() == x.dtype(), where_,
          std::string(name) + " has type " + dtype_name(t.dtype()) + ", input " +
              dtype_name(x.dtype()));
    return t.data<T>()[0];
  }

  std::string where_;
  bool from_attrs_;
  bool fast_;
  float lo_ = 0, hi_ = 0;
};

std::unique_ptr<Kernel> make_clip_ref(const Node& node, const Graph& graph) {
  if (!dtype_in(kNumericTypes, input_dtype(node, graph, 0))) return nullptr;
  return std::make_unique<ClipKernel>(node, graph, false);
}
std::unique_ptr<Kernel> make_clip_fast(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<ClipKernel>(node, graph, true);
}

// ---- Softmax / LogSoftmax -------------------------------------------------------------------

// The input seen as [outer, len, inner]; softmax runs along len. Stable: the maximum along len
// is subtracted before exp.
template <bool Log, class T>
void softmax_reference(const T* x, T* y, int64_t outer, int64_t len, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const T* px = x + o * len * inner + i;
      T* py = y + o * len * inner + i;
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t j = 0; j < len; ++j) m = std::max(m, px[j * inner]);
      T sum = 0;
      for (int64_t j = 0; j < len; ++j) sum += std::exp(px[j * inner] - m);
      const T log_sum = std::log(sum);
      for (int64_t j = 0; j < len; ++j) {
        const T d = px[j * inner] - m;
        py[j * inner] = Log ? d - log_sum : std::exp(d) / sum;
      }
    }
}

// Same with OpenMP over rows, or over (outer, block of inner) when the axis is not innermost so
// that the inner loops run over contiguous memory.
template <bool Log>
void softmax_fast(const float* x, float* y, int64_t outer, int64_t len, int64_t inner) {
  const bool par = outer * len * inner >= kParallelMin;
  if (inner == 1) {
#pragma omp parallel for if (par) schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      const float* px = x + o * len;
      float* py = y + o * len;
      float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
      for (int64_t j = 0; j < len; ++j) m = std::max(m, px[j]);
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < len; ++j) {
        py[j] = vexp(px[j] - m);
        sum += py[j];
      }
      if constexpr (Log) {
        // (x - m) - log(sum), not x - (m + log(sum)): the latter rounds at the scale of m.
        const float log_sum = std::log(sum);
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) py[j] = (px[j] - m) - log_sum;
      } else {
        const float scale = 1.0f / sum;
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) py[j] *= scale;
      }
    }
    return;
  }
  constexpr int64_t kBlock = 256;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
#pragma omp parallel for if (par) schedule(static)
  for (int64_t task = 0; task < outer * blocks; ++task) {
    const int64_t o = task / blocks, i0 = task % blocks * kBlock;
    const int64_t w = std::min(kBlock, inner - i0);
    const float* px = x + o * len * inner + i0;
    float* py = y + o * len * inner + i0;
    float m[kBlock], s[kBlock];
    std::fill(m, m + w, -std::numeric_limits<float>::infinity());
    std::fill(s, s + w, 0.0f);
    for (int64_t j = 0; j < len; ++j) {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) m[i] = std::max(m[i], px[j * inner + i]);
    }
    for (int64_t j = 0; j < len; ++j) {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i) {
        py[j * inner + i] = vexp(px[j * inner + i] - m[i]);
        s[i] += py[j * inner + i];
      }
    }
    for (int64_t i = 0; i < w; ++i) s[i] = Log ? std::log(s[i]) : 1.0f / s[i];
    for (int64_t j = 0; j < len; ++j) {
#pragma omp simd
      for (int64_t i = 0; i < w; ++i)
        py[j * inner + i] = Log ? (px[j * inner + i] - m[i]) - s[i] : py[j * inner + i] * s[i];
    }
  }
}

template <bool Log>
class SoftmaxKernel : public Kernel {
 public:
  SoftmaxKernel(const Node& node, const Graph& graph, bool fast)
      : where_(node.label()),
        coerce_2d_(graph.opset < 13),
        axis_(node.get_int("axis", graph.opset < 13 ? 1 : -1)),
        fast_(fast) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = arg(in, 0, where_);
    Tensor& y = result(out, 0, where_);
    // Named variables, not a structured binding: clang before 16 cannot capture bindings.
    const std::array<int64_t, 3> v = view(x.shape());
    const int64_t outer = v[0], len = v[1], inner = v[2];
    visit_dtype<kFloatTypes>(x.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(y, x.dtype(), x.shape());
      if constexpr (std::is_same_v<T, float>)
        if (fast_) return softmax_fast<Log>(x.data<T>(), y.data<T>(), outer, len, inner);
      softmax_reference<Log, T>(x.data<T>(), y.data<T>(), outer, len, inner);
    });
  }

  // From the output y along the softmax axis: Softmax gx = y (gy - sum gy y), LogSoftmax
  // gx = gy - exp(y) sum gy.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    Tensor* gx = grad_slot(gin, 0);
    if (!gx) return;
    const Tensor& x = arg(in, 0, where_);
    const Tensor& y = arg(out, 0, where_);
    const Tensor& gy = grad_arg(gout, 0, where_);
    // Named variables, not a structured binding: clang before 16 cannot capture bindings.
    const std::array<int64_t, 3> v = view(x.shape());
    const int64_t outer = v[0], len = v[1], inner = v[2];
    visit_dtype<kFloatTypes>(x.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(*gx, x.dtype(), x.shape());
      const T* py = y.data<T>();
      const T* pg = gy.data<T>();
      T* pgx = gx->data<T>();
#pragma omp parallel for if (outer * len * inner >= kParallelMin) schedule(static)
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t base = o * len * inner + i;
          T sum = 0;
          for (int64_t j = 0; j < len; ++j) {
            const int64_t k = base + j * inner;
            sum += Log ? pg[k] : pg[k] * py[k];
          }
          for (int64_t j = 0; j < len; ++j) {
            const int64_t k = base + j * inner;
            pgx[k] = Log ? pg[k] - std::exp(py[k]) * sum : py[k] * (pg[k] - sum);
          }
        }
    });
  }

 private:
  // The input seen as [outer, len, inner], softmax running along len.
  std::array<int64_t, 3> view(const Shape& s) const {
    const int64_t r = static_cast<int64_t>(s.size());
    const int64_t a = axis_ < 0 ? axis_ + r : axis_;
    check(a >= 0 && a < r, where_,
          "axis " + std::to_string(axis_) + " out of range for rank " + std::to_string(r));
    int64_t outer = 1, len = 1, inner = 1;
    for (int64_t d = 0; d < a; ++d) outer *= s[d];
    if (coerce_2d_) {
      for (int64_t d = a; d < r; ++d) len *= s[d];
    } else {
      len = s[a];
      for (int64_t d = a + 1; d < r; ++d) inner *= s[d];
    }
    return {outer, len, inner};
  }

  std::string where_;
  bool coerce_2d_;
  int64_t axis_;
  bool fast_;
};

template <bool Log>
std::unique_ptr<Kernel> make_softmax_ref(const Node& node, const Graph& graph) {
  if (!dtype_in(kFloatTypes, input_dtype(node, graph, 0))) return nullptr;
  return std::make_unique<SoftmaxKernel<Log>>(node, graph, false);
}
template <bool Log>
std::unique_ptr<Kernel> make_softmax_fast(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<SoftmaxKernel<Log>>(node, graph, true);
}

}  // namespace

void register_activation_ops(Registry& r) {
  add_unary<ReluOp>(r, "Relu", true);
  add_unary<LeakyReluOp>(r, "LeakyRelu", true);
  add_unary<SigmoidOp>(r, "Sigmoid", true);
  add_unary<HardSigmoidOp>(r, "HardSigmoid", true);
  add_unary<HardSwishOp>(r, "HardSwish", true);
  add_unary<EluOp>(r, "Elu", true);
  add_unary<SeluOp>(r, "Selu", true);
  add_unary<SoftplusOp>(r, "Softplus", true);
  add_unary<SoftsignOp>(r, "Softsign", true);
  r.add("PRelu", "fast", &make_binary_fast<PReluOp, true>, false);
  r.add("PRelu", "ref", &make_binary_ref<PReluOp, true>, true);
  r.add("Clip", "fast", &make_clip_fast, false);
  r.add("Clip", "ref", &make_clip_ref, true);
  r.add("Softmax", "fast", &make_softmax_fast<false>, false);
  r.add("Softmax", "ref", &make_softmax_ref<false>, true);
  r.add("LogSoftmax", "fast", &make_softmax_fast<true>, false);
  r.add("LogSoftmax", "ref", &make_softmax_ref<true>, true);
}

}  // namespace mixq
