// Internal to the Gemm and MatMul kernels (gemm_ref.cpp, the specification, and gemm_dnnl.cpp,
// the oneDNN fast path): the attributes, shape checks and gradient plans both read, so the two
// paths accept the same shapes and compute the same products.
#pragma once
#include <array>
#include <memory>
#include <vector>

#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq::gemm_impl {

// dY of output 0, checked against the output's shape and the operands' dtype.
const Tensor& output_grad(const std::vector<const Tensor*>& gout, const Shape& y, DType dt,
                          const Node& node);

// A matrix read in place as [rows, cols] with element strides, so transposes are free.
struct MatView {
  int64_t rows, cols, rs, cs;
  MatView t() const { return {cols, rows, cs, rs}; }
};

// ---------------------------------------------------------------------------------------------
// Gemm: Y = alpha * A' * B' + beta * C, with C unidirectionally broadcast to [M, N].

struct GemmAttrs {
  float alpha, beta;
  bool trans_a, trans_b;
  explicit GemmAttrs(const Node& node)
      : alpha(node.get_float("alpha", 1.f)),
        beta(node.get_float("beta", 1.f)),
        trans_a(node.get_int("transA", 0) != 0),
        trans_b(node.get_int("transB", 0) != 0) {}
};

struct GemmGeom {
  int64_t m = 0, n = 0, k = 0;
  int64_t c_rows = 0, c_cols = 0;  // C seen as [c_rows, c_cols], each 1 or full; 0 when absent
};

GemmGeom gemm_geometry(const GemmAttrs& a, const Shape& as, const Shape& bs, const Shape* cs,
                       const Node& node);

// y = alpha * y + beta * C (y already holds A' * B').
template <class T>
void gemm_epilogue(const GemmGeom& g, float alpha, float beta, const T* c, T* y) {
  const int64_t rs = g.c_rows == 1 ? 0 : g.c_cols, cs = g.c_cols == 1 ? 0 : 1;
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      T v = static_cast<T>(alpha * y[i * g.n + j]);
      if (c) v += static_cast<T>(beta * c[i * rs + j * cs]);
      y[i * g.n + j] = v;
    }
}

// The gradients of A and B as products of two operands (A, B or dY) seen through views:
// dA' = alpha dY B'^T and dB' = alpha A'^T dY, written transposed for a transposed operand.
enum Operand { kA, kB, kDY };
struct Product {
  Operand p, q;
  MatView pv, qv;
};

std::array<Product, 2> gemm_grad_products(const GemmGeom& g, const GemmAttrs& a);

// ---------------------------------------------------------------------------------------------
// MatMul: numpy matmul. A 1-D A is a row vector and a 1-D B a column vector; those unit axes
// are removed from the result. Batch axes broadcast.

struct MatMulGeom {
  int64_t m = 0, n = 0, k = 0;
  Shape batch;                              // broadcast batch shape
  std::vector<int64_t> a_stride, b_stride;  // per batch axis, in matrices (0 = broadcast)
  Shape out;
};

MatMulGeom matmul_geometry(const Shape& as, const Shape& bs, const Node& node);

// Reference gradients in f32 or f64 (the dtype of A): of A and/or B (gin[0], gin[1], only when
// ab) and C (gin[2]). The fast path takes from here what its primitives do not cover.
void gemm_backward_reference(const GemmGeom& g, const GemmAttrs& a, const Tensor& ta,
                             const Tensor& tb, const Tensor* tc, const Tensor& dy,
                             const std::vector<Tensor*>& gin, bool ab = true);
// Reference gradients of MatMul's A (da) and/or B (db), either may be null.
void matmul_backward(const MatMulGeom& g, const Tensor& ta, const Tensor& tb, const Tensor& dy,
                     Tensor* da, Tensor* db);

// The reference kernels (also the fast paths' fallbacks).
std::unique_ptr<Kernel> gemm_ref_kernel(const Node& node);
std::unique_ptr<Kernel> matmul_ref_kernel(const Node& node);
// The oneDNN kernels for f32 Gemm and MatMul, or nullptr when the input is not f32.
std::unique_ptr<Kernel> make_gemm_dnnl(const Node& node, const Graph& graph);
std::unique_ptr<Kernel> make_matmul_dnnl(const Node& node, const Graph& graph);

}  // namespace mixq::gemm_impl
