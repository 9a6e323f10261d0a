// Conv and ConvTranspose reference: plain N-D loops in double accumulation (the specification).
// Backward serves both ops: Conv's data gradient is ConvTranspose's forward and the other way
// round.
#include <algorithm>
#include <memory>

#include "ops/conv_impl.h"

namespace mixq {
namespace conv_impl {

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
    const int64_t keff = window_extent(g.k[i], g.dil[i]);
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

ConvGeom checked_geometry(const ConvAttrs& a, bool transpose, const Shape& x, const Shape& w,
                          const Node& node) {
  ConvGeom g = transpose ? conv_transpose_geometry(a, x, w, node) : conv_geometry(a, x, w, node);
  check(g.sp <= 3, node.label(), "more than 3 spatial axes are not supported");
  return g;
}

void check_sum_input(const Tensor* extra, const Tensor& y, const Node& node) {
  check(extra && extra->shape() == y.shape() && extra->dtype() == y.dtype(), node.label(),
        "fused sum input must match the output " + shape_str(y.shape()));
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

}  // namespace conv_impl

namespace {
using namespace conv_impl;

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
    const ConvGeom g = checked_geometry(a_, transpose_, x.shape(), w.shape(), node_);
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
    const ConvGeom g = checked_geometry(a_, transpose_, x.shape(), w.shape(), node_);
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

}  // namespace

void register_conv_ops(Registry& r) {
  r.add("Conv", "dnnl", make_conv_dnnl, false);
  r.add("Conv", "ref", make_conv_ref, true);
  r.add("ConvTranspose", "ref", make_conv_transpose_ref, true);
}

}  // namespace mixq
