// Gemm and MatMul: plain loops (the specification) and oneDNN matmul fast paths for f32 with
// one cached primitive per input shape. Backward: gradients are products of the operands and dY
// read through strided (transposed) views, in loops for the reference and as oneDNN matmuls
// for the fast path.
#include <array>
#include <cstring>
#include <memory>

#include "ops/common.h"
#include "ops/dnnl_util.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// dY of output 0, checked against the output's shape and the operands' dtype.
const Tensor& output_grad(const std::vector<const Tensor*>& gout, const Shape& y, DType dt,
                          const Node& node) {
  check(!gout.empty() && gout[0], node.label(), "backward needs the gradient of output Y");
  check(gout[0]->shape() == y && gout[0]->dtype() == dt, node.label(),
        "gradient of Y " + shape_str(gout[0]->shape()) + " does not match Y " + shape_str(y));
  return *gout[0];
}

void check_float(DType dt, const Node& node) {
  check(dt == DType::f32 || dt == DType::f64, node.label(),
        std::string("no backward for dtype ") + dtype_name(dt));
}

// A matrix read in place as [rows, cols] with element strides, so transposes are free.
struct MatView {
  int64_t rows, cols, rs, cs;
  MatView t() const { return {cols, rows, cs, rs}; }
};

// out[i, j] = scale * sum_kk P[i, kk] * Q[kk, j]; out is row-major [P.rows, Q.cols].
template <class T>
void product_reference(const MatView& pv, const T* p, const MatView& qv, const T* q, double scale,
                       T* out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < pv.rows; ++i)
    for (int64_t j = 0; j < qv.cols; ++j) {
      double acc = 0;
      for (int64_t kk = 0; kk < pv.cols; ++kk)
        acc += static_cast<double>(p[i * pv.rs + kk * pv.cs]) * q[kk * qv.rs + j * qv.cs];
      out[i * qv.cols + j] = static_cast<T>(scale * acc);
    }
}

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
                       const Node& node) {
  check(as.size() == 2 && bs.size() == 2, node.label(),
        "A and B must be matrices, got " + shape_str(as) + " and " + shape_str(bs));
  GemmGeom g;
  g.m = a.trans_a ? as[1] : as[0];
  g.k = a.trans_a ? as[0] : as[1];
  const int64_t kb = a.trans_b ? bs[1] : bs[0];
  g.n = a.trans_b ? bs[0] : bs[1];
  check(g.k == kb, node.label(),
        "inner dimensions differ: A " + shape_str(as) + (a.trans_a ? " (transposed)" : "") +
            ", B " + shape_str(bs) + (a.trans_b ? " (transposed)" : ""));
  if (cs) {
    check(cs->size() <= 2, node.label(), "C must have rank <= 2, got " + shape_str(*cs));
    g.c_rows = cs->size() == 2 ? (*cs)[0] : 1;
    g.c_cols = cs->empty() ? 1 : cs->back();
    check((g.c_rows == 1 || g.c_rows == g.m) && (g.c_cols == 1 || g.c_cols == g.n), node.label(),
          "C " + shape_str(*cs) + " does not broadcast to [" + std::to_string(g.m) + "," +
              std::to_string(g.n) + "]");
  }
  return g;
}

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

template <class T>
void gemm_reference(const GemmGeom& g, const GemmAttrs& a, const T* pa, const T* pb, const T* c,
                    T* y) {
  // Element (i, kk) of A' and (kk, j) of B' whatever the transposition.
  const int64_t a_i = a.trans_a ? 1 : g.k, a_k = a.trans_a ? g.m : 1;
  const int64_t b_k = a.trans_b ? 1 : g.n, b_j = a.trans_b ? g.k : 1;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double acc = 0;
      for (int64_t kk = 0; kk < g.k; ++kk)
        acc += static_cast<double>(pa[i * a_i + kk * a_k]) * pb[kk * b_k + j * b_j];
      y[i * g.n + j] = static_cast<T>(acc);
    }
  gemm_epilogue<T>(g, a.alpha, a.beta, c, y);
}

// The gradients of A and B as products of two operands (A, B or dY) seen through views:
// dA' = alpha dY B'^T and dB' = alpha A'^T dY, written transposed for a transposed operand.
enum Operand { kA, kB, kDY };
struct Product {
  Operand p, q;
  MatView pv, qv;
};

std::array<Product, 2> gemm_grad_products(const GemmGeom& g, const GemmAttrs& a) {
  const MatView A{g.m, g.k, a.trans_a ? 1 : g.k, a.trans_a ? g.m : 1};  // A'
  const MatView B{g.k, g.n, a.trans_b ? 1 : g.n, a.trans_b ? g.k : 1};  // B'
  const MatView D{g.m, g.n, g.n, 1};
  const Product da = a.trans_a ? Product{kB, kDY, B, D.t()} : Product{kDY, kB, D, B.t()};
  const Product db = a.trans_b ? Product{kDY, kA, D.t(), A} : Product{kA, kDY, A.t(), D};
  return {da, db};
}

// dC = beta * dY summed over the axes C is broadcast along.
template <class T>
void gemm_c_grad(const GemmGeom& g, float beta, const T* dy, T* dc) {
  const int64_t rs = g.c_rows == 1 ? 0 : g.c_cols, cs = g.c_cols == 1 ? 0 : 1;
  std::vector<double> acc(g.c_rows * g.c_cols, 0.0);
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) acc[i * rs + j * cs] += dy[i * g.n + j];
  for (size_t i = 0; i < acc.size(); ++i) dc[i] = static_cast<T>(beta * acc[i]);
}

class GemmRef : public Kernel {
 public:
  explicit GemmRef(const Node& node) : node_(node), a_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    const Tensor* tc = optional_input(in, 2);
    check(ta.dtype() == tb.dtype() && (!tc || tc->dtype() == ta.dtype()), node_.label(),
          "A, B and C must have the same dtype");
    GemmGeom g = gemm_geometry(a_, ta.shape(), tb.shape(), tc ? &tc->shape() : nullptr, node_);
    Tensor& y = *out.at(0);
    ensure(y, ta.dtype(), {g.m, g.n});
    switch (ta.dtype()) {
      case DType::f32:
        return run<float>(g, ta, tb, tc, y);
      case DType::f64:
        return run<double>(g, ta, tb, tc, y);
      case DType::i32:
        return run<int32_t>(g, ta, tb, tc, y);
      case DType::i64:
        return run<int64_t>(g, ta, tb, tc, y);
      default:
        throw Error(node_.label(), std::string("unsupported dtype ") + dtype_name(ta.dtype()));
    }
  }

  bool has_backward() const override { return true; }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    const Tensor* tc = optional_input(in, 2);
    check(ta.dtype() == tb.dtype() && (!tc || tc->dtype() == ta.dtype()), node_.label(),
          "A, B and C must have the same dtype");
    check_float(ta.dtype(), node_);
    GemmGeom g = gemm_geometry(a_, ta.shape(), tb.shape(), tc ? &tc->shape() : nullptr, node_);
    const Tensor& dy = output_grad(gout, {g.m, g.n}, ta.dtype(), node_);
    if (ta.dtype() == DType::f32)
      run_backward<float>(g, ta, tb, tc, dy, gin);
    else
      run_backward<double>(g, ta, tb, tc, dy, gin);
  }

  // Gradients of A and/or B (gin[0], gin[1]) and C (gin[2]) in T.
  template <class T>
  void run_backward(const GemmGeom& g, const Tensor& ta, const Tensor& tb, const Tensor* tc,
                    const Tensor& dy, const std::vector<Tensor*>& gin, bool ab = true) {
    const T* operand[3] = {ta.data<T>(), tb.data<T>(), dy.data<T>()};
    const auto products = gemm_grad_products(g, a_);
    const Tensor* inputs[2] = {&ta, &tb};
    for (size_t i = 0; i < 2 && ab; ++i) {
      Tensor* d = grad_slot(gin, i);
      if (!d) continue;
      ensure(*d, ta.dtype(), inputs[i]->shape());
      const Product& p = products[i];
      product_reference<T>(p.pv, operand[p.p], p.qv, operand[p.q], a_.alpha, d->data<T>());
    }
    if (Tensor* dc = tc ? grad_slot(gin, 2) : nullptr) {
      ensure(*dc, ta.dtype(), tc->shape());
      gemm_c_grad<T>(g, a_.beta, dy.data<T>(), dc->data<T>());
    }
  }

 private:
  template <class T>
  void run(const GemmGeom& g, const Tensor& ta, const Tensor& tb, const Tensor* tc, Tensor& y) {
    gemm_reference<T>(g, a_, ta.data<T>(), tb.data<T>(), tc ? tc->data<T>() : nullptr, y.data<T>());
  }
  Node node_;
  GemmAttrs a_;
};

// oneDNN matmul with A and B read in place through strides (no transposition copies). The
// common Linear case (alpha = beta = 1, C a row vector) folds C in as the primitive's bias;
// other alpha, beta and C shapes finish with a cheap O(M*N) pass.
class GemmDnnl : public Kernel {
 public:
  explicit GemmDnnl(const Node& node) : node_(node), a_(node), ref_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    const Tensor* tc = optional_input(in, 2);
    if (ta.dtype() != DType::f32 || tb.dtype() != DType::f32 || (tc && tc->dtype() != DType::f32))
      return ref_.forward(in, out);
    Plan& p = plans_.get({&ta.shape(), &tb.shape(), tc ? &tc->shape() : nullptr},
                         [&] { return make_plan(ta.shape(), tb.shape(), tc); });
    if (!p.prim) return ref_.forward(in, out);
    Tensor& y = *out.at(0);
    ensure(y, DType::f32, {p.g.m, p.g.n});
    dnnl_util::guarded(node_.label(), [&] {
      dnnl_util::bind(p.src, ta);
      dnnl_util::bind(p.wei, tb);
      dnnl_util::bind(p.dst, y);
      if (p.bias_in_primitive) dnnl_util::bind(p.bias, *tc);
      p.prim.run();
      dnnl_util::stream().wait();
    });
    if (!p.bias_in_primitive && (a_.alpha != 1.f || tc))
      gemm_epilogue<float>(p.g, a_.alpha, a_.beta, tc ? tc->data<float>() : nullptr,
                           y.data<float>());
  }

  bool has_backward() const override { return true; }

  // dA and dB as oneDNN matmuls reading the operands in place through strides; dC is a sum.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    const Tensor* tc = optional_input(in, 2);
    if (ta.dtype() != DType::f32 || tb.dtype() != DType::f32 || (tc && tc->dtype() != DType::f32))
      return ref_.backward(in, out, gout, gin);
    BwdPlan& p = bwd_plans_.get({&ta.shape(), &tb.shape(), tc ? &tc->shape() : nullptr},
                                [&] { return make_bwd_plan(ta.shape(), tb.shape(), tc); });
    const Tensor& dy = output_grad(gout, {p.g.m, p.g.n}, DType::f32, node_);
    // C's gradient (and A's and B's for empty dimensions) from the reference.
    ref_.run_backward<float>(p.g, ta, tb, tc, dy, gin, !p.grad[0].prim);
    if (!p.grad[0].prim) return;
    const Tensor* operand[3] = {&ta, &tb, &dy};
    const Tensor* inputs[2] = {&ta, &tb};
    dnnl_util::guarded(node_.label(), [&] {
      for (size_t i = 0; i < 2; ++i) {
        Tensor* d = grad_slot(gin, i);
        if (!d) continue;
        ensure(*d, DType::f32, inputs[i]->shape());
        Grad& gr = p.grad[i];
        dnnl_util::bind(gr.p, *operand[gr.p_operand]);
        dnnl_util::bind(gr.q, *operand[gr.q_operand]);
        dnnl_util::bind(gr.dst, *d);
        gr.prim.run();
      }
      dnnl_util::stream().wait();
    });
    if (a_.alpha != 1.f)
      for (size_t i = 0; i < 2; ++i)
        if (Tensor* d = grad_slot(gin, i)) {
          float* v = d->data<float>();
          for (int64_t j = 0; j < d->numel(); ++j) v[j] *= a_.alpha;
        }
  }

 private:
  // One gradient product: dst = P x Q.
  struct Grad {
    Operand p_operand = kA, q_operand = kA;
    dnnl_util::Bound prim;  // empty: the reference computes it
    dnnl::memory p, q, dst;
  };
  struct BwdPlan {
    GemmGeom g;
    Grad grad[2];
  };

  BwdPlan make_bwd_plan(const Shape& as, const Shape& bs, const Tensor* tc) {
    BwdPlan p;
    p.g = gemm_geometry(a_, as, bs, tc ? &tc->shape() : nullptr, node_);
    if (p.g.m == 0 || p.g.n == 0 || p.g.k == 0) return p;
    const auto products = gemm_grad_products(p.g, a_);
    dnnl_util::guarded(node_.label(), [&] {
      for (size_t i = 0; i < 2; ++i) {
        const Product& pr = products[i];
        Grad& gr = p.grad[i];
        gr.p_operand = pr.p;
        gr.q_operand = pr.q;
        auto p_md = dnnl_util::strided_desc({pr.pv.rows, pr.pv.cols}, {pr.pv.rs, pr.pv.cs});
        auto q_md = dnnl_util::strided_desc({pr.qv.rows, pr.qv.cols}, {pr.qv.rs, pr.qv.cs});
        auto dst_md = dnnl_util::plain_desc({pr.pv.rows, pr.qv.cols});
        gr.p = dnnl_util::unbound(p_md);
        gr.q = dnnl_util::unbound(q_md);
        gr.dst = dnnl_util::unbound(dst_md);
        gr.prim = dnnl_util::Bound(dnnl::matmul(dnnl::matmul::primitive_desc(
            dnnl::matmul::desc(p_md, q_md, dst_md), dnnl_util::engine())));
        gr.prim.arg(DNNL_ARG_SRC, gr.p).arg(DNNL_ARG_WEIGHTS, gr.q).arg(DNNL_ARG_DST, gr.dst);
      }
    });
    return p;
  }

  dnnl_util::PlanCache<BwdPlan> bwd_plans_;
  struct Plan {
    GemmGeom g;
    dnnl_util::Bound prim;  // empty: use the reference (empty dimensions)
    dnnl::memory src, wei, bias, dst;
    bool bias_in_primitive = false;
  };

  Plan make_plan(const Shape& as, const Shape& bs, const Tensor* tc) {
    Plan p;
    p.g = gemm_geometry(a_, as, bs, tc ? &tc->shape() : nullptr, node_);
    const GemmGeom& g = p.g;
    if (g.m == 0 || g.n == 0 || g.k == 0) return p;
    p.bias_in_primitive =
        tc && a_.alpha == 1.f && a_.beta == 1.f && g.c_rows == 1 && g.c_cols == g.n;
    dnnl_util::guarded(node_.label(), [&] {
      auto src_md = dnnl_util::strided_desc({g.m, g.k}, a_.trans_a ? Shape{1, g.m} : Shape{g.k, 1});
      auto wei_md = dnnl_util::strided_desc({g.k, g.n}, a_.trans_b ? Shape{1, g.k} : Shape{g.n, 1});
      auto dst_md = dnnl_util::plain_desc({g.m, g.n});
      auto bias_md = dnnl_util::plain_desc({1, g.n});
      auto desc = p.bias_in_primitive ? dnnl::matmul::desc(src_md, wei_md, bias_md, dst_md)
                                      : dnnl::matmul::desc(src_md, wei_md, dst_md);
      p.src = dnnl_util::unbound(src_md);
      p.wei = dnnl_util::unbound(wei_md);
      p.dst = dnnl_util::unbound(dst_md);
      p.prim =
          dnnl_util::Bound(dnnl::matmul(dnnl::matmul::primitive_desc(desc, dnnl_util::engine())));
      p.prim.arg(DNNL_ARG_SRC, p.src).arg(DNNL_ARG_WEIGHTS, p.wei).arg(DNNL_ARG_DST, p.dst);
      if (p.bias_in_primitive) {
        p.bias = dnnl_util::unbound(bias_md);
        p.prim.arg(DNNL_ARG_BIAS, p.bias);
      }
    });
    return p;
  }

  Node node_;
  GemmAttrs a_;
  GemmRef ref_;
  dnnl_util::PlanCache<Plan> plans_;
};

// ---------------------------------------------------------------------------------------------
// MatMul: numpy matmul. A 1-D A is a row vector and a 1-D B a column vector; those unit axes
// are removed from the result. Batch axes broadcast.

struct MatMulGeom {
  int64_t m = 0, n = 0, k = 0;
  Shape batch;                              // broadcast batch shape
  std::vector<int64_t> a_stride, b_stride;  // per batch axis, in matrices (0 = broadcast)
  Shape out;
};

MatMulGeom matmul_geometry(const Shape& as, const Shape& bs, const Node& node) {
  check(!as.empty() && !bs.empty(), node.label(), "MatMul operands must have rank >= 1");
  Shape a = as, b = bs;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  MatMulGeom g;
  g.m = a[a.size() - 2];
  g.k = a.back();
  g.n = b.back();
  check(b[b.size() - 2] == g.k, node.label(),
        "inner dimensions differ: " + shape_str(as) + " x " + shape_str(bs));
  Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  g.batch = broadcast_shapes(ab, bb, node);
  g.a_stride = broadcast_strides(ab, g.batch);
  g.b_stride = broadcast_strides(bb, g.batch);
  g.out = g.batch;
  if (as.size() > 1) g.out.push_back(g.m);
  if (bs.size() > 1) g.out.push_back(g.n);
  return g;
}

template <class T>
void matmul_reference(const MatMulGeom& g, const T* a, const T* b, T* y) {
  const int64_t batches = shape_numel(g.batch);
  const auto out_strides = shape_strides(g.batch);
  const size_t r = g.batch.size();
#pragma omp parallel for schedule(static)
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t ao = 0, bo = 0, rest = bi;
    for (size_t d = 0; d < r; ++d) {
      const int64_t idx = rest / out_strides[d];
      rest %= out_strides[d];
      ao += idx * g.a_stride[d];
      bo += idx * g.b_stride[d];
    }
    const T* pa = a + ao * g.m * g.k;
    const T* pb = b + bo * g.k * g.n;
    T* py = y + bi * g.m * g.n;
    for (int64_t i = 0; i < g.m; ++i)
      for (int64_t j = 0; j < g.n; ++j) {
        using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
        Acc acc = 0;
        for (int64_t kk = 0; kk < g.k; ++kk)
          acc += static_cast<Acc>(pa[i * g.k + kk]) * pb[kk * g.n + j];
        py[i * g.n + j] = static_cast<T>(acc);
      }
  }
}

// Which A and B matrices each output matrix read, and how many A and B matrices there are.
struct BatchMap {
  std::vector<int64_t> a, b;
  int64_t na = 1, nb = 1;
};

BatchMap batch_map(const MatMulGeom& g, const Shape& as, const Shape& bs) {
  BatchMap bm;
  const auto out_strides = shape_strides(g.batch);
  const int64_t batches = shape_numel(g.batch);
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t ao = 0, bo = 0, rest = bi;
    for (size_t d = 0; d < g.batch.size(); ++d) {
      const int64_t idx = rest / out_strides[d];
      rest %= out_strides[d];
      ao += idx * g.a_stride[d];
      bo += idx * g.b_stride[d];
    }
    bm.a.push_back(ao);
    bm.b.push_back(bo);
  }
  for (size_t d = 0; d + 2 < as.size(); ++d) bm.na *= as[d];
  for (size_t d = 0; d + 2 < bs.size(); ++d) bm.nb *= bs[d];
  return bm;
}

// dA = dY B^T and dB = A^T dY per output matrix, summed into the A or B matrix it read (a
// broadcast operand collects every batch it served). Each element has one writer.
template <class T>
void matmul_backward_reference(const MatMulGeom& g, const BatchMap& bm, const T* a, const T* b,
                               const T* dy, T* da, T* db) {
  const int64_t m = g.m, n = g.n, k = g.k, batches = static_cast<int64_t>(bm.a.size());
  if (da) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t sa = 0; sa < bm.na; ++sa)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t kk = 0; kk < k; ++kk) {
          double acc = 0;
          for (int64_t bi = 0; bi < batches; ++bi) {
            if (bm.a[bi] != sa) continue;
            const T* pd = dy + (bi * m + i) * n;
            const T* pb = b + (bm.b[bi] * k + kk) * n;
            for (int64_t j = 0; j < n; ++j) acc += static_cast<double>(pd[j]) * pb[j];
          }
          da[(sa * m + i) * k + kk] = static_cast<T>(acc);
        }
  }
  if (db) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t sb = 0; sb < bm.nb; ++sb)
      for (int64_t kk = 0; kk < k; ++kk)
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t bi = 0; bi < batches; ++bi) {
            if (bm.b[bi] != sb) continue;
            const T* pa = a + bm.a[bi] * m * k + kk;
            const T* pd = dy + bi * m * n + j;
            for (int64_t i = 0; i < m; ++i) acc += static_cast<double>(pa[i * k]) * pd[i * n];
          }
          db[(sb * k + kk) * n + j] = static_cast<T>(acc);
        }
  }
}

class MatMulRef : public Kernel {
 public:
  explicit MatMulRef(const Node& node) : node_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    check(ta.dtype() == tb.dtype(), node_.label(), "A and B must have the same dtype");
    MatMulGeom g = matmul_geometry(ta.shape(), tb.shape(), node_);
    Tensor& y = *out.at(0);
    ensure(y, ta.dtype(), g.out);
    switch (ta.dtype()) {
      case DType::f32:
        return matmul_reference(g, ta.data<float>(), tb.data<float>(), y.data<float>());
      case DType::f64:
        return matmul_reference(g, ta.data<double>(), tb.data<double>(), y.data<double>());
      case DType::i32:
        return matmul_reference(g, ta.data<int32_t>(), tb.data<int32_t>(), y.data<int32_t>());
      case DType::i64:
        return matmul_reference(g, ta.data<int64_t>(), tb.data<int64_t>(), y.data<int64_t>());
      default:
        throw Error(node_.label(), std::string("unsupported dtype ") + dtype_name(ta.dtype()));
    }
  }

  bool has_backward() const override { return true; }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    check(ta.dtype() == tb.dtype(), node_.label(), "A and B must have the same dtype");
    check_float(ta.dtype(), node_);
    MatMulGeom g = matmul_geometry(ta.shape(), tb.shape(), node_);
    const Tensor& dy = output_grad(gout, g.out, ta.dtype(), node_);
    run_backward(g, ta, tb, dy, grad_slot(gin, 0), grad_slot(gin, 1));
  }

  // Gradients of A (da) and/or B (db), either may be null.
  void run_backward(const MatMulGeom& g, const Tensor& ta, const Tensor& tb, const Tensor& dy,
                    Tensor* da, Tensor* db) {
    const BatchMap bm = batch_map(g, ta.shape(), tb.shape());
    if (da) ensure(*da, ta.dtype(), ta.shape());
    if (db) ensure(*db, ta.dtype(), tb.shape());
    if (ta.dtype() == DType::f32)
      matmul_backward_reference<float>(g, bm, ta.data<float>(), tb.data<float>(), dy.data<float>(),
                                       da ? da->data<float>() : nullptr,
                                       db ? db->data<float>() : nullptr);
    else
      matmul_backward_reference<double>(g, bm, ta.data<double>(), tb.data<double>(),
                                        dy.data<double>(), da ? da->data<double>() : nullptr,
                                        db ? db->data<double>() : nullptr);
  }

 private:
  Node node_;
};

// oneDNN matmul over the broadcast batch (both operands padded to the output rank).
class MatMulDnnl : public Kernel {
 public:
  explicit MatMulDnnl(const Node& node) : node_(node), ref_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    if (ta.dtype() != DType::f32 || tb.dtype() != DType::f32) return ref_.forward(in, out);
    Plan& p =
        plans_.get({&ta.shape(), &tb.shape()}, [&] { return make_plan(ta.shape(), tb.shape()); });
    if (!p.prim) return ref_.forward(in, out);
    Tensor& y = *out.at(0);
    ensure(y, DType::f32, p.g.out);
    dnnl_util::guarded(node_.label(), [&] {
      dnnl_util::bind(p.src, ta);
      dnnl_util::bind(p.wei, tb);
      dnnl_util::bind(p.dst, y);
      p.prim.run();
      dnnl_util::stream().wait();
    });
  }

  bool has_backward() const override { return true; }

  // dA = dY B^T when A is not broadcast, dB = A^T dY when B is not (or, for a single B matrix
  // shared by every batch, one matmul over the flattened batch); other broadcast patterns
  // sum over batches in the reference.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    if (ta.dtype() != DType::f32 || tb.dtype() != DType::f32)
      return ref_.backward(in, out, gout, gin);
    BwdPlan& p = bwd_plans_.get({&ta.shape(), &tb.shape()},
                                [&] { return make_bwd_plan(ta.shape(), tb.shape()); });
    const Tensor& dy = output_grad(gout, p.g.out, DType::f32, node_);
    Tensor* grads[2] = {grad_slot(gin, 0), grad_slot(gin, 1)};
    const Tensor* inputs[2] = {&ta, &tb};
    const Tensor* operand[3] = {&ta, &tb, &dy};
    ref_.run_backward(p.g, ta, tb, dy, p.grad[0].prim ? nullptr : grads[0],
                      p.grad[1].prim ? nullptr : grads[1]);
    dnnl_util::guarded(node_.label(), [&] {
      for (size_t i = 0; i < 2; ++i) {
        Grad& gr = p.grad[i];
        if (!grads[i] || !gr.prim) continue;
        ensure(*grads[i], DType::f32, inputs[i]->shape());
        dnnl_util::bind(gr.p, *operand[gr.p_operand]);
        dnnl_util::bind(gr.q, *operand[gr.q_operand]);
        dnnl_util::bind(gr.dst, *grads[i]);
        gr.prim.run();
      }
      dnnl_util::stream().wait();
    });
  }

 private:
  struct Grad {
    Operand p_operand = kA, q_operand = kA;
    dnnl_util::Bound prim;  // empty: the reference computes it
    dnnl::memory p, q, dst;
  };
  struct BwdPlan {
    MatMulGeom g;
    Grad grad[2];
  };

  // dims / strides of one operand for a matmul primitive.
  struct Desc {
    Shape dims, strides;
  };

  static Grad make_grad(Operand po, const Desc& pd, Operand qo, const Desc& qd, const Desc& dd) {
    Grad gr;
    gr.p_operand = po;
    gr.q_operand = qo;
    try {
      auto p_md = dnnl_util::strided_desc(pd.dims, pd.strides);
      auto q_md = dnnl_util::strided_desc(qd.dims, qd.strides);
      auto dst_md = dnnl_util::strided_desc(dd.dims, dd.strides);
      gr.p = dnnl_util::unbound(p_md);
      gr.q = dnnl_util::unbound(q_md);
      gr.dst = dnnl_util::unbound(dst_md);
      gr.prim = dnnl_util::Bound(dnnl::matmul(dnnl::matmul::primitive_desc(
          dnnl::matmul::desc(p_md, q_md, dst_md), dnnl_util::engine())));
      gr.prim.arg(DNNL_ARG_SRC, gr.p).arg(DNNL_ARG_WEIGHTS, gr.q).arg(DNNL_ARG_DST, gr.dst);
    } catch (const dnnl::error&) {
      gr.prim = dnnl_util::Bound();  // a layout oneDNN does not take: the reference does it
    }
    return gr;
  }

  BwdPlan make_bwd_plan(const Shape& as, const Shape& bs) {
    BwdPlan p;
    p.g = matmul_geometry(as, bs, node_);
    const MatMulGeom& g = p.g;
    const size_t nb = g.batch.size();
    if (shape_numel(g.out) == 0 || g.k == 0 || nb + 2 > DNNL_MAX_NDIMS) return p;
    // Operands padded to the output rank, row-major; a transposed view swaps the last two.
    auto padded = [&](const Shape& s, int64_t rows, int64_t cols) {
      const size_t r = s.size() > 2 ? s.size() - 2 : 0;
      Desc d;
      for (size_t i = 0; i < nb; ++i) d.dims.push_back(i < nb - r ? 1 : s[i - (nb - r)]);
      d.dims.insert(d.dims.end(), {rows, cols});
      d.strides = shape_strides(d.dims);
      return d;
    };
    auto transposed = [&](Desc d) {
      std::swap(d.dims[nb], d.dims[nb + 1]);
      std::swap(d.strides[nb], d.strides[nb + 1]);
      return d;
    };
    const Desc a = padded(as, g.m, g.k), b = padded(bs, g.k, g.n);
    Desc yb;  // dY with its vector axes restored
    yb.dims = g.batch;
    yb.dims.insert(yb.dims.end(), {g.m, g.n});
    yb.strides = shape_strides(yb.dims);
    auto full = [&](const Desc& d) {
      return Shape(d.dims.begin(), d.dims.begin() + nb) == g.batch;
    };
    if (full(a)) p.grad[0] = make_grad(kDY, yb, kB, transposed(b), a);
    if (full(b)) {
      p.grad[1] = make_grad(kA, transposed(a), kDY, yb, b);
    } else if (bs.size() <= 2 && full(a)) {
      // One B for every batch: dB = A^T dY over the flattened batch rows.
      const int64_t rows = shape_numel(g.batch) * g.m;
      p.grad[1] = make_grad(kA, {{g.k, rows}, {1, g.k}}, kDY, {{rows, g.n}, {g.n, 1}},
                            {{g.k, g.n}, {g.n, 1}});
    }
    return p;
  }

 private:
  struct Plan {
    MatMulGeom g;
    dnnl_util::Bound prim;  // empty: use the reference
    dnnl::memory src, wei, dst;
  };

  Plan make_plan(const Shape& as, const Shape& bs) {
    Plan p;
    p.g = matmul_geometry(as, bs, node_);
    const MatMulGeom& g = p.g;
    const size_t rank = g.batch.size() + 2;
    if (shape_numel(g.out) == 0 || g.k == 0 || rank > DNNL_MAX_NDIMS) return p;
    // Full-rank descriptors: batch axes of size 1 broadcast inside oneDNN.
    Shape a_dims, b_dims, y_dims = g.batch;
    const size_t ra = std::max<size_t>(as.size(), 2) - 2, rb = std::max<size_t>(bs.size(), 2) - 2;
    const size_t nb = g.batch.size();
    for (size_t d = 0; d < nb; ++d) {
      a_dims.push_back(d < nb - ra ? 1 : as[d - (nb - ra)]);
      b_dims.push_back(d < nb - rb ? 1 : bs[d - (nb - rb)]);
    }
    a_dims.insert(a_dims.end(), {g.m, g.k});
    b_dims.insert(b_dims.end(), {g.k, g.n});
    y_dims.insert(y_dims.end(), {g.m, g.n});
    try {
      auto src_md = dnnl_util::plain_desc(a_dims);
      auto wei_md = dnnl_util::plain_desc(b_dims);
      auto dst_md = dnnl_util::plain_desc(y_dims);
      dnnl::matmul::desc desc(src_md, wei_md, dst_md);
      p.src = dnnl_util::unbound(src_md);
      p.wei = dnnl_util::unbound(wei_md);
      p.dst = dnnl_util::unbound(dst_md);
      p.prim =
          dnnl_util::Bound(dnnl::matmul(dnnl::matmul::primitive_desc(desc, dnnl_util::engine())));
      p.prim.arg(DNNL_ARG_SRC, p.src).arg(DNNL_ARG_WEIGHTS, p.wei).arg(DNNL_ARG_DST, p.dst);
    } catch (const dnnl::error&) {
      p.prim = dnnl_util::Bound();  // a broadcast pattern oneDNN does not take: the reference does
    }
    return p;
  }

  Node node_;
  MatMulRef ref_;
  dnnl_util::PlanCache<Plan> plans_;
  dnnl_util::PlanCache<BwdPlan> bwd_plans_;
};

template <class K>
std::unique_ptr<Kernel> make_ref(const Node& node, const Graph&) {
  return std::make_unique<K>(node);
}

template <class K>
std::unique_ptr<Kernel> make_f32(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<K>(node);
}

}  // namespace

void register_gemm_ops(Registry& r) {
  r.add("Gemm", "dnnl", make_f32<GemmDnnl>, false);
  r.add("Gemm", "ref", make_ref<GemmRef>, true);
  r.add("MatMul", "dnnl", make_f32<MatMulDnnl>, false);
  r.add("MatMul", "ref", make_ref<MatMulRef>, true);
}

}  // namespace mixq
