// Shared machinery of the elementwise op families (elementwise.cpp, activation.cpp): dtype sets
// and dispatch, numpy broadcasting walked row by row, vectorisable float helpers (pick, vexp),
// and the unary / binary kernel templates.
// Every kernel here has one reference loop (the specification) and, when built as the fast
// implementation, f32 OpenMP loops for the common layouts that fall back to the reference loop
// for anything else, so a fast kernel is always correct whatever shapes it meets at run time.
// Backward passes follow the same pattern: ops declare their derivatives (grad for unary ops,
// da / db for binary ones) and the templates sum gradients back over broadcast dimensions;
// the zero / reduce helpers also serve the shape ops' backward passes.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "ops/common.h"
#include "ops/kernel.h"
#include "tensor/tensor.h"

namespace mixq {

// ---- dtype sets and dispatch ----------------------------------------------------------------

constexpr unsigned dtype_bit(DType t) {
  return 1u << static_cast<unsigned>(t);
}
inline constexpr unsigned kFloatTypes = dtype_bit(DType::f32) | dtype_bit(DType::f64);
inline constexpr unsigned kSignedIntTypes =
    dtype_bit(DType::i64) | dtype_bit(DType::i32) | dtype_bit(DType::i16) | dtype_bit(DType::i8);
inline constexpr unsigned kIntTypes = kSignedIntTypes | dtype_bit(DType::u8);
inline constexpr unsigned kNumericTypes = kFloatTypes | kIntTypes;
inline constexpr unsigned kBoolTypes = dtype_bit(DType::boolean);
inline constexpr unsigned kAllTypes = kNumericTypes | kBoolTypes;

inline bool dtype_in(unsigned types, DType t) {
  return (types & dtype_bit(t)) != 0;
}

namespace detail {
template <unsigned Types, class T, class F>
void visit_one(F& f) {
  if constexpr ((Types & dtype_bit(dtype_of<T>())) != 0) f(TypeTag<T>{});
}
}  // namespace detail

// Calls f(TypeTag<T>{}) with the C++ type of t; throws Error(where) when t is not in Types.
// Only the types in Types are instantiated, so f may use operations they alone support.
template <unsigned Types, class F>
void visit_dtype(DType t, const std::string& where, F&& f) {
  check(dtype_in(Types, t), where, std::string("unsupported input type ") + dtype_name(t));
  switch (t) {
    case DType::f32:
      return detail::visit_one<Types, float>(f);
    case DType::f64:
      return detail::visit_one<Types, double>(f);
    case DType::i64:
      return detail::visit_one<Types, int64_t>(f);
    case DType::i32:
      return detail::visit_one<Types, int32_t>(f);
    case DType::i16:
      return detail::visit_one<Types, int16_t>(f);
    case DType::i8:
      return detail::visit_one<Types, int8_t>(f);
    case DType::u8:
      return detail::visit_one<Types, uint8_t>(f);
    case DType::boolean:
      return detail::visit_one<Types, bool>(f);
  }
}

// Converts a double to T: saturating for integers (NaN becomes 0) so no input can trigger the
// undefined behaviour of an out-of-range float-to-int conversion.
template <class T>
T saturate_cast(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  }
}

// Integer operands widened to the unsigned type of their promotion, so +, -, * wrap instead of
// overflowing; floats pass through.
template <class T>
auto wrapping(T v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<std::make_unsigned_t<decltype(v + v)>>(v);
  else
    return v;
}

// c ? a : b. For float it blends bit patterns with a mask: GCC does not if-convert a float
// select whose operands are float arithmetic (they might trap under the default trapping math),
// so a plain ?: would keep loops using it from vectorising.
template <class T>
T pick(bool c, T a, T b) {
  if constexpr (std::is_same_v<T, float>) {
    const uint32_t m = 0u - static_cast<uint32_t>(c);
    return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & m) |
                                (std::bit_cast<uint32_t>(b) & ~m));
  } else {
    return c ? a : b;
  }
}

// ---- kernel argument helpers ----------------------------------------------------------------

inline const Tensor& arg(const std::vector<const Tensor*>& in, size_t i, const std::string& where) {
  check(i < in.size() && in[i] != nullptr, where, "missing required input " + std::to_string(i));
  return *in[i];
}
inline Tensor& result(const std::vector<Tensor*>& out, size_t i, const std::string& where) {
  check(i < out.size() && out[i] != nullptr, where, "missing output " + std::to_string(i));
  return *out[i];
}

// ---- broadcasting ---------------------------------------------------------------------------

// Numpy broadcast of any number of shapes; throws Error(where) naming them when incompatible.
Shape broadcast_all(const std::vector<Shape>& shapes, const std::string& where);

// Walks a broadcast output in rows. Output dimensions of size 1 are dropped and adjacent
// dimensions that are contiguous for every operand merged, so rows are as long as possible;
// within a row each operand either advances by one element or stays put (stride 0).
class BroadcastLoop {
 public:
  // Each of `ins` must broadcast to `out` (checked by the caller with broadcast_all).
  BroadcastLoop(const Shape& out, const std::vector<Shape>& ins);

  int64_t row_len() const { return row_len_; }
  int64_t rows() const { return rows_; }
  // 1 when operand k advances along a row, 0 when it is broadcast.
  int64_t step(size_t k) const { return step_[k]; }

  // Calls f(out_offset, in_offsets) at the start of every row, in output order.
  template <class F>
  void for_each_row(F&& f) const {
    const size_t k = step_.size(), d = dims_.size();
    std::vector<int64_t> idx(d, 0), off(k, 0);
    for (int64_t r = 0; r < rows_; ++r) {
      f(r * row_len_, off.data());
      for (size_t j = d; j-- > 0;) {
        for (size_t i = 0; i < k; ++i) off[i] += strides_[i * d + j];
        if (++idx[j] < dims_[j]) break;
        for (size_t i = 0; i < k; ++i) off[i] -= strides_[i * d + j] * dims_[j];
        idx[j] = 0;
      }
    }
  }

 private:
  std::vector<int64_t> dims_;     // outer (row-indexing) dimensions after merging
  std::vector<int64_t> strides_;  // [operand][outer dim]
  std::vector<int64_t> step_;
  int64_t row_len_ = 1;
  int64_t rows_ = 1;
};

// y = f(a, b) elementwise with broadcasting; y is already sized to the broadcast shape.
// y may be the same tensor as a (in-place accumulation).
template <class A, class B, class R, class F>
void binary_reference(const Tensor& a, const Tensor& b, Tensor& y, F f) {
  BroadcastLoop loop(y.shape(), {a.shape(), b.shape()});
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  R* py = y.data<R>();
  const int64_t n = loop.row_len(), sa = loop.step(0), sb = loop.step(1);
  loop.for_each_row([&](int64_t o, const int64_t* off) {
    const A* ra = pa + off[0];
    const B* rb = pb + off[1];
    R* ry = py + o;
    for (int64_t i = 0; i < n; ++i) ry[i] = f(ra[i * sa], rb[i * sb]);
  });
}

// ---- fast f32 loops -------------------------------------------------------------------------

// Below this many elements a parallel region costs more than it saves.
inline constexpr int64_t kParallelMin = 1 << 15;

// exp for f32 written so that GCC vectorises it without -ffast-math: no calls, and the clamps
// and NaN handling are selects on the bit patterns (GCC will not if-convert float selects feeding
// float arithmetic under the default trapping math). Rounds to a multiple of ln 2, Cody-Waite
// reduction, Cephes' degree-6 polynomial, then scales by 2^n as two factors, which overflows to
// +inf and underflows through the denormals to 0 by itself. Within 2 ulp of std::exp.
inline float vexp(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  // Clamp to [-110, 100], which keeps n in the range of the two scale factors: below -110 (also
  // -inf and negative NaN) is the largest unsigned patterns, above 100 the largest signed ones.
  const uint32_t lo = bits > 0xc2dc0000u ? 0xc2dc0000u : bits;
  const int32_t clamped =
      static_cast<int32_t>(lo) > 0x42c80000 ? 0x42c80000 : static_cast<int32_t>(lo);
  const float c = std::bit_cast<float>(clamped);
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (c * 1.44269504088896341f + magic) - magic;
  const float r = (c - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t k = static_cast<int32_t>(n), k1 = k >> 1, k2 = k - k1;
  const float y =
      e * std::bit_cast<float>((k1 + 127) << 23) * std::bit_cast<float>((k2 + 127) << 23);
  // A NaN input gives a NaN: OR in the quiet-NaN pattern (y is never negative).
  const uint32_t nan_mask =
      static_cast<uint32_t>(-static_cast<int32_t>((bits & 0x7fffffffu) > 0x7f800000u)) &
      0x7fc00000u;
  return std::bit_cast<float>(std::bit_cast<uint32_t>(y) | nan_mask);
}

// How an operand that does not span the whole output maps onto it: the output is
// [outer, mid, inner] and the operand is a contiguous [mid] block repeated over outer and inner.
// Covers same shape (mid = all), scalar (mid = 1), per-channel [C,1,1] / [1,C,1,1] against
// NCHW, and trailing operands such as a bias [C] against [N,C].
struct BlockLayout {
  int64_t outer = 1, mid = 1, inner = 1;
};
// True when `small` (broadcast to `out`) has that form.
bool block_layout(const Shape& small, const Shape& out, BlockLayout* layout);

// y[i] = f(big[i], small[block index of i]) (or f(small, big) when SmallFirst).
template <bool SmallFirst, class R, class F>
void block_loop(const float* big, const float* small, R* y, const BlockLayout& l, F f) {
  auto g = [&](float x, float s) {
    if constexpr (SmallFirst)
      return f(s, x);
    else
      return f(x, s);
  };
  const int64_t total = l.outer * l.mid * l.inner;
  const bool par = total >= kParallelMin;
  if (l.outer * l.inner == 1) {  // same shape
#pragma omp parallel for simd if (par) schedule(static)
    for (int64_t i = 0; i < total; ++i) y[i] = g(big[i], small[i]);
  } else if (l.mid == 1) {  // scalar
    const float s = small[0];
#pragma omp parallel for simd if (par) schedule(static)
    for (int64_t i = 0; i < total; ++i) y[i] = g(big[i], s);
  } else if (l.inner == 1) {  // trailing block
    const int64_t m = l.mid;
#pragma omp parallel for if (par) schedule(static)
    for (int64_t o = 0; o < l.outer; ++o) {
#pragma omp simd
      for (int64_t i = 0; i < m; ++i) y[o * m + i] = g(big[o * m + i], small[i]);
    }
  } else {  // per-channel: one value of small for each run of `inner`
    const int64_t m = l.mid, in = l.inner;
#pragma omp parallel for if (par) schedule(static)
    for (int64_t om = 0; om < l.outer * m; ++om) {
      const float s = small[om % m];
      const float* x = big + om * in;
      R* r = y + om * in;
#pragma omp simd
      for (int64_t i = 0; i < in; ++i) r[i] = g(x[i], s);
    }
  }
}

// Runs f over f32 a and b into y (sized to `out`) when the layout is one of the common cases;
// returns false (doing nothing) otherwise.
template <class R, class F>
bool binary_fast_f32(const Tensor& a, const Tensor& b, Tensor& y, F f) {
  if (y.numel() == 0) return true;
  BlockLayout l;
  if (a.numel() == y.numel() && block_layout(b.shape(), y.shape(), &l)) {
    block_loop<false>(a.data<float>(), b.data<float>(), y.data<R>(), l, f);
    return true;
  }
  if (b.numel() == y.numel() && block_layout(a.shape(), y.shape(), &l)) {
    block_loop<true>(b.data<float>(), a.data<float>(), y.data<R>(), l, f);
    return true;
  }
  return false;
}

// ---- backward helpers -----------------------------------------------------------------------

// The gradient flowing into output i of a backward pass; throws when it is missing.
inline const Tensor& grad_arg(const std::vector<const Tensor*>& gout, size_t i,
                              const std::string& where) {
  check(i < gout.size() && gout[i] != nullptr, where,
        "no gradient for output " + std::to_string(i));
  return *gout[i];
}

// Sizes t to dtype and shape, all zeros.
template <class T>
void zeros(Tensor& t, const Shape& shape) {
  ensure(t, dtype_of<T>(), shape);
  std::fill(t.data<T>(), t.data<T>() + t.numel(), T(0));
}

// out = g summed over the dimensions along which `shape` was broadcast to g's shape: the
// gradient of an operand that broadcasting expanded.
template <class T>
void reduce_to_shape(const Tensor& g, const Shape& shape, Tensor& out) {
  zeros<T>(out, shape);
  if (g.numel() == 0 || out.numel() == 0) return;
  BroadcastLoop loop(g.shape(), {shape});
  const T* pg = g.data<T>();
  T* po = out.data<T>();
  const int64_t n = loop.row_len(), s = loop.step(0);
  loop.for_each_row([&](int64_t o, const int64_t* off) {
    T* r = po + off[0];
    const T* q = pg + o;
    if (s) {
      for (int64_t i = 0; i < n; ++i) r[i] += q[i];
    } else {
      T acc = 0;
      for (int64_t i = 0; i < n; ++i) acc += q[i];
      *r += acc;
    }
  });
}

// Backward of y = f(a, b) with broadcasting: ga = sum gy * da(a, b), gb = sum gy * db(a, b),
// each summed back to its operand's shape; a null ga or gb is skipped. gy has y's shape.
template <class A, class B, class DA, class DB>
void binary_backward_reference(const Tensor& a, const Tensor& b, const Tensor& gy, Tensor* ga,
                               Tensor* gb, DA da, DB db) {
  if (ga) zeros<A>(*ga, a.shape());
  if (gb) zeros<B>(*gb, b.shape());
  if (gy.numel() == 0) return;
  BroadcastLoop loop(gy.shape(), {a.shape(), b.shape()});
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  const A* pg = gy.data<A>();
  A* pga = ga ? ga->data<A>() : nullptr;
  B* pgb = gb ? gb->data<B>() : nullptr;
  const int64_t n = loop.row_len(), sa = loop.step(0), sb = loop.step(1);
  loop.for_each_row([&](int64_t o, const int64_t* off) {
    for (int64_t i = 0; i < n; ++i) {
      const A x = pa[off[0] + i * sa];
      const B e = pb[off[1] + i * sb];
      if (pga) pga[off[0] + i * sa] += pg[o + i] * da(x, e);
      if (pgb) pgb[off[1] + i * sb] += static_cast<B>(pg[o + i]) * db(x, e);
    }
  });
}

// The f32 fast backward for the block layouts of binary_fast_f32: the operand spanning the
// output gets its gradient elementwise, the other one summed per block element in parallel.
// d_big(big, small) and d_small(big, small) are the partial derivatives in that argument order.
// Returns false (doing nothing) when the layout is not one of those.
template <class DBig, class DSmall>
bool binary_backward_fast_f32(const Tensor& a, const Tensor& b, const Tensor& gy, Tensor* ga,
                              Tensor* gb, DBig da, DSmall db) {
  BlockLayout l;
  const int64_t total = gy.numel();
  const bool a_big = a.numel() == total && block_layout(b.shape(), gy.shape(), &l);
  if (!a_big && !(b.numel() == total && block_layout(a.shape(), gy.shape(), &l))) return false;
  const Tensor& big = a_big ? a : b;
  const Tensor& small = a_big ? b : a;
  Tensor* gbig = a_big ? ga : gb;
  Tensor* gsmall = a_big ? gb : ga;
  // Partial derivatives in (big, small) order whichever operand is first.
  auto d_big = [&](float x, float s) { return a_big ? da(x, s) : db(s, x); };
  auto d_small = [&](float x, float s) { return a_big ? db(x, s) : da(s, x); };
  const float* px = big.data<float>();
  const float* ps = small.data<float>();
  const float* pg = gy.data<float>();
  const int64_t m = l.mid, in = l.inner, outer = l.outer;
  const bool par = total >= kParallelMin;
  if (gbig) {
    ensure(*gbig, DType::f32, big.shape());
    float* r = gbig->data<float>();
#pragma omp parallel for if (par) schedule(static)
    for (int64_t om = 0; om < outer * m; ++om) {
      const float s = ps[om % m];
      const int64_t base = om * in;
#pragma omp simd
      for (int64_t i = 0; i < in; ++i) r[base + i] = pg[base + i] * d_big(px[base + i], s);
    }
  }
  if (gsmall) {
    ensure(*gsmall, DType::f32, small.shape());
    float* r = gsmall->data<float>();
    if (m == 1) {  // a single element: one parallel sum
      const float s = ps[0];
      float acc = 0;
#pragma omp parallel for simd if (par) schedule(static) reduction(+ : acc)
      for (int64_t i = 0; i < total; ++i) acc += pg[i] * d_small(px[i], s);
      r[0] = acc;
    } else {
#pragma omp parallel for if (par) schedule(static)
      for (int64_t k = 0; k < m; ++k) {
        const float s = ps[k];
        float acc = 0;
        for (int64_t o = 0; o < outer; ++o) {
          const int64_t base = (o * m + k) * in;
#pragma omp simd reduction(+ : acc)
          for (int64_t i = 0; i < in; ++i) acc += pg[base + i] * d_small(px[base + i], s);
        }
        r[k] = acc;
      }
    }
  }
  return true;
}

// ---- kernel templates -----------------------------------------------------------------------

// An op functor is built from the node when it has such a constructor (attributes), else by
// default; it declares `static constexpr unsigned types`.
template <class Op>
Op make_op(const Node& node) {
  if constexpr (std::is_constructible_v<Op, const Node&>)
    return Op(node);
  else
    return Op();
}

// y = op(x) elementwise, same dtype and shape. Op: `template <class T> T operator()(T) const`,
// and optionally `float fast(float) const`, a vectorisable variant the fast path uses instead.
template <class Op>
class UnaryKernel : public Kernel {
 public:
  UnaryKernel(const Node& node, bool fast)
      : where_(node.label()), op_(make_op<Op>(node)), fast_(fast) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = arg(in, 0, where_);
    Tensor& y = result(out, 0, where_);
    visit_dtype<Op::types>(x.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(y, x.dtype(), x.shape());
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const int64_t n = x.numel();
      if constexpr (std::is_same_v<T, float>) {
        if (fast_) {
          const Op op = op_;
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
          for (int64_t i = 0; i < n; ++i) {
            if constexpr (requires { op.fast(0.0f); })
              py[i] = op.fast(px[i]);
            else
              py[i] = op(px[i]);
          }
          return;
        }
      }
      for (int64_t i = 0; i < n; ++i) py[i] = op_(px[i]);
    });
  }

  // Backward when Op has `template <class T> T grad(T x, T y) const`, dy/dx from the input and
  // the output; float types only.
  static constexpr bool kHasGrad = requires(const Op& op) {
    op.grad(0.0, 0.0);
  };
  bool has_backward() const override {
    return kHasGrad;
  }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if constexpr (!kHasGrad) {
      Kernel::backward(in, out, gout, gin);
    } else {
      Tensor* gx = grad_slot(gin, 0);
      if (!gx) return;
      const Tensor& x = arg(in, 0, where_);
      const Tensor& y = arg(out, 0, where_);
      const Tensor& gy = grad_arg(gout, 0, where_);
      visit_dtype<Op::types & kFloatTypes>(x.dtype(), where_, [&](auto tag) {
        using T = typename decltype(tag)::type;
        ensure(*gx, x.dtype(), x.shape());
        const T* px = x.data<T>();
        const T* py = y.data<T>();
        const T* pg = gy.data<T>();
        T* pgx = gx->data<T>();
        const int64_t n = x.numel();
        const Op op = op_;
        if (std::is_same_v<T, float> && fast_) {
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
          for (int64_t i = 0; i < n; ++i) pgx[i] = pg[i] * op.grad(px[i], py[i]);
          return;
        }
        for (int64_t i = 0; i < n; ++i) pgx[i] = pg[i] * op.grad(px[i], py[i]);
      });
    }
  }

 private:
  std::string where_;
  Op op_;
  bool fast_;
};

template <class Op>
std::unique_ptr<Kernel> make_unary_ref(const Node& node, const Graph& graph) {
  if (!dtype_in(Op::types, input_dtype(node, graph, 0))) return nullptr;
  return std::make_unique<UnaryKernel<Op>>(node, false);
}
template <class Op>
std::unique_ptr<Kernel> make_unary_fast(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<UnaryKernel<Op>>(node, true);
}
template <class Op>
void add_unary(Registry& r, const std::string& op_type, bool with_fast) {
  if (with_fast) r.add(op_type, "fast", &make_unary_fast<Op>, false);
  r.add(op_type, "ref", &make_unary_ref<Op>, true);
}

// y = op(a, b) with numpy broadcasting (or, when Unidirectional, b broadcast to a's shape as
// PRelu requires). Op: `template <class T> R operator()(T, T) const`; R is T or bool. An op may
// define `static Tensor adapt_second(const Tensor& a, const Tensor& b)` to reshape b first.
template <class Op, bool Unidirectional = false>
class BinaryKernel : public Kernel {
 public:
  BinaryKernel(const Node& node, bool fast)
      : where_(node.label()), op_(make_op<Op>(node)), fast_(fast) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& a = arg(in, 0, where_);
    Tensor b = arg(in, 1, where_);  // a view, so an op may reinterpret its shape
    if constexpr (requires { Op::adapt_second(a, b); }) b = Op::adapt_second(a, b);
    Tensor& y = result(out, 0, where_);
    check(a.dtype() == b.dtype(), where_,
          std::string("input types differ: ") + dtype_name(a.dtype()) + " and " +
              dtype_name(b.dtype()));
    Shape shape = broadcast_all({a.shape(), b.shape()}, where_);
    if constexpr (Unidirectional)
      check(shape == a.shape(), where_,
            "cannot broadcast " + shape_str(b.shape()) + " to " + shape_str(a.shape()));
    visit_dtype<Op::types>(a.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      using R = decltype(op_(T{}, T{}));
      ensure(y, dtype_of<R>(), shape);
      if constexpr (std::is_same_v<T, float>)
        if (fast_ && binary_fast_f32<R>(a, b, y, op_)) return;
      binary_reference<T, T, R>(a, b, y, op_);
    });
  }

  // Backward when Op has `template <class T> T da(T a, T b) const` and `db`, the partial
  // derivatives; float types only. Gradients are summed back over broadcast dimensions.
  static constexpr bool kHasGrad = requires(const Op& op) {
    op.da(0.0, 0.0);
    op.db(0.0, 0.0);
  };
  bool has_backward() const override { return kHasGrad; }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if constexpr (!kHasGrad) {
      Kernel::backward(in, out, gout, gin);
    } else {
      const Tensor& a = arg(in, 0, where_);
      const Tensor& b0 = arg(in, 1, where_);
      Tensor b = b0;
      if constexpr (requires { Op::adapt_second(a, b); }) b = Op::adapt_second(a, b);
      const Tensor& gy = grad_arg(gout, 0, where_);
      Tensor* ga = grad_slot(gin, 0);
      Tensor* gb = grad_slot(gin, 1);
      if (!ga && !gb) return;
      Tensor gb_view;  // the gradient in b's adapted shape, reshaped to b's own shape at the end
      visit_dtype<Op::types & kFloatTypes>(a.dtype(), where_, [&](auto tag) {
        using T = typename decltype(tag)::type;
        const Op op = op_;
        auto da = [op](T x, T e) { return op.da(x, e); };
        auto db = [op](T x, T e) { return op.db(x, e); };
        bool done = false;
        if constexpr (std::is_same_v<T, float>)
          if (fast_) done = binary_backward_fast_f32(a, b, gy, ga, gb ? &gb_view : nullptr, da, db);
        if (!done) binary_backward_reference<T, T>(a, b, gy, ga, gb ? &gb_view : nullptr, da, db);
      });
      if (gb) *gb = gb_view.reshaped(b0.shape());
    }
  }

 private:
  std::string where_;
  Op op_;
  bool fast_;
};

template <class Op, bool Unidirectional = false>
std::unique_ptr<Kernel> make_binary_ref(const Node& node, const Graph& graph) {
  if (!dtype_in(Op::types, input_dtype(node, graph, 0))) return nullptr;
  return std::make_unique<BinaryKernel<Op, Unidirectional>>(node, false);
}
template <class Op, bool Unidirectional = false>
std::unique_ptr<Kernel> make_binary_fast(const Node& node, const Graph& graph) {
  if (node.inputs.size() != 2 || input_dtype(node, graph, 0) != DType::f32 ||
      input_dtype(node, graph, 1) != DType::f32)
    return nullptr;
  return std::make_unique<BinaryKernel<Op, Unidirectional>>(node, true);
}

}  // namespace mixq
