// Gemm and MatMul oneDNN fast paths for f32: one cached matmul primitive per input shape, the
// operands read in place through strides; backward as oneDNN matmuls over the same views the
// reference loops read. Checked against gemm_ref.cpp by the per-op tests.
#include <array>
#include <cstring>
#include <memory>

#include "ops/dnnl_util.h"
#include "ops/gemm_impl.h"

namespace mixq {
namespace {
using namespace gemm_impl;

// A oneDNN matmul dst = src x wei (+ bias) whose memories are pointed at tensors per call.
struct Matmul {
  dnnl_util::Bound prim;  // empty: the reference computes it
  dnnl::memory src, wei, dst, bias;

  Matmul() = default;
  // Throws dnnl::error for a layout oneDNN does not take; no bias when bias_md is null.
  Matmul(const dnnl::memory::desc& src_md, const dnnl::memory::desc& wei_md,
         const dnnl::memory::desc& dst_md, const dnnl::memory::desc* bias_md = nullptr)
      : src(dnnl_util::unbound(src_md)),
        wei(dnnl_util::unbound(wei_md)),
        dst(dnnl_util::unbound(dst_md)) {
    auto desc = bias_md ? dnnl::matmul::desc(src_md, wei_md, *bias_md, dst_md)
                        : dnnl::matmul::desc(src_md, wei_md, dst_md);
    prim = dnnl_util::Bound(dnnl::matmul(dnnl::matmul::primitive_desc(desc, dnnl_util::engine())));
    prim.arg(DNNL_ARG_SRC, src).arg(DNNL_ARG_WEIGHTS, wei).arg(DNNL_ARG_DST, dst);
    if (bias_md) {
      bias = dnnl_util::unbound(*bias_md);
      prim.arg(DNNL_ARG_BIAS, bias);
    }
  }

  // Runs on s and w (and b, for a matmul built with a bias) into d; does not wait.
  void run(const Tensor& s, const Tensor& w, Tensor& d, const Tensor* b = nullptr) const {
    dnnl_util::bind(src, s);
    dnnl_util::bind(wei, w);
    dnnl_util::bind(dst, d);
    if (b) dnnl_util::bind(bias, *b);
    prim.run();
  }
};

// One gradient product of a backward plan: P x Q, P and Q two of A, B and dY read in place
// through strided descriptors.
struct Grad {
  Operand p_operand = kA, q_operand = kA;
  Matmul mm;

  // Runs the product into d, reading operand[kA], operand[kB], operand[kDY] (does not wait).
  void run(const Tensor* const (&operand)[3], Tensor& d) const {
    mm.run(*operand[p_operand], *operand[q_operand], d);
  }
};

// The gradient products of A and B for one input shape (Geom: GemmGeom or MatMulGeom).
template <class Geom>
struct BwdPlan {
  Geom g;
  Grad grad[2];
};

// oneDNN matmul with A and B read in place through strides (no transposition copies). The
// common Linear case (alpha = beta = 1, C a row vector) folds C in as the primitive's bias;
// other alpha, beta and C shapes finish with a cheap O(M*N) pass.
class GemmDnnl : public Kernel {
 public:
  explicit GemmDnnl(const Node& node) : node_(node), a_(node), ref_(gemm_ref_kernel(node)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    const Tensor* tc = optional_input(in, 2);
    if (ta.dtype() != DType::f32 || tb.dtype() != DType::f32 || (tc && tc->dtype() != DType::f32))
      return ref_->forward(in, out);
    Plan& p = plans_.get({&ta.shape(), &tb.shape(), tc ? &tc->shape() : nullptr},
                         [&] { return make_plan(ta.shape(), tb.shape(), tc); });
    if (!p.mm.prim) return ref_->forward(in, out);
    Tensor& y = *out.at(0);
    ensure(y, DType::f32, {p.g.m, p.g.n});
    dnnl_util::guarded(node_.label(), [&] {
      p.mm.run(ta, tb, y, p.bias_in_primitive ? tc : nullptr);
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
      return ref_->backward(in, out, gout, gin);
    GemmBwdPlan& p = bwd_plans_.get({&ta.shape(), &tb.shape(), tc ? &tc->shape() : nullptr},
                                    [&] { return make_bwd_plan(ta.shape(), tb.shape(), tc); });
    const Tensor& dy = output_grad(gout, {p.g.m, p.g.n}, DType::f32, node_);
    // C's gradient (and A's and B's for empty dimensions) from the reference.
    gemm_backward_reference(p.g, a_, ta, tb, tc, dy, gin, !p.grad[0].mm.prim);
    if (!p.grad[0].mm.prim) return;
    const Tensor* operand[3] = {&ta, &tb, &dy};
    const Tensor* inputs[2] = {&ta, &tb};
    dnnl_util::guarded(node_.label(), [&] {
      for (size_t i = 0; i < 2; ++i) {
        Tensor* d = grad_slot(gin, i);
        if (!d) continue;
        ensure(*d, DType::f32, inputs[i]->shape());
        p.grad[i].run(operand, *d);
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
  using GemmBwdPlan = BwdPlan<GemmGeom>;

  GemmBwdPlan make_bwd_plan(const Shape& as, const Shape& bs, const Tensor* tc) {
    GemmBwdPlan p;
    p.g = gemm_geometry(a_, as, bs, tc ? &tc->shape() : nullptr, node_);
    if (p.g.m == 0 || p.g.n == 0 || p.g.k == 0) return p;
    const auto products = gemm_grad_products(p.g, a_);
    dnnl_util::guarded(node_.label(), [&] {
      for (size_t i = 0; i < 2; ++i) {
        const Product& pr = products[i];
        p.grad[i] = {pr.p, pr.q,
                     Matmul(dnnl_util::strided_desc({pr.pv.rows, pr.pv.cols}, {pr.pv.rs, pr.pv.cs}),
                            dnnl_util::strided_desc({pr.qv.rows, pr.qv.cols}, {pr.qv.rs, pr.qv.cs}),
                            dnnl_util::plain_desc({pr.pv.rows, pr.qv.cols}))};
      }
    });
    return p;
  }

  dnnl_util::PlanCache<GemmBwdPlan> bwd_plans_;
  struct Plan {
    GemmGeom g;
    Matmul mm;  // empty: use the reference (empty dimensions)
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
      p.mm = Matmul(src_md, wei_md, dst_md, p.bias_in_primitive ? &bias_md : nullptr);
    });
    return p;
  }

  Node node_;
  GemmAttrs a_;
  std::unique_ptr<Kernel> ref_;  // the reference, for what this path does not cover
  dnnl_util::PlanCache<Plan> plans_;
};

// oneDNN matmul over the broadcast batch (both operands padded to the output rank).
class MatMulDnnl : public Kernel {
 public:
  explicit MatMulDnnl(const Node& node) : node_(node), ref_(matmul_ref_kernel(node)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& ta = required_input(in, 0, node_);
    const Tensor& tb = required_input(in, 1, node_);
    if (ta.dtype() != DType::f32 || tb.dtype() != DType::f32) return ref_->forward(in, out);
    Plan& p =
        plans_.get({&ta.shape(), &tb.shape()}, [&] { return make_plan(ta.shape(), tb.shape()); });
    if (!p.mm.prim) return ref_->forward(in, out);
    Tensor& y = *out.at(0);
    ensure(y, DType::f32, p.g.out);
    dnnl_util::guarded(node_.label(), [&] {
      p.mm.run(ta, tb, y);
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
      return ref_->backward(in, out, gout, gin);
    MatMulBwdPlan& p = bwd_plans_.get({&ta.shape(), &tb.shape()},
                                      [&] { return make_bwd_plan(ta.shape(), tb.shape()); });
    const Tensor& dy = output_grad(gout, p.g.out, DType::f32, node_);
    Tensor* grads[2] = {grad_slot(gin, 0), grad_slot(gin, 1)};
    const Tensor* inputs[2] = {&ta, &tb};
    const Tensor* operand[3] = {&ta, &tb, &dy};
    matmul_backward(p.g, ta, tb, dy, p.grad[0].mm.prim ? nullptr : grads[0],
                    p.grad[1].mm.prim ? nullptr : grads[1]);
    dnnl_util::guarded(node_.label(), [&] {
      for (size_t i = 0; i < 2; ++i) {
        if (!grads[i] || !p.grad[i].mm.prim) continue;
        ensure(*grads[i], DType::f32, inputs[i]->shape());
        p.grad[i].run(operand, *grads[i]);
      }
      dnnl_util::stream().wait();
    });
  }

 private:
  using MatMulBwdPlan = BwdPlan<MatMulGeom>;

  // dims / strides of one operand for a matmul primitive.
  struct Desc {
    Shape dims, strides;
  };

  static Grad make_grad(Operand po, const Desc& pd, Operand qo, const Desc& qd, const Desc& dd) {
    try {
      return {po, qo,
              Matmul(dnnl_util::strided_desc(pd.dims, pd.strides),
                     dnnl_util::strided_desc(qd.dims, qd.strides),
                     dnnl_util::strided_desc(dd.dims, dd.strides))};
    } catch (const dnnl::error&) {
      return Grad();  // a layout oneDNN does not take: the reference does it
    }
  }

  MatMulBwdPlan make_bwd_plan(const Shape& as, const Shape& bs) {
    MatMulBwdPlan p;
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
    Matmul mm;  // empty: use the reference
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
      p.mm = Matmul(dnnl_util::plain_desc(a_dims), dnnl_util::plain_desc(b_dims),
                    dnnl_util::plain_desc(y_dims));
    } catch (const dnnl::error&) {
      p.mm = Matmul();  // a broadcast pattern oneDNN does not take: the reference does
    }
    return p;
  }

  Node node_;
  std::unique_ptr<Kernel> ref_;  // the reference, for what this path does not cover
  dnnl_util::PlanCache<Plan> plans_;
  dnnl_util::PlanCache<MatMulBwdPlan> bwd_plans_;
};

template <class K>
std::unique_ptr<Kernel> make_f32(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<K>(node);
}

}  // namespace

std::unique_ptr<Kernel> gemm_impl::make_gemm_dnnl(const Node& node, const Graph& graph) {
  return make_f32<GemmDnnl>(node, graph);
}
std::unique_ptr<Kernel> gemm_impl::make_matmul_dnnl(const Node& node, const Graph& graph) {
  return make_f32<MatMulDnnl>(node, graph);
}

}  // namespace mixq
