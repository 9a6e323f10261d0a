// Numpy broadcasting for the elementwise op families: shapes walked row by row, the reference
// loop, the f32 fast loops for the common layouts (which report false for anything else, so a
// fast kernel falls back to the reference whatever shapes it meets at run time), a vectorisable
// exp, and the backward helpers that sum gradients back over broadcast dimensions (the zero /
// reduce helpers also serve the shape ops' backward passes). The kernel templates built on them
// are in elementwise_kernel.h; dtype dispatch in dtype_dispatch.h.
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
#include "ops/dtype_dispatch.h"
#include "ops/kernel.h"
#include "tensor/tensor.h"

namespace mixq {

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

}  // namespace mixq
