// Gemm and MatMul reference: plain loops accumulating in double (the specification). Backward:
// gradients are products of the operands and dY read through strided (transposed) views.
#include <array>
#include <memory>
#include <utility>

#include "ops/dtype_dispatch.h"
#include "ops/gemm_impl.h"

namespace mixq {
namespace gemm_impl {

const Tensor& output_grad(const std::vector<const Tensor*>& gout, const Shape& y, DType dt,
                          const Node& node) {
  check(!gout.empty() && gout[0], node.label(), "backward needs the gradient of output Y");
  check(gout[0]->shape() == y && gout[0]->dtype() == dt, node.label(),
        "gradient of Y " + shape_str(gout[0]->shape()) + " does not match Y " + shape_str(y));
  return *gout[0];
}

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

std::array<Product, 2> gemm_grad_products(const GemmGeom& g, const GemmAttrs& a) {
  const MatView A{g.m, g.k, a.trans_a ? 1 : g.k, a.trans_a ? g.m : 1};  // A'
  const MatView B{g.k, g.n, a.trans_b ? 1 : g.n, a.trans_b ? g.k : 1};  // B'
  const MatView D{g.m, g.n, g.n, 1};
  const Product da = a.trans_a ? Product{kB, kDY, B, D.t()} : Product{kDY, kB, D, B.t()};
  const Product db = a.trans_b ? Product{kDY, kA, D.t(), A} : Product{kA, kDY, A.t(), D};
  return {da, db};
}

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

}  // namespace gemm_impl

namespace {
using namespace gemm_impl;

void check_float(DType dt, const Node& node) {
  check(dt == DType::f32 || dt == DType::f64, node.label(),
        std::string("no backward for dtype ") + dtype_name(dt));
}

// The dtypes the forward references take.
inline constexpr unsigned kGemmTypes =
    dtype_bit(DType::f32) | dtype_bit(DType::f64) | dtype_bit(DType::i32) | dtype_bit(DType::i64);

// Calls f(TypeTag<T>{}) with t's type; throws Error naming the node unless t is in kGemmTypes.
template <class F>
void visit_gemm_dtype(DType dt, const Node& node, F&& f) {
  check(dtype_in(kGemmTypes, dt), node.label(), std::string("unsupported dtype ") + dtype_name(dt));
  visit_dtype<kGemmTypes>(dt, node.label(), f);
}

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

// dC = beta * dY summed over the axes C is broadcast along.
template <class T>
void gemm_c_grad(const GemmGeom& g, float beta, const T* dy, T* dc) {
  const int64_t rs = g.c_rows == 1 ? 0 : g.c_cols, cs = g.c_cols == 1 ? 0 : 1;
  std::vector<double> acc(g.c_rows * g.c_cols, 0.0);
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) acc[i * rs + j * cs] += dy[i * g.n + j];
  for (size_t i = 0; i < acc.size(); ++i) dc[i] = static_cast<T>(beta * acc[i]);
}

// Gradients of A and/or B (gin[0], gin[1], only when ab) and C (gin[2]) in T.
template <class T>
void gemm_backward_t(const GemmGeom& g, const GemmAttrs& a, const Tensor& ta, const Tensor& tb,
                     const Tensor* tc, const Tensor& dy, const std::vector<Tensor*>& gin, bool ab) {
  const T* operand[3] = {ta.data<T>(), tb.data<T>(), dy.data<T>()};
  const auto products = gemm_grad_products(g, a);
  const Tensor* inputs[2] = {&ta, &tb};
  for (size_t i = 0; i < 2 && ab; ++i) {
    Tensor* d = grad_slot(gin, i);
    if (!d) continue;
    ensure(*d, ta.dtype(), inputs[i]->shape());
    const Product& p = products[i];
    product_reference<T>(p.pv, operand[p.p], p.qv, operand[p.q], a.alpha, d->data<T>());
  }
  if (Tensor* dc = tc ? grad_slot(gin, 2) : nullptr) {
    ensure(*dc, ta.dtype(), tc->shape());
    gemm_c_grad<T>(g, a.beta, dy.data<T>(), dc->data<T>());
  }
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
    visit_gemm_dtype(ta.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      gemm_reference<T>(g, a_, ta.data<T>(), tb.data<T>(), tc ? tc->data<T>() : nullptr,
                        y.data<T>());
    });
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
    gemm_backward_reference(g, a_, ta, tb, tc, dy, gin);
  }

 private:
  Node node_;
  GemmAttrs a_;
};

// The A and B matrices output matrix bi reads; out_strides: shape_strides(g.batch).
std::pair<int64_t, int64_t> batch_operands(const MatMulGeom& g,
                                           const std::vector<int64_t>& out_strides, int64_t bi) {
  int64_t ao = 0, bo = 0, rest = bi;
  for (size_t d = 0; d < g.batch.size(); ++d) {
    const int64_t idx = rest / out_strides[d];
    rest %= out_strides[d];
    ao += idx * g.a_stride[d];
    bo += idx * g.b_stride[d];
  }
  return {ao, bo};
}

template <class T>
void matmul_reference(const MatMulGeom& g, const T* a, const T* b, T* y) {
  const int64_t batches = shape_numel(g.batch);
  const auto out_strides = shape_strides(g.batch);
#pragma omp parallel for schedule(static)
  for (int64_t bi = 0; bi < batches; ++bi) {
    const auto [ao, bo] = batch_operands(g, out_strides, bi);
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
    const auto [ao, bo] = batch_operands(g, out_strides, bi);
    bm.a.push_back(ao);
    bm.b.push_back(bo);
  }
  for (size_t d = 0; d + 2 < as.size(); ++d) bm.na *= as[d];
  for (size_t d = 0; d + 2 < bs.size(); ++d) bm.nb *= bs[d];
  return bm;
}

// One operand of the per-batch products: batch bi reads matrix mat[bi] (matrix bi when mat is
// null) of the stack at base, through view v.
template <class T>
struct BatchOperand {
  const T* base;
  const std::vector<int64_t>* mat;
  MatView v;
};

// out[s] = sum of P_bi Q_bi over the batches bi with slot[bi] == s, out row-major
// [slots, P.rows, Q.cols]. Each element has one writer.
template <class T>
void summed_products(int64_t slots, const std::vector<int64_t>& slot, const BatchOperand<T>& p,
                     const BatchOperand<T>& q, T* out) {
  const int64_t rows = p.v.rows, cols = q.v.cols, inner = p.v.cols;
  const int64_t batches = static_cast<int64_t>(slot.size());
  const int64_t p_size = p.v.rows * p.v.cols, q_size = q.v.rows * q.v.cols;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t s = 0; s < slots; ++s)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        double acc = 0;
        for (int64_t bi = 0; bi < batches; ++bi) {
          if (slot[bi] != s) continue;
          const T* pr = p.base + (p.mat ? (*p.mat)[bi] : bi) * p_size + r * p.v.rs;
          const T* qc = q.base + (q.mat ? (*q.mat)[bi] : bi) * q_size + c * q.v.cs;
          for (int64_t t = 0; t < inner; ++t)
            acc += static_cast<double>(pr[t * p.v.cs]) * qc[t * q.v.rs];
        }
        out[(s * rows + r) * cols + c] = static_cast<T>(acc);
      }
}

// dA = dY B^T and dB = A^T dY per output matrix, summed into the A or B matrix it read (a
// broadcast operand collects every batch it served).
template <class T>
void matmul_backward_reference(const MatMulGeom& g, const BatchMap& bm, const T* a, const T* b,
                               const T* dy, T* da, T* db) {
  const MatView av{g.m, g.k, g.k, 1}, bv{g.k, g.n, g.n, 1}, yv{g.m, g.n, g.n, 1};
  if (da) summed_products<T>(bm.na, bm.a, {dy, nullptr, yv}, {b, &bm.b, bv.t()}, da);
  if (db) summed_products<T>(bm.nb, bm.b, {a, &bm.a, av.t()}, {dy, nullptr, yv}, db);
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
    visit_gemm_dtype(ta.dtype(), node_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      matmul_reference(g, ta.data<T>(), tb.data<T>(), y.data<T>());
    });
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
    matmul_backward(g, ta, tb, dy, grad_slot(gin, 0), grad_slot(gin, 1));
  }

 private:
  Node node_;
};

template <class K>
std::unique_ptr<Kernel> make_ref(const Node& node, const Graph&) {
  return std::make_unique<K>(node);
}

}  // namespace

void gemm_impl::gemm_backward_reference(const GemmGeom& g, const GemmAttrs& a, const Tensor& ta,
                                        const Tensor& tb, const Tensor* tc, const Tensor& dy,
                                        const std::vector<Tensor*>& gin, bool ab) {
  if (ta.dtype() == DType::f32)
    gemm_backward_t<float>(g, a, ta, tb, tc, dy, gin, ab);
  else
    gemm_backward_t<double>(g, a, ta, tb, tc, dy, gin, ab);
}

void gemm_impl::matmul_backward(const MatMulGeom& g, const Tensor& ta, const Tensor& tb,
                                const Tensor& dy, Tensor* da, Tensor* db) {
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

std::unique_ptr<Kernel> gemm_impl::gemm_ref_kernel(const Node& node) {
  return std::make_unique<GemmRef>(node);
}
std::unique_ptr<Kernel> gemm_impl::matmul_ref_kernel(const Node& node) {
  return std::make_unique<MatMulRef>(node);
}

void register_gemm_ops(Registry& r) {
  r.add("Gemm", "dnnl", make_gemm_dnnl, false);
  r.add("Gemm", "ref", make_ref<GemmRef>, true);
  r.add("MatMul", "dnnl", make_matmul_dnnl, false);
  r.add("MatMul", "ref", make_ref<MatMulRef>, true);
}

}  // namespace mixq
