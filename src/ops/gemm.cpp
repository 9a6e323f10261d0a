// Gemm and MatMul: plain loops (the specification) and oneDNN matmul fast paths for f32 with
// one cached primitive per input shape.
#include <cstring>
#include <memory>

#include "ops/common.h"
#include "ops/dnnl_util.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

const Tensor* optional_input(const std::vector<const Tensor*>& in, size_t i) {
  return i < in.size() ? in[i] : nullptr;
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

 private:
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
