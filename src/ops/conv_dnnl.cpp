// Conv's oneDNN fast path for f32 with 1..3 spatial axes: cached primitives per shape and
// pre-reordered weights; backward runs oneDNN's backward data and backward weights primitives,
// cached per shape like the forward. Checked against conv_ref.cpp by the per-op tests.
#include <cstring>
#include <memory>

#include "ops/conv_impl.h"
#include "ops/dnnl_util.h"

namespace mixq {
namespace {
using namespace conv_impl;

// oneDNN format tag of a plain tensor with 1..3 spatial axes, channels first or last.
dnnl::memory::format_tag layout_tag(size_t sp, bool nhwc) {
  using tag = dnnl::memory::format_tag;
  if (sp == 1) return nhwc ? tag::acb : tag::abc;
  if (sp == 2) return nhwc ? tag::acdb : tag::abcd;
  return nhwc ? tag::acdeb : tag::abcde;
}

// oneDNN's view of a geometry: logical dims (group-split weights), strides, gaps, pads.
struct DnnlConvDims {
  dnnl::memory::dims src, dst, weights, strides, dil, pl, pr;
  explicit DnnlConvDims(const ConvGeom& g) {
    auto logical = [&](int64_t ch, const Shape& sp) {
      dnnl::memory::dims d{g.n, ch};
      d.insert(d.end(), sp.begin(), sp.end());
      return d;
    };
    src = logical(g.c, g.in);
    dst = logical(g.m, g.out);
    weights = g.group > 1 ? dnnl::memory::dims{g.group, g.m / g.group, g.c / g.group}
                          : dnnl::memory::dims{g.m, g.c};
    weights.insert(weights.end(), g.k.begin(), g.k.end());
    strides.assign(g.stride.begin(), g.stride.end());
    pl.assign(g.pad_b.begin(), g.pad_b.end());
    pr.assign(g.pad_e.begin(), g.pad_e.end());
    for (size_t i = 0; i < g.sp; ++i) dil.push_back(g.dil[i] - 1);  // oneDNN counts the gaps
  }
};

dnnl_util::Bound reorder_between(const dnnl::memory& from, const dnnl::memory& to) {
  return std::move(
      dnnl_util::Bound(dnnl::reorder(from, to)).arg(DNNL_ARG_FROM, from).arg(DNNL_ARG_TO, to));
}

// An activation as mixq holds it (user, plain) and as a primitive wants it (inner). When the
// layouts differ the inner copy lives in a per-thread scratch slot, linked by a reorder.
struct Staged {
  dnnl::memory user, inner;
  dnnl_util::Bound reorder;  // user -> inner for inputs, inner -> user for outputs
  int slot = 0;

  Staged() = default;
  Staged(const dnnl::memory::desc& user_md, const dnnl::memory::desc& inner_md, bool input,
         int scratch_slot)
      : user(dnnl_util::unbound(user_md)), inner(dnnl_util::unbound(inner_md)), slot(scratch_slot) {
    if (user_md != inner_md)
      reorder = input ? reorder_between(user, inner) : reorder_between(inner, user);
  }
  // Inputs: points the primitive at t, reordering it into scratch when needed.
  void feed(const Tensor& t) {
    if (!reorder) return dnnl_util::bind(inner, t);
    dnnl_util::bind(user, t);
    inner.set_data_handle(dnnl_util::scratch(slot, inner.get_desc().get_size()));
    reorder.run();
  }
  // Outputs: the primitive writes t directly or scratch that drain() then reorders into t.
  void target(Tensor& t) {
    if (!reorder) return dnnl_util::bind(inner, t);
    dnnl_util::bind(user, t);
    inner.set_data_handle(dnnl_util::scratch(slot, inner.get_desc().get_size()));
  }
  void drain() {
    if (reorder) reorder.run();
  }
};

// oneDNN convolution for f32 with 1..3 spatial axes. One plan per input shape (the batch may
// change between calls). Weights are reordered into the primitive's preferred layout once when
// W is a graph constant, on every call otherwise. With channels-first tensors oneDNN picks the
// activation layout too: its channels-last kernels plus two reorders beat its channels-first
// (im2col + gemm) path several times over.
class ConvDnnl : public Kernel {
 public:
  ConvDnnl(const Node& node, const Graph& graph)
      : node_(node), a_(node), w_const_(graph.is_constant(node.inputs[1])) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& w = required_input(in, 1, node_);
    const Tensor* b = optional_input(in, 2);
    check(x.dtype() == DType::f32 && w.dtype() == DType::f32, node_.label(),
          "X and W must be float32");
    Plan& p = plans_.get({&x.shape(), &w.shape(), b ? &b->shape() : nullptr},
                         [&] { return make_plan(x.shape(), w.shape(), b); });
    Tensor& y = *out.at(0);
    const Tensor* extra = optional_input(in, 3);
    // An executor may hand the sum input's own buffer over as the output (accumulate in place).
    const bool in_place = a_.sum && !p.post_fusion && extra && extra->raw() == y.raw() &&
                          y.shape() == p.geom.out_shape() && y.dtype() == DType::f32;
    if (!in_place) ensure(y, DType::f32, p.geom.out_shape());
    if (a_.sum) check_sum_input(extra, y, node_);
    dnnl_util::guarded(node_.label(), [&] {
      if (!w_const_ || p.weights_from != w.storage_id()) load_weights(p, w);
      // Activations in oneDNN's layout live in the per-thread scratch slots 0 (src), 1 (dst).
      if (p.to_src) {
        dnnl_util::bind(p.user_src, x);
        p.src.set_data_handle(dnnl_util::scratch(0, p.src.get_desc().get_size()));
        p.to_src.run();
      } else {
        dnnl_util::bind(p.src, x);
      }
      if (p.from_dst)
        p.dst.set_data_handle(dnnl_util::scratch(1, p.dst.get_desc().get_size()));
      else
        dnnl_util::bind(p.dst, y);
      if (a_.sum && !p.post_fusion) {
        if (p.from_dst) {
          dnnl_util::bind(p.user_dst, *extra);
          p.to_dst.run();
        } else if (extra->raw() != y.raw()) {
          std::memcpy(y.raw(), extra->raw(), y.nbytes());
        }
      }
      if (b) dnnl_util::bind(p.bias, *b);
      p.conv.run();
      if (p.from_dst) {
        dnnl_util::bind(p.user_dst, y);
        p.from_dst.run();
      }
      dnnl_util::stream().wait();
    });
    if (p.post_fusion) apply_fusion<float>(a_, extra, y, node_);
  }

  bool has_backward() const override { return !a_.fused(); }

  // oneDNN backward data and backward weights (with bias), one plan per shape like the forward.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& w = required_input(in, 1, node_);
    const Tensor* b = optional_input(in, 2);
    check(!a_.fused(), node_.label(),
          "has no backward in its fused form (mixq_activation, mixq_sum or mixq_layout); train "
          "the unfused graph");
    check(x.dtype() == DType::f32 && w.dtype() == DType::f32, node_.label(),
          "X and W must be float32");
    BwdPlan& p = bwd_plans_.get({&x.shape(), &w.shape(), b ? &b->shape() : nullptr},
                                [&] { return make_bwd_plan(x.shape(), w.shape(), b); });
    const Tensor& dy = output_grad(a_, gout, p.geom, node_);
    check(dy.dtype() == DType::f32, node_.label(), "gradient of Y must be float32");
    Tensor* dx = grad_slot(gin, 0);
    Tensor* dw = grad_slot(gin, 1);
    Tensor* db = b ? grad_slot(gin, 2) : nullptr;
    if (dx) ensure(*dx, DType::f32, x.shape());
    if (dw) ensure(*dw, DType::f32, w.shape());
    if (db) ensure(*db, DType::f32, {p.geom.m});
    dnnl_util::guarded(node_.label(), [&] {
      if (dx) {
        dnnl_util::bind(p.user_w, w);
        p.to_w.run();
        p.dy_data.feed(dy);
        p.dx.target(*dx);
        p.data.run();
        p.dx.drain();
      }
      if (dw || db) {
        p.x.feed(x);
        if (dx && p.dy_same)
          p.dy_weights.inner.set_data_handle(p.dy_data.inner.get_data_handle());
        else
          p.dy_weights.feed(dy);
        if (p.has_bias) {
          if (db)
            dnnl_util::bind(p.db, *db);
          else
            p.db.set_data_handle(p.db_sink.data());
        }
        p.weights.run();
        if (dw) {
          dnnl_util::bind(p.user_dw, *dw);
          p.from_dw.run();
        }
      }
      dnnl_util::stream().wait();
    });
  }

 private:
  struct Plan {
    ConvGeom geom;
    // user_*: the tensors as mixq holds them; src/dst/weights: what the primitive reads.
    dnnl::memory user_src, user_dst, user_weights, src, dst, weights, bias;
    dnnl_util::Bound conv;
    dnnl_util::Bound to_src, to_dst, from_dst;  // reorders; empty when the layouts agree
    uint64_t weights_from = 0;  // storage_id of the W last reordered (constants only)
    bool post_fusion = false;   // sum and relu applied after the primitive
  };

  Plan make_plan(const Shape& xs, const Shape& wsh, const Tensor* b) {
    Plan p;
    p.geom = checked_geometry(a_, false, xs, wsh, node_);
    check_bias(b, p.geom, DType::f32, node_);
    dnnl_util::guarded(node_.label(), [&] { build(p, b != nullptr); });
    return p;
  }

  void build(Plan& p, bool has_bias) {
    using dnnl::memory;
    const ConvGeom& g = p.geom;
    const DnnlConvDims d(g);
    const memory::dims& wd = d.weights;
    const auto f32 = memory::data_type::f32;
    const auto user_tag = layout_tag(g.sp, g.nhwc);
    memory::desc user_src_md(d.src, f32, user_tag);
    memory::desc user_dst_md(d.dst, f32, user_tag);
    // Channels-last tensors are what oneDNN's fast kernels want; for channels-first ones let
    // it choose.
    const auto act_tag = g.nhwc ? user_tag : memory::format_tag::any;
    memory::desc src_md(d.src, f32, act_tag);
    memory::desc dst_md(d.dst, f32, act_tag);
    memory::desc w_any(wd, f32, memory::format_tag::any);
    memory::desc b_md({g.m}, f32, memory::format_tag::a);
    const auto fwd = dnnl::prop_kind::forward_inference;
    const auto alg = dnnl::algorithm::convolution_direct;
    auto desc = has_bias ? dnnl::convolution_forward::desc(fwd, alg, src_md, w_any, b_md, dst_md,
                                                           d.strides, d.dil, d.pl, d.pr)
                         : dnnl::convolution_forward::desc(fwd, alg, src_md, w_any, dst_md,
                                                           d.strides, d.dil, d.pl, d.pr);
    // oneDNN 2.6's brgconv skips post-ops on output rows whose window lies wholly in the
    // padding; such (unusual) geometries get the fusion applied afterwards instead.
    p.post_fusion = false;
    for (size_t i = 0; i < g.sp; ++i) {
      const int64_t keff = window_extent(g.k[i], g.dil[i]);
      p.post_fusion |= g.pad_b[i] >= keff || g.pad_e[i] >= keff;
    }
    p.post_fusion &= a_.sum || a_.relu;
    dnnl::post_ops po;
    if (a_.sum && !p.post_fusion) po.append_sum(1.f);
    if (a_.relu && !p.post_fusion) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    dnnl::convolution_forward::primitive_desc pd(desc, attr, dnnl_util::engine());
    auto& eng = dnnl_util::engine();
    p.user_src = dnnl_util::unbound(user_src_md);
    p.user_dst = dnnl_util::unbound(user_dst_md);
    p.src = dnnl_util::unbound(pd.src_desc());
    p.dst = dnnl_util::unbound(pd.dst_desc());
    auto reorder = reorder_between;
    if (pd.src_desc() != user_src_md) p.to_src = reorder(p.user_src, p.src);
    if (pd.dst_desc() != user_dst_md) {
      p.from_dst = reorder(p.dst, p.user_dst);
      if (a_.sum) p.to_dst = reorder(p.user_dst, p.dst);
    }
    p.user_weights = dnnl_util::unbound(memory::desc(wd, f32, dnnl_util::plain_tag(wd.size())));
    p.weights = memory(pd.weights_desc(), eng);
    p.conv = dnnl_util::Bound(dnnl::convolution_forward(pd));
    p.conv.arg(DNNL_ARG_SRC, p.src).arg(DNNL_ARG_WEIGHTS, p.weights).arg(DNNL_ARG_DST, p.dst);
    if (has_bias) {
      p.bias = dnnl_util::unbound(b_md);
      p.conv.arg(DNNL_ARG_BIAS, p.bias);
    }
  }

  void load_weights(Plan& p, const Tensor& w) {
    dnnl_util::bind(p.user_weights, w);
    if (p.user_weights.get_desc() == p.weights.get_desc())
      std::memcpy(p.weights.get_data_handle(), w.raw(), w.nbytes());
    else
      dnnl::reorder(p.user_weights, p.weights)
          .execute(dnnl_util::stream(), p.user_weights, p.weights);
    p.weights_from = w.storage_id();
  }

  struct BwdPlan {
    ConvGeom geom;
    bool has_bias = false;
    bool dy_same = false;  // both primitives read dY in one layout: reorder it once
    Staged x, dy_data, dy_weights, dx;
    dnnl::memory user_w, w, user_dw, dw, db;  // w, dw: owned, in the primitives' layouts
    std::vector<float> db_sink;               // dB when only dW is wanted
    dnnl_util::Bound data, weights, to_w, from_dw;
  };

  BwdPlan make_bwd_plan(const Shape& xs, const Shape& wsh, const Tensor* b) {
    BwdPlan p;
    p.geom = checked_geometry(a_, false, xs, wsh, node_);
    check_bias(b, p.geom, DType::f32, node_);
    p.has_bias = b != nullptr;
    dnnl_util::guarded(node_.label(), [&] { build_bwd(p); });
    return p;
  }

  void build_bwd(BwdPlan& p) {
    using dnnl::memory;
    const ConvGeom& g = p.geom;
    const DnnlConvDims d(g);
    const auto f32 = memory::data_type::f32;
    const auto any = memory::format_tag::any;
    const auto user_tag = layout_tag(g.sp, false);
    memory::desc src_md(d.src, f32, any), dst_md(d.dst, f32, any), w_md(d.weights, f32, any);
    memory::desc b_md({g.m}, f32, memory::format_tag::a);
    const auto alg = dnnl::algorithm::convolution_direct;
    auto& eng = dnnl_util::engine();
    // The backward primitives take a forward-training descriptor as a hint for their layouts.
    auto fwd_desc =
        p.has_bias
            ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_md, w_md,
                                              b_md, dst_md, d.strides, d.dil, d.pl, d.pr)
            : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_md, w_md,
                                              dst_md, d.strides, d.dil, d.pl, d.pr);
    dnnl::convolution_forward::primitive_desc fwd(fwd_desc, eng);
    dnnl::convolution_backward_data::primitive_desc data(
        dnnl::convolution_backward_data::desc(alg, src_md, w_md, dst_md, d.strides, d.dil, d.pl,
                                              d.pr),
        eng, fwd);
    auto wdesc = p.has_bias ? dnnl::convolution_backward_weights::desc(
                                  alg, src_md, w_md, b_md, dst_md, d.strides, d.dil, d.pl, d.pr)
                            : dnnl::convolution_backward_weights::desc(
                                  alg, src_md, w_md, dst_md, d.strides, d.dil, d.pl, d.pr);
    dnnl::convolution_backward_weights::primitive_desc weights(wdesc, eng, fwd);

    const memory::desc user_x(d.src, f32, user_tag), user_dy(d.dst, f32, user_tag);
    const memory::desc user_w(d.weights, f32, dnnl_util::plain_tag(d.weights.size()));
    // Scratch slots: 0 X, 1 dY (data), 2 dY (weights), 3 dX.
    p.x = Staged(user_x, weights.src_desc(), true, 0);
    p.dy_data = Staged(user_dy, data.diff_dst_desc(), true, 1);
    p.dy_weights = Staged(user_dy, weights.diff_dst_desc(), true, 2);
    p.dy_same = data.diff_dst_desc() == weights.diff_dst_desc();
    p.dx = Staged(user_x, data.diff_src_desc(), false, 3);
    p.user_w = dnnl_util::unbound(user_w);
    p.w = memory(data.weights_desc(), eng);
    p.to_w = reorder_between(p.user_w, p.w);
    p.user_dw = dnnl_util::unbound(user_w);
    p.dw = memory(weights.diff_weights_desc(), eng);
    p.from_dw = reorder_between(p.dw, p.user_dw);
    p.data = dnnl_util::Bound(dnnl::convolution_backward_data(data));
    p.data.arg(DNNL_ARG_DIFF_DST, p.dy_data.inner)
        .arg(DNNL_ARG_WEIGHTS, p.w)
        .arg(DNNL_ARG_DIFF_SRC, p.dx.inner);
    p.weights = dnnl_util::Bound(dnnl::convolution_backward_weights(weights));
    p.weights.arg(DNNL_ARG_SRC, p.x.inner)
        .arg(DNNL_ARG_DIFF_DST, p.dy_weights.inner)
        .arg(DNNL_ARG_DIFF_WEIGHTS, p.dw);
    if (p.has_bias) {
      p.db = dnnl_util::unbound(b_md);
      p.db_sink.resize(g.m);
      p.weights.arg(DNNL_ARG_DIFF_BIAS, p.db);
    }
  }

  Node node_;
  ConvAttrs a_;
  bool w_const_;
  dnnl_util::PlanCache<Plan> plans_;
  dnnl_util::PlanCache<BwdPlan> bwd_plans_;
};

}  // namespace

std::unique_ptr<Kernel> conv_impl::make_conv_dnnl(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32 || !node.has_input(1)) return nullptr;
  const Value& w = graph.values[node.inputs[1]];
  if (w.dtype != DType::f32) return nullptr;
  // oneDNN covers 1..3 spatial axes; other ranks (and rank errors) go to the reference.
  if (w.shape_known && (w.shape.size() < 3 || w.shape.size() > 5)) return nullptr;
  return std::make_unique<ConvDnnl>(node, graph);
}

}  // namespace mixq
