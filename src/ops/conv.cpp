// Conv and ConvTranspose: a plain N-D reference (the specification) and a oneDNN fast path for
// f32 Conv with cached primitives and pre-reordered weights. Backward: the reference serves both
// ops (Conv's data gradient is ConvTranspose's forward and the other way round); the fast path
// runs oneDNN's backward data and backward weights primitives, cached per shape.
//
// Internal attributes (set by graph passes, read here):
//   mixq_activation = "Relu"  apply relu to the output
//   mixq_sum = 1              inputs[3] (same shape as the output) is added before the activation
//   mixq_layout = "NHWC"      X, Y (and the sum input) are channels-last: [N, spatial..., C];
//                             W stays in ONNX layout
#include <algorithm>
#include <cstring>
#include <memory>

#include "ops/common.h"
#include "ops/dnnl_util.h"
#include "ops/kernel.h"
#include "ops/window.h"

namespace mixq {
namespace {

// Attributes shared by Conv and ConvTranspose, read once per node.
struct ConvAttrs : WindowAttrs {
  int64_t group = 1;
  std::vector<int64_t> output_padding, output_shape;
  bool relu = false;
  bool sum = false;
  bool nhwc = false;

  explicit ConvAttrs(const Node& node) : WindowAttrs(node) {
    group = node.get_int("group", 1);
    check(group >= 1, node.label(), "group must be positive");
    output_padding = node.get_ints("output_padding");
    output_shape = node.get_ints("output_shape");
    std::string act = node.get_string("mixq_activation", "");
    check(act.empty() || act == "Relu", node.label(), "unsupported fused activation '" + act + "'");
    relu = act == "Relu";
    sum = node.get_int("mixq_sum", 0) != 0;
    std::string layout = node.get_string("mixq_layout", "NCHW");
    check(layout == "NCHW" || layout == "NHWC", node.label(), "unknown layout '" + layout + "'");
    nhwc = layout == "NHWC";
  }
  // Fused forms come from inference passes; training runs the unfused graph.
  bool fused() const { return relu || sum || nhwc; }
};

// Everything a kernel needs for one input shape; spatial vectors have rank sp.
struct ConvGeom {
  int64_t n = 0, c = 0, m = 0, group = 1;
  size_t sp = 0;
  bool nhwc = false;
  Shape in, k, out;
  std::vector<int64_t> stride, dil, pad_b, pad_e;

  Shape out_shape() const { return full_shape(m, out); }
  Shape in_shape() const { return full_shape(c, in); }
  Shape full_shape(int64_t channels, const Shape& spatial) const {
    Shape s{n};
    if (!nhwc) s.push_back(channels);
    s.insert(s.end(), spatial.begin(), spatial.end());
    if (nhwc) s.push_back(channels);
    return s;
  }
};

// Shape checks and per-axis attributes common to Conv and ConvTranspose; out and pads are
// left to the caller.
ConvGeom base_geometry(const ConvAttrs& a, const Shape& x, const Shape& w, bool transpose,
                       const Node& node) {
  check(x.size() >= 3, node.label(),
        "input X must have rank >= 3 (N, C, spatial...), got " + shape_str(x));
  check(w.size() == x.size(), node.label(),
        "weights W " + shape_str(w) + " must have the rank of X " + shape_str(x));
  ConvGeom g;
  g.sp = x.size() - 2;
  g.nhwc = a.nhwc;
  g.n = x[0];
  g.c = a.nhwc ? x.back() : x[1];
  g.group = a.group;
  const std::string xs =
      " (X " + shape_str(x) + ", W " + shape_str(w) + ", group " + std::to_string(a.group) + ")";
  if (!transpose) {
    check(w[0] % a.group == 0, node.label(), "output channels not divisible by group" + xs);
    check(w[1] * a.group == g.c, node.label(), "channel count of X does not match W" + xs);
    g.m = w[0];
  } else {
    check(w[0] == g.c, node.label(), "channel count of X does not match W" + xs);
    check(g.c % a.group == 0, node.label(), "input channels not divisible by group" + xs);
    g.m = w[1] * a.group;
  }
  g.in.assign(x.begin() + (a.nhwc ? 1 : 2), x.end() - (a.nhwc ? 1 : 0));
  g.k.assign(w.begin() + 2, w.end());
  if (!a.kernel.empty())
    check(a.kernel == g.k, node.label(),
          "kernel_shape " + shape_str(a.kernel) + " does not match W " + shape_str(w));
  for (int64_t v : g.k) check(v >= 1, node.label(), "empty kernel in W " + shape_str(w));
  g.stride = per_axis(a.strides, g.sp, 1, "strides", node);
  g.dil = per_axis(a.dilations, g.sp, 1, "dilations", node);
  a.check_pads(g.sp, node);
  g.pad_b.assign(g.sp, 0);
  g.pad_e.assign(g.sp, 0);
  g.out.assign(g.sp, 0);
  return g;
}

ConvGeom conv_geometry(const ConvAttrs& a, const Shape& x, const Shape& w, const Node& node) {
  ConvGeom g = base_geometry(a, x, w, false, node);
  for (size_t i = 0; i < g.sp; ++i) {
    const AxisWindow win = forward_window(a, i, g.sp, g.in[i], g.k[i], g.stride[i], g.dil[i]);
    check(win.fits, node.label(),
          "kernel " + shape_str(g.k) + " larger than padded input " + shape_str(x));
    g.pad_b[i] = win.pad_b;
    g.pad_e[i] = win.pad_e;
    g.out[i] = win.out;
  }
  return g;
}

ConvGeom conv_transpose_geometry(const ConvAttrs& a, const Shape& x, const Shape& w,
                                 const Node& node) {
  ConvGeom g = base_geometry(a, x, w, true, node);
  auto out_pad = per_axis(a.output_padding, g.sp, 0, "output_padding", node);
  std::vector<int64_t> want;
  if (!a.output_shape.empty()) {
    check(a.output_shape.size() >= g.sp, node.label(), "output_shape is too short");
    want.assign(a.output_shape.end() - g.sp, a.output_shape.end());
  }
  const bool same = a.same();
  for (size_t i = 0; i < g.sp; ++i) {
    const int64_t keff = (g.k[i] - 1) * g.dil[i] + 1;
    const int64_t full = g.stride[i] * (g.in[i] - 1) + out_pad[i] + keff;
    if (!want.empty() || same) {
      int64_t target = !want.empty() ? want[i] : g.in[i] * g.stride[i];
      // A target beyond the full extent leaves zeros at the end (as output_padding would).
      int64_t total = std::max<int64_t>(0, full - target);
      // The spec puts the odd pad at the end for SAME_UPPER and at the start otherwise.
      g.pad_b[i] = a.auto_pad == AutoPad::same_upper ? total / 2 : total - total / 2;
      g.pad_e[i] = total - g.pad_b[i];
      g.out[i] = target;
    } else {
      if (a.auto_pad == AutoPad::notset && !a.pads.empty()) {
        g.pad_b[i] = a.pads[i];
        g.pad_e[i] = a.pads[i + g.sp];
      }
      g.out[i] = full - g.pad_b[i] - g.pad_e[i];
    }
    check(g.out[i] >= 1, node.label(), "empty output for input " + shape_str(x));
  }
  return g;
}

// Spatial sizes padded to 3 axes (leading unit axes) so one loop nest serves 1D..3D, plus the
// element strides of channels and spatial positions for either layout.
struct Geom3 {
  int64_t in[3], k[3], out[3], s[3], d[3], p[3];
  int64_t isz, osz, ksz;
  int64_t x_cs, x_ps, y_cs, y_ps;  // channel stride, spatial-position stride

  explicit Geom3(const ConvGeom& g) {
    const size_t off = 3 - g.sp;
    for (size_t i = 0; i < 3; ++i) {
      bool real = i >= off;
      in[i] = real ? g.in[i - off] : 1;
      k[i] = real ? g.k[i - off] : 1;
      out[i] = real ? g.out[i - off] : 1;
      s[i] = real ? g.stride[i - off] : 1;
      d[i] = real ? g.dil[i - off] : 1;
      p[i] = real ? g.pad_b[i - off] : 0;
    }
    isz = in[0] * in[1] * in[2];
    osz = out[0] * out[1] * out[2];
    ksz = k[0] * k[1] * k[2];
    x_cs = g.nhwc ? 1 : isz;
    x_ps = g.nhwc ? g.c : 1;
    y_cs = g.nhwc ? 1 : osz;
    y_ps = g.nhwc ? g.m : 1;
  }
};

template <class T>
void conv_reference(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const Geom3 q(g);
  const int64_t cg = g.c / g.group, mg = g.m / g.group;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t m = 0; m < g.m; ++m) {
      const T* xg = x + n * g.c * q.isz + (m / mg) * cg * q.x_cs;
      const T* wm = w + m * cg * q.ksz;
      T* ym = y + n * g.m * q.osz + m * q.y_cs;
      for (int64_t od = 0; od < q.out[0]; ++od)
        for (int64_t oh = 0; oh < q.out[1]; ++oh)
          for (int64_t ow = 0; ow < q.out[2]; ++ow) {
            double acc = b ? static_cast<double>(b[m]) : 0.0;
            for (int64_t c = 0; c < cg; ++c)
              for (int64_t kd = 0; kd < q.k[0]; ++kd) {
                const int64_t id = od * q.s[0] - q.p[0] + kd * q.d[0];
                if (id < 0 || id >= q.in[0]) continue;
                for (int64_t kh = 0; kh < q.k[1]; ++kh) {
                  const int64_t ih = oh * q.s[1] - q.p[1] + kh * q.d[1];
                  if (ih < 0 || ih >= q.in[1]) continue;
                  for (int64_t kw = 0; kw < q.k[2]; ++kw) {
                    const int64_t iw = ow * q.s[2] - q.p[2] + kw * q.d[2];
                    if (iw < 0 || iw >= q.in[2]) continue;
                    const int64_t pos = (id * q.in[1] + ih) * q.in[2] + iw;
                    acc += static_cast<double>(xg[c * q.x_cs + pos * q.x_ps]) *
                           wm[((c * q.k[0] + kd) * q.k[1] + kh) * q.k[2] + kw];
                  }
                }
              }
            ym[((od * q.out[1] + oh) * q.out[2] + ow) * q.y_ps] = static_cast<T>(acc);
          }
    }
}

template <class T>
void conv_transpose_reference(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const Geom3 q(g);
  const int64_t cg = g.c / g.group, mg = g.m / g.group;
  // Gather form: each output element sums the inputs that scatter into it, so threads never
  // write the same element.
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t m = 0; m < g.m; ++m) {
      const int64_t gi = m / mg, mm = m % mg;
      T* ym = y + n * g.m * q.osz + m * q.y_cs;
      for (int64_t od = 0; od < q.out[0]; ++od)
        for (int64_t oh = 0; oh < q.out[1]; ++oh)
          for (int64_t ow = 0; ow < q.out[2]; ++ow) {
            double acc = b ? static_cast<double>(b[m]) : 0.0;
            for (int64_t kd = 0; kd < q.k[0]; ++kd) {
              const int64_t td = od + q.p[0] - kd * q.d[0];
              if (td < 0 || td % q.s[0] != 0 || td / q.s[0] >= q.in[0]) continue;
              for (int64_t kh = 0; kh < q.k[1]; ++kh) {
                const int64_t th = oh + q.p[1] - kh * q.d[1];
                if (th < 0 || th % q.s[1] != 0 || th / q.s[1] >= q.in[1]) continue;
                for (int64_t kw = 0; kw < q.k[2]; ++kw) {
                  const int64_t tw = ow + q.p[2] - kw * q.d[2];
                  if (tw < 0 || tw % q.s[2] != 0 || tw / q.s[2] >= q.in[2]) continue;
                  const int64_t pos =
                      ((td / q.s[0]) * q.in[1] + th / q.s[1]) * q.in[2] + tw / q.s[2];
                  const int64_t wi = (kd * q.k[1] + kh) * q.k[2] + kw;
                  for (int64_t c = 0; c < cg; ++c) {
                    const int64_t ic = gi * cg + c;
                    acc += static_cast<double>(x[n * g.c * q.isz + ic * q.x_cs + pos * q.x_ps]) *
                           w[(ic * mg + mm) * q.ksz + wi];
                  }
                }
              }
            }
            ym[((od * q.out[1] + oh) * q.out[2] + ow) * q.y_ps] = static_cast<T>(acc);
          }
    }
}

// The adjoint geometry: Conv's backward data is ConvTranspose's forward with the channel and
// spatial roles of input and output exchanged, and the other way round (same W, strides,
// dilations and leading pads; the loops bound positions by the extents, so trailing pads and
// output_padding need no mirror).
ConvGeom adjoint(const ConvGeom& g) {
  ConvGeom s = g;
  std::swap(s.c, s.m);
  std::swap(s.in, s.out);
  s.nhwc = false;
  return s;
}

// dW[m, c, k] = sum over n and output positions of X[n, group(m) * cg + c, tap] * dY[n, m, o]
// (channels first).
template <class T>
void conv_weight_grad(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const Geom3 q(g);
  const int64_t cg = g.c / g.group, mg = g.m / g.group;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t m = 0; m < g.m; ++m)
    for (int64_t c = 0; c < cg; ++c) {
      const int64_t ic = (m / mg) * cg + c;
      for (int64_t kd = 0; kd < q.k[0]; ++kd)
        for (int64_t kh = 0; kh < q.k[1]; ++kh)
          for (int64_t kw = 0; kw < q.k[2]; ++kw) {
            double acc = 0;
            for (int64_t n = 0; n < g.n; ++n) {
              const T* xp = x + (n * g.c + ic) * q.isz;
              const T* dp = dy + (n * g.m + m) * q.osz;
              for (int64_t od = 0; od < q.out[0]; ++od) {
                const int64_t id = od * q.s[0] - q.p[0] + kd * q.d[0];
                if (id < 0 || id >= q.in[0]) continue;
                for (int64_t oh = 0; oh < q.out[1]; ++oh) {
                  const int64_t ih = oh * q.s[1] - q.p[1] + kh * q.d[1];
                  if (ih < 0 || ih >= q.in[1]) continue;
                  for (int64_t ow = 0; ow < q.out[2]; ++ow) {
                    const int64_t iw = ow * q.s[2] - q.p[2] + kw * q.d[2];
                    if (iw < 0 || iw >= q.in[2]) continue;
                    acc += static_cast<double>(xp[(id * q.in[1] + ih) * q.in[2] + iw]) *
                           dp[(od * q.out[1] + oh) * q.out[2] + ow];
                  }
                }
              }
            }
            dw[(m * cg + c) * q.ksz + (kd * q.k[1] + kh) * q.k[2] + kw] = static_cast<T>(acc);
          }
    }
}

// dB[m] = sum of dY over the batch and the positions of channel m (channels first).
template <class T>
void conv_bias_grad(int64_t n, int64_t m, int64_t positions, const T* dy, T* db) {
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < m; ++c) {
    double acc = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t q = 0; q < positions; ++q) acc += dy[(i * m + c) * positions + q];
    db[c] = static_cast<T>(acc);
  }
}

void check_sum_input(const Tensor* extra, const Tensor& y, const Node& node) {
  check(extra && extra->shape() == y.shape() && extra->dtype() == y.dtype(), node.label(),
        "fused sum input must match the output " + shape_str(y.shape()));
}

// Adds the fused extra input and applies the fused activation in place.
template <class T>
void apply_fusion(const ConvAttrs& a, const Tensor* extra, Tensor& y, const Node& node) {
  T* p = y.data<T>();
  const int64_t n = y.numel();
  if (a.sum) {
    check_sum_input(extra, y, node);
    const T* e = extra->data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] += e[i];
  }
  if (a.relu)
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] > T(0) ? p[i] : T(0);
}

void check_bias(const Tensor* b, const ConvGeom& g, DType dt, const Node& node) {
  if (!b) return;
  check(b->dtype() == dt, node.label(), "bias B must have the dtype of X");
  check(b->rank() == 1 && b->dim(0) == g.m, node.label(),
        "bias B " + shape_str(b->shape()) + " must be [" + std::to_string(g.m) + "]");
}

// Checks shared by the backward passes: an unfused node and dY of the output's shape.
const Tensor& output_grad(const ConvAttrs& a, const std::vector<const Tensor*>& gout,
                          const ConvGeom& g, const Node& node) {
  check(!a.fused(), node.label(),
        "has no backward in its fused form (mixq_activation, mixq_sum or mixq_layout); train the "
        "unfused graph");
  check(!gout.empty() && gout[0], node.label(), "backward needs the gradient of output Y");
  check(gout[0]->shape() == g.out_shape(), node.label(),
        "gradient of Y " + shape_str(gout[0]->shape()) + " does not match Y " +
            shape_str(g.out_shape()));
  return *gout[0];
}

// Reference backward of Conv (transpose = false) or ConvTranspose in T.
template <class T>
void conv_backward_reference(const ConvGeom& g, bool transpose, const Tensor& x, const Tensor& w,
                             const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db) {
  const DType dt = x.dtype();
  const ConvGeom s = adjoint(g);
  if (dx) {
    ensure(*dx, dt, x.shape());
    if (transpose)
      conv_reference<T>(s, dy.data<T>(), w.data<T>(), nullptr, dx->data<T>());
    else
      conv_transpose_reference<T>(s, dy.data<T>(), w.data<T>(), nullptr, dx->data<T>());
  }
  if (dw) {
    ensure(*dw, dt, w.shape());
    if (transpose)
      conv_weight_grad<T>(s, dy.data<T>(), x.data<T>(), dw->data<T>());
    else
      conv_weight_grad<T>(g, x.data<T>(), dy.data<T>(), dw->data<T>());
  }
  if (db) {
    ensure(*db, dt, {g.m});
    conv_bias_grad<T>(g.n, g.m, shape_numel(g.out), dy.data<T>(), db->data<T>());
  }
}

class ConvRef : public Kernel {
 public:
  ConvRef(const Node& node, bool transpose) : node_(node), a_(node), transpose_(transpose) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& w = required_input(in, 1, node_);
    const Tensor* b = optional_input(in, 2);
    check(x.dtype() == w.dtype(), node_.label(), "X and W must have the same dtype");
    ConvGeom g = transpose_ ? conv_transpose_geometry(a_, x.shape(), w.shape(), node_)
                            : conv_geometry(a_, x.shape(), w.shape(), node_);
    check(g.sp <= 3, node_.label(), "more than 3 spatial axes are not supported");
    check_bias(b, g, x.dtype(), node_);
    Tensor& y = *out.at(0);
    ensure(y, x.dtype(), g.out_shape());
    if (x.dtype() == DType::f32)
      run<float>(g, x, w, b, optional_input(in, 3), y);
    else if (x.dtype() == DType::f64)
      run<double>(g, x, w, b, optional_input(in, 3), y);
    else
      throw Error(node_.label(), std::string("unsupported dtype ") + dtype_name(x.dtype()));
  }

  bool has_backward() const override { return !a_.fused(); }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& w = required_input(in, 1, node_);
    const Tensor* b = optional_input(in, 2);
    ConvGeom g = transpose_ ? conv_transpose_geometry(a_, x.shape(), w.shape(), node_)
                            : conv_geometry(a_, x.shape(), w.shape(), node_);
    check(g.sp <= 3, node_.label(), "more than 3 spatial axes are not supported");
    check(x.dtype() == w.dtype(), node_.label(), "X and W must have the same dtype");
    check_bias(b, g, x.dtype(), node_);
    const Tensor& dy = output_grad(a_, gout, g, node_);
    check(dy.dtype() == x.dtype(), node_.label(), "gradient of Y must have the dtype of X");
    Tensor* db = b ? grad_slot(gin, 2) : nullptr;
    if (x.dtype() == DType::f32)
      conv_backward_reference<float>(g, transpose_, x, w, dy, grad_slot(gin, 0), grad_slot(gin, 1),
                                     db);
    else if (x.dtype() == DType::f64)
      conv_backward_reference<double>(g, transpose_, x, w, dy, grad_slot(gin, 0), grad_slot(gin, 1),
                                      db);
    else
      throw Error(node_.label(), std::string("no backward for dtype ") + dtype_name(x.dtype()));
  }

 private:
  template <class T>
  void run(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor* b,
           const Tensor* extra, Tensor& y) {
    const T* bp = b ? b->data<T>() : nullptr;
    if (transpose_)
      conv_transpose_reference<T>(g, x.data<T>(), w.data<T>(), bp, y.data<T>());
    else
      conv_reference<T>(g, x.data<T>(), w.data<T>(), bp, y.data<T>());
    apply_fusion<T>(a_, extra, y, node_);
  }

  Node node_;
  ConvAttrs a_;
  bool transpose_;
};

std::unique_ptr<Kernel> make_conv_ref(const Node& node, const Graph&) {
  return std::make_unique<ConvRef>(node, false);
}
std::unique_ptr<Kernel> make_conv_transpose_ref(const Node& node, const Graph&) {
  return std::make_unique<ConvRef>(node, true);
}

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
    p.geom = conv_geometry(a_, xs, wsh, node_);
    check(p.geom.sp <= 3, node_.label(), "more than 3 spatial axes are not supported");
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
      const int64_t keff = (g.k[i] - 1) * g.dil[i] + 1;
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
    p.geom = conv_geometry(a_, xs, wsh, node_);
    check(p.geom.sp <= 3, node_.label(), "more than 3 spatial axes are not supported");
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

std::unique_ptr<Kernel> make_conv_dnnl(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32 || !node.has_input(1)) return nullptr;
  const Value& w = graph.values[node.inputs[1]];
  if (w.dtype != DType::f32) return nullptr;
  // oneDNN covers 1..3 spatial axes; other ranks (and rank errors) go to the reference.
  if (w.shape_known && (w.shape.size() < 3 || w.shape.size() > 5)) return nullptr;
  return std::make_unique<ConvDnnl>(node, graph);
}

}  // namespace

void register_conv_ops(Registry& r) {
  r.add("Conv", "dnnl", make_conv_dnnl, false);
  r.add("Conv", "ref", make_conv_ref, true);
  r.add("ConvTranspose", "ref", make_conv_transpose_ref, true);
}

}  // namespace mixq
