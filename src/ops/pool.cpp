// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: a plain reference for 1..3 spatial
// axes (the specification) and a oneDNN pooling fast path for f32, both with backward (the
// reference keeps max pooling's winners from the forward, oneDNN its workspace).
//
// Window rules (ONNX spec, as ONNX Runtime implements them): windows start inside the
// left-padded input; with ceil_mode a window that would start in the right padding is dropped;
// AveragePool with count_include_pad divides by the taps inside the padded input (a ceil_mode
// window is clipped there), without it by the taps inside the real input.
//
// Internal attribute: mixq_layout = "NHWC" makes X and Y channels-last, as for Conv.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "ir/internal_names.h"
#include "ops/common.h"
#include "ops/dnnl_util.h"
#include "ops/kernel.h"
#include "ops/window.h"

namespace mixq {
namespace {

enum class PoolKind { max, avg };

struct PoolAttrs : WindowAttrs {
  PoolKind kind;
  bool global;
  bool ceil_mode, count_include_pad, column_major_indices, nhwc;

  PoolAttrs(const Node& node, PoolKind k, bool is_global)
      : WindowAttrs(node), kind(k), global(is_global) {
    check(global || !kernel.empty(), node.label(), "kernel_shape is required");
    ceil_mode = node.get_int("ceil_mode", 0) != 0;
    count_include_pad = node.get_int("count_include_pad", 0) != 0;
    column_major_indices = node.get_int("storage_order", 0) != 0;
    std::string layout = node.get_string(names::kLayout, "NCHW");
    check(layout == "NCHW" || layout == "NHWC", node.label(), "unknown layout '" + layout + "'");
    nhwc = layout == "NHWC";
  }
};

// Geometry of one input shape, spatial axes padded to 3 with leading unit axes.
struct PoolGeom {
  int64_t n = 0, c = 0;
  size_t sp = 0;
  bool nhwc = false;
  int64_t in[3], k[3], out[3], s[3], d[3], pb[3], pe[3];
  int64_t isz = 1, osz = 1;

  Shape out_shape() const {
    Shape r{n};
    if (!nhwc) r.push_back(c);
    for (size_t i = 3 - sp; i < 3; ++i) r.push_back(out[i]);
    if (nhwc) r.push_back(c);
    return r;
  }
};

PoolGeom pool_geometry(const PoolAttrs& a, const Shape& x, const Node& node) {
  check(x.size() >= 3, node.label(),
        "input X must have rank >= 3 (N, C, spatial...), got " + shape_str(x));
  PoolGeom g;
  g.sp = x.size() - 2;
  check(g.sp <= 3, node.label(), "more than 3 spatial axes are not supported");
  g.nhwc = a.nhwc;
  g.n = x[0];
  g.c = a.nhwc ? x.back() : x[1];
  Shape in(x.begin() + (a.nhwc ? 1 : 2), x.end() - (a.nhwc ? 1 : 0));
  auto kernel = a.global ? in : per_axis(a.kernel, g.sp, 1, "kernel_shape", node);
  auto strides =
      a.global ? std::vector<int64_t>(g.sp, 1) : per_axis(a.strides, g.sp, 1, "strides", node);
  auto dil =
      a.global ? std::vector<int64_t>(g.sp, 1) : per_axis(a.dilations, g.sp, 1, "dilations", node);
  if (!a.global) a.check_pads(g.sp, node);
  const size_t off = 3 - g.sp;
  for (size_t j = 0; j < 3; ++j) {
    g.in[j] = g.k[j] = g.out[j] = g.s[j] = g.d[j] = 1;
    g.pb[j] = g.pe[j] = 0;
  }
  for (size_t i = 0; i < g.sp; ++i) {
    const size_t j = i + off;
    g.in[j] = in[i];
    g.k[j] = kernel[i];
    g.s[j] = strides[i];
    g.d[j] = dil[i];
    if (a.global) {
      g.out[j] = 1;
      continue;
    }
    const AxisWindow win =
        forward_window(a, i, g.sp, in[i], kernel[i], strides[i], dil[i], a.ceil_mode);
    check(win.fits, node.label(),
          "kernel " + shape_str(kernel) + " larger than padded input " + shape_str(x));
    g.pb[j] = win.pad_b;
    g.pe[j] = win.pad_e;
    g.out[j] = win.out;
  }
  g.isz = g.in[0] * g.in[1] * g.in[2];
  g.osz = g.out[0] * g.out[1] * g.out[2];
  return g;
}

// Calls tap(pos) for each tap of output (od, oh, ow) inside the real input (pos: spatial index
// within the plane) and returns the number of taps inside the padded input.
template <class F>
int64_t for_each_tap(const PoolGeom& g, int64_t od, int64_t oh, int64_t ow, F&& tap) {
  const int64_t sd = od * g.s[0] - g.pb[0], sh = oh * g.s[1] - g.pb[1], sw = ow * g.s[2] - g.pb[2];
  int64_t padded = 0;
  for (int64_t kd = 0; kd < g.k[0]; ++kd) {
    const int64_t id = sd + kd * g.d[0];
    if (id >= g.in[0] + g.pe[0]) break;
    for (int64_t kh = 0; kh < g.k[1]; ++kh) {
      const int64_t ih = sh + kh * g.d[1];
      if (ih >= g.in[1] + g.pe[1]) break;
      for (int64_t kw = 0; kw < g.k[2]; ++kw) {
        const int64_t iw = sw + kw * g.d[2];
        if (iw >= g.in[2] + g.pe[2]) break;
        ++padded;
        if (id < 0 || ih < 0 || iw < 0 || id >= g.in[0] || ih >= g.in[1] || iw >= g.in[2]) continue;
        tap((id * g.in[1] + ih) * g.in[2] + iw);
      }
    }
  }
  return padded;
}

// Reference pooling over one (n, c) plane. xs/ys: element stride between spatial positions.
// arg (max pooling): receives the winning position of each output, -1 for a window of padding.
template <class T>
void pool_plane(const PoolAttrs& a, const PoolGeom& g, const T* x, int64_t xs, T* y, int64_t ys,
                int64_t* arg) {
  for (int64_t od = 0; od < g.out[0]; ++od)
    for (int64_t oh = 0; oh < g.out[1]; ++oh)
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        double acc = 0;
        int64_t inside = 0;  // taps in the real input
        T best = std::numeric_limits<T>::lowest();
        int64_t best_pos = -1;
        const int64_t padded = for_each_tap(g, od, oh, ow, [&](int64_t pos) {
          ++inside;
          const T v = x[pos * xs];
          acc += static_cast<double>(v);
          if (best_pos < 0 || v > best) {
            best = v;
            best_pos = pos;
          }
        });
        const int64_t opos = (od * g.out[1] + oh) * g.out[2] + ow;
        if (a.kind == PoolKind::max) {
          y[opos * ys] = best;
          arg[opos] = best_pos;
        } else {
          const int64_t div = a.count_include_pad ? padded : inside;
          y[opos * ys] = static_cast<T>(acc / static_cast<double>(div));
        }
      }
}

// arg: per plane and output, the winning position (max pooling; unused for averages).
template <class T>
void pool_reference(const PoolAttrs& a, const PoolGeom& g, const T* x, T* y, int64_t* arg) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c) {
      const int64_t plane = n * g.c + c;
      int64_t* parg = arg ? arg + plane * g.osz : nullptr;
      if (g.nhwc)
        pool_plane<T>(a, g, x + n * g.c * g.isz + c, g.c, y + n * g.c * g.osz + c, g.c, parg);
      else
        pool_plane<T>(a, g, x + plane * g.isz, 1, y + plane * g.osz, 1, parg);
    }
}

// ONNX Indices: flat positions in X (NCHW), the spatial part optionally column-major.
void indices_from_argmax(const PoolAttrs& a, const PoolGeom& g, const int64_t* arg, int64_t* idx) {
  for (int64_t plane = 0; plane < g.n * g.c; ++plane)
    for (int64_t o = 0; o < g.osz; ++o) {
      int64_t flat = arg[plane * g.osz + o];
      if (a.column_major_indices && flat >= 0) {
        // Position counted with the first spatial axis fastest.
        const int64_t iw = flat % g.in[2], ih = (flat / g.in[2]) % g.in[1],
                      id = flat / (g.in[2] * g.in[1]);
        flat = (iw * g.in[1] + ih) * g.in[0] + id;
      }
      idx[plane * g.osz + o] = plane * g.isz + flat;
    }
}

// dX (channels first): max routes each dY to its window's winner, average spreads it over the
// window's real taps with the forward's divisor.
template <class T>
void pool_backward_reference(const PoolAttrs& a, const PoolGeom& g, const T* dy, const int64_t* arg,
                             T* dx) {
#pragma omp parallel for schedule(static)
  for (int64_t plane = 0; plane < g.n * g.c; ++plane) {
    T* pdx = dx + plane * g.isz;
    const T* pdy = dy + plane * g.osz;
    std::fill(pdx, pdx + g.isz, T(0));
    if (a.kind == PoolKind::max) {
      for (int64_t o = 0; o < g.osz; ++o)
        if (arg[plane * g.osz + o] >= 0) pdx[arg[plane * g.osz + o]] += pdy[o];
      continue;
    }
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow) {
          int64_t inside = 0;
          const int64_t padded = for_each_tap(g, od, oh, ow, [&](int64_t) { ++inside; });
          const int64_t div = a.count_include_pad ? padded : inside;
          if (div == 0) continue;
          const T share = pdy[(od * g.out[1] + oh) * g.out[2] + ow] / static_cast<T>(div);
          for_each_tap(g, od, oh, ow, [&](int64_t pos) { pdx[pos] += share; });
        }
  }
}

const Tensor& pool_output_grad(const PoolAttrs& a, const std::vector<const Tensor*>& gout,
                               const PoolGeom& g, DType dt, const Node& node) {
  check(!a.nhwc, node.label(),
        "has no backward in its fused form (mixq_layout); train the unfused graph");
  check(!gout.empty() && gout[0], node.label(), "backward needs the gradient of output Y");
  check(gout[0]->shape() == g.out_shape() && gout[0]->dtype() == dt, node.label(),
        "gradient of Y " + shape_str(gout[0]->shape()) + " does not match Y " +
            shape_str(g.out_shape()));
  return *gout[0];
}

class PoolRef : public Kernel {
 public:
  PoolRef(const Node& node, PoolKind kind, bool global) : node_(node), a_(node, kind, global) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    PoolGeom g = pool_geometry(a_, x.shape(), node_);
    Tensor& y = *out.at(0);
    ensure(y, x.dtype(), g.out_shape());
    const bool want_idx = out.size() > 1 && out[1];
    if (want_idx)
      check(a_.kind == PoolKind::max && !a_.nhwc, node_.label(),
            "the Indices output needs MaxPool in NCHW layout");
    // Max pooling keeps its winners for the backward pass (and the Indices output).
    argmax_for_.clear();
    int64_t* arg = nullptr;
    if (a_.kind == PoolKind::max) {
      argmax_.resize(g.n * g.c * g.osz);
      arg = argmax_.data();
    }
    run(g, x, y, arg);
    if (a_.kind == PoolKind::max) argmax_for_ = x.shape();
    if (want_idx) {
      ensure(*out[1], DType::i64, g.out_shape());
      indices_from_argmax(a_, g, arg, out[1]->data<int64_t>());
    }
  }

  bool has_backward() const override { return !a_.nhwc; }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& x = required_input(in, 0, node_);
    const PoolGeom g = pool_geometry(a_, x.shape(), node_);
    const Tensor& dy = pool_output_grad(a_, gout, g, x.dtype(), node_);
    check(x.dtype() == DType::f32 || x.dtype() == DType::f64, node_.label(),
          std::string("no backward for dtype ") + dtype_name(x.dtype()));
    Tensor* dx = gin.empty() ? nullptr : gin[0];
    if (!dx) return;
    if (a_.kind == PoolKind::max && argmax_for_ != x.shape()) {
      // No forward of this shape to take the winners from: find them again.
      Tensor y;
      ensure(y, x.dtype(), g.out_shape());
      argmax_.resize(g.n * g.c * g.osz);
      run(g, x, y, argmax_.data());
      argmax_for_ = x.shape();
    }
    ensure(*dx, x.dtype(), x.shape());
    if (x.dtype() == DType::f32)
      pool_backward_reference(a_, g, dy.data<float>(), argmax_.data(), dx->data<float>());
    else
      pool_backward_reference(a_, g, dy.data<double>(), argmax_.data(), dx->data<double>());
  }

 private:
  void run(const PoolGeom& g, const Tensor& x, Tensor& y, int64_t* arg) {
    switch (x.dtype()) {
      case DType::f32:
        return pool_reference(a_, g, x.data<float>(), y.data<float>(), arg);
      case DType::f64:
        return pool_reference(a_, g, x.data<double>(), y.data<double>(), arg);
      case DType::i8:
        if (a_.kind == PoolKind::max)
          return pool_reference(a_, g, x.data<int8_t>(), y.data<int8_t>(), arg);
        break;
      case DType::u8:
        if (a_.kind == PoolKind::max)
          return pool_reference(a_, g, x.data<uint8_t>(), y.data<uint8_t>(), arg);
        break;
      default:
        break;
    }
    throw Error(node_.label(), std::string("unsupported dtype ") + dtype_name(x.dtype()));
  }

  Node node_;
  PoolAttrs a_;
  std::vector<int64_t> argmax_;  // per plane and output: the winning position, -1 for none
  Shape argmax_for_;             // the X shape argmax_ belongs to (empty: none)
};

// oneDNN's view of a pooling geometry. ceil_mode becomes extra right padding, which is exact for
// max and for averages that exclude padding; an average that counts padding and needs such
// extra padding, or a window lying wholly in the padding, is left to the reference (ok false).
struct DnnlPool {
  bool ok = false;
  dnnl::memory::dims k, s, d, pl, pr, src, dst;
  dnnl::algorithm alg;
  dnnl::memory::format_tag tag;

  DnnlPool(const PoolAttrs& a, const PoolGeom& g, const Shape& xs) {
    using tag_t = dnnl::memory::format_tag;
    if (shape_numel(xs) == 0) return;
    src = {g.n, g.c};
    dst = {g.n, g.c};
    for (size_t j = 3 - g.sp; j < 3; ++j) {
      const int64_t keff = window_extent(g.k[j], g.d[j]);
      // Right padding that makes the last window fit exactly.
      const int64_t right = (g.out[j] - 1) * g.s[j] + keff - g.in[j] - g.pb[j];
      if (right > g.pe[j] && a.kind == PoolKind::avg && a.count_include_pad) return;
      if (g.pb[j] >= keff || right >= keff) return;  // a window of padding only
      k.push_back(g.k[j]);
      s.push_back(g.s[j]);
      d.push_back(g.d[j] - 1);
      pl.push_back(g.pb[j]);
      pr.push_back(std::max<int64_t>(right, 0));
      src.push_back(g.in[j]);
      dst.push_back(g.out[j]);
    }
    alg = a.kind == PoolKind::max ? dnnl::algorithm::pooling_max
          : a.count_include_pad   ? dnnl::algorithm::pooling_avg_include_padding
                                  : dnnl::algorithm::pooling_avg_exclude_padding;
    tag = g.sp == 1   ? (g.nhwc ? tag_t::acb : tag_t::abc)
          : g.sp == 2 ? (g.nhwc ? tag_t::acdb : tag_t::abcd)
                      : (g.nhwc ? tag_t::acdeb : tag_t::abcde);
    ok = true;
  }
  dnnl::memory::desc src_md() const { return {src, dnnl::memory::data_type::f32, tag}; }
  dnnl::memory::desc dst_md() const { return {dst, dnnl::memory::data_type::f32, tag}; }
  dnnl::pooling_v2_forward::desc forward(dnnl::prop_kind prop) const {
    return {prop, alg, src_md(), dst_md(), s, k, d, pl, pr};
  }
};

// oneDNN pooling (f32, 1..3 spatial axes); geometries it does not take go to the reference.
// Backward: oneDNN's pooling backward; max pooling reads the workspace of a forward-training
// run, which the forward writes in training mode and the backward otherwise makes itself.
class PoolDnnl : public Kernel {
 public:
  PoolDnnl(const Node& node, PoolKind kind, bool global)
      : node_(node), a_(node, kind, global), ref_(node, kind, global) {}

  void set_training(bool training) override { training_ = training; }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    ws_valid_ = false;
    last_ref_ = true;
    if (x.dtype() != DType::f32) return ref_.forward(in, out);
    Plan& p = plans_.get({&x.shape()}, [&] { return make_plan(x.shape()); });
    if (!p.prim) return ref_.forward(in, out);
    last_ref_ = false;
    Tensor& y = *out.at(0);
    ensure(y, DType::f32, p.g.out_shape());
    BwdPlan* b = nullptr;
    if (training_ && a_.kind == PoolKind::max) {
      b = &bwd_plans_.get({&x.shape()}, [&] { return make_bwd_plan(x.shape()); });
      if (!b->bwd) b = nullptr;
    }
    dnnl_util::guarded(node_.label(), [&] {
      if (b) {
        dnnl_util::bind(b->src, x);
        dnnl_util::bind(b->dst, y);
        b->fwd.run();
      } else {
        dnnl_util::bind(p.src, x);
        dnnl_util::bind(p.dst, y);
        p.prim.run();
      }
      dnnl_util::stream().wait();
    });
    if (b) {
      ws_valid_ = true;
      ws_shape_ = x.shape();
    }
  }

  bool has_backward() const override { return !a_.nhwc; }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& x = required_input(in, 0, node_);
    if (x.dtype() != DType::f32) return ref_.backward(in, out, gout, gin);
    BwdPlan& b = bwd_plans_.get({&x.shape()}, [&] { return make_bwd_plan(x.shape()); });
    if (!b.bwd) {
      // The reference needs its own forward for the winners of max pooling.
      if (!last_ref_ && a_.kind == PoolKind::max) {
        Tensor y;
        ref_.forward({&x}, {&y});
      }
      return ref_.backward(in, out, gout, gin);
    }
    const Tensor& dy = pool_output_grad(a_, gout, b.g, DType::f32, node_);
    Tensor* dx = gin.empty() ? nullptr : gin[0];
    if (!dx) return;
    ensure(*dx, DType::f32, x.shape());
    dnnl_util::guarded(node_.label(), [&] {
      if (a_.kind == PoolKind::max && !(ws_valid_ && ws_shape_ == x.shape())) {
        // No training forward filled the workspace: run one into scratch.
        dnnl_util::bind(b.src, x);
        b.dst.set_data_handle(dnnl_util::scratch(0, b.dst.get_desc().get_size()));
        b.fwd.run();
      }
      dnnl_util::bind(b.diff_dst, dy);
      dnnl_util::bind(b.diff_src, *dx);
      b.bwd.run();
      dnnl_util::stream().wait();
    });
  }

 private:
  struct Plan {
    PoolGeom g;
    dnnl_util::Bound prim;  // empty: use the reference
    dnnl::memory src, dst;
  };
  struct BwdPlan {
    PoolGeom g;
    dnnl_util::Bound fwd, bwd;  // fwd: forward training (max only); bwd empty: the reference
    dnnl::memory src, dst, diff_src, diff_dst, ws;  // ws owned
  };

  Plan make_plan(const Shape& xs) {
    Plan p;
    p.g = pool_geometry(a_, xs, node_);
    const DnnlPool d(a_, p.g, xs);
    if (!d.ok) return p;
    try {
      dnnl::pooling_v2_forward::primitive_desc pd(d.forward(dnnl::prop_kind::forward_inference),
                                                  dnnl_util::engine());
      p.src = dnnl_util::unbound(d.src_md());
      p.dst = dnnl_util::unbound(d.dst_md());
      p.prim = dnnl_util::Bound(dnnl::pooling_v2_forward(pd));
      p.prim.arg(DNNL_ARG_SRC, p.src).arg(DNNL_ARG_DST, p.dst);
    } catch (const dnnl::error&) {
      p.prim = dnnl_util::Bound();  // a geometry oneDNN rejects: the reference does it
    }
    return p;
  }

  BwdPlan make_bwd_plan(const Shape& xs) {
    BwdPlan p;
    p.g = pool_geometry(a_, xs, node_);
    const DnnlPool d(a_, p.g, xs);
    if (!d.ok || a_.nhwc) return p;
    try {
      auto& eng = dnnl_util::engine();
      dnnl::pooling_v2_forward::primitive_desc fpd(d.forward(dnnl::prop_kind::forward_training),
                                                   eng);
      dnnl::pooling_v2_backward::primitive_desc bpd(
          dnnl::pooling_v2_backward::desc(d.alg, d.src_md(), d.dst_md(), d.s, d.k, d.d, d.pl, d.pr),
          eng, fpd);
      p.src = dnnl_util::unbound(d.src_md());
      p.dst = dnnl_util::unbound(d.dst_md());
      p.diff_src = dnnl_util::unbound(d.src_md());
      p.diff_dst = dnnl_util::unbound(d.dst_md());
      p.bwd = dnnl_util::Bound(dnnl::pooling_v2_backward(bpd));
      p.bwd.arg(DNNL_ARG_DIFF_DST, p.diff_dst).arg(DNNL_ARG_DIFF_SRC, p.diff_src);
      if (a_.kind == PoolKind::max) {
        p.ws = dnnl::memory(fpd.workspace_desc(), eng);
        p.fwd = dnnl_util::Bound(dnnl::pooling_v2_forward(fpd));
        p.fwd.arg(DNNL_ARG_SRC, p.src).arg(DNNL_ARG_DST, p.dst).arg(DNNL_ARG_WORKSPACE, p.ws);
        p.bwd.arg(DNNL_ARG_WORKSPACE, p.ws);
      }
    } catch (const dnnl::error&) {
      p.bwd = dnnl_util::Bound();
      p.fwd = dnnl_util::Bound();
    }
    return p;
  }

  Node node_;
  PoolAttrs a_;
  PoolRef ref_;
  dnnl_util::PlanCache<Plan> plans_;
  dnnl_util::PlanCache<BwdPlan> bwd_plans_;
  bool training_ = false;
  bool ws_valid_ = false;  // the last forward filled the workspace of the plan for ws_shape_
  Shape ws_shape_;
  bool last_ref_ = true;  // the last forward ran the reference
};

template <PoolKind kind, bool global>
std::unique_ptr<Kernel> make_ref(const Node& node, const Graph&) {
  return std::make_unique<PoolRef>(node, kind, global);
}

template <PoolKind kind, bool global>
std::unique_ptr<Kernel> make_dnnl(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  if (node.outputs.size() > 1 && node.outputs[1] >= 0) return nullptr;  // Indices: reference
  return std::make_unique<PoolDnnl>(node, kind, global);
}

}  // namespace

void register_pool_ops(Registry& r) {
  r.add("MaxPool", "dnnl", make_dnnl<PoolKind::max, false>, false);
  r.add("MaxPool", "ref", make_ref<PoolKind::max, false>, true);
  r.add("AveragePool", "dnnl", make_dnnl<PoolKind::avg, false>, false);
  r.add("AveragePool", "ref", make_ref<PoolKind::avg, false>, true);
  r.add("GlobalMaxPool", "dnnl", make_dnnl<PoolKind::max, true>, false);
  r.add("GlobalMaxPool", "ref", make_ref<PoolKind::max, true>, true);
  r.add("GlobalAveragePool", "dnnl", make_dnnl<PoolKind::avg, true>, false);
  r.add("GlobalAveragePool", "ref", make_ref<PoolKind::avg, true>, true);
}

}  // namespace mixq
