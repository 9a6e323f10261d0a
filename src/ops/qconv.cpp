// mixq.QConv: integer convolution. The float input is quantized on the fly to unsigned codes
// q = clamp(round_half_even(x / scale), 0, qmax) (zero point 0, as after ReLU), convolved with
// int8 weight codes, and the int32 sums scaled back per output channel:
//   y[n,o,..] = scale * step[o] * sum(codes * q) + bias[o]
// which equals Conv(FakeQuant(x), codes * step) + bias up to float rounding. Inputs: x (f32
// NCHW), codes (i8 [O, C/group, kh, kw]), step (f32 [O]), bias (f32 [O], optional); attributes:
// strides, pads, dilations, auto_pad, group, scale, qmax. The reference kernel counts in int64
// loops; the fast one is oneDNN's u8 x s8 convolution (VNNI where the CPU has it).
//
// Fused forms from the inference passes (passes/fuse.h, passes/layout.h), as for Conv:
//   mixq_activation = "Relu"  relu of the result;  mixq_sum = 1  inputs[4] (the output's shape)
//   added before it;  mixq_layout = "NHWC"  x, y and the sum are channels-last.
// Channels-last, the fast kernel quantizes x without a transpose and writes y in place, with
// bias, sum and relu applied by oneDNN inside the convolution.
#include <cmath>
#include <cstring>
#include <map>

#include "base/error.h"
#include "ir/internal_names.h"
#include "ops/common.h"
#include "ops/dnnl_util.h"
#include "ops/kernel.h"
#include "ops/quant_grid.h"
#include "ops/window.h"

namespace mixq {
namespace {

// 2-D only; auto_pad and default strides, dilations and pads as for Conv (ops/window.h).
struct QConvParams {
  WindowAttrs win;
  std::vector<int64_t> strides, dilations;
  int64_t group = 1;
  float scale = 1;
  int64_t qmax = 255;
  bool relu = false, sum = false, nhwc = false;

  QConvParams(const Node& node) : win(node) {
    strides = per_axis(win.strides, 2, 1, "strides", node);
    dilations = per_axis(win.dilations, 2, 1, "dilations", node);
    win.check_pads(2, node);
    group = node.get_int("group", 1);
    scale = node.get_float("scale", 0);
    qmax = node.get_int("qmax", 255);
    check(scale > 0 && qmax >= 1 && qmax <= 255 && group >= 1, node.label(),
          "needs scale > 0, qmax in 1..255 and group >= 1");
    const std::string act = node.get_string(names::kActivation, "");
    const std::string layout = node.get_string(names::kLayout, "NCHW");
    check(act.empty() || act == "Relu", node.label(), "unsupported fused activation '" + act + "'");
    check(layout == "NCHW" || layout == "NHWC", node.label(), "unknown layout '" + layout + "'");
    relu = act == "Relu";
    sum = node.get_int(names::kSum, 0) != 0;
    nhwc = layout == "NHWC";
  }
};

// The unsigned code of one activation: FakeQuant's grid with zero point 0.
inline uint8_t quantize(float x, float scale, float qmax) {
  return static_cast<uint8_t>(grid_code(x, scale, 0.0f, qmax));
}

struct Checked {
  const Tensor *x, *codes, *step, *bias, *sum;
  int64_t n, c, h, w, o, kh, kw, oh, ow;
  int64_t pad_t, pad_l, pad_b, pad_r;  // top, left, bottom, right
  bool nhwc;
  Shape out_shape() const { return nhwc ? Shape{n, oh, ow, o} : Shape{n, o, oh, ow}; }
  // Flat offsets of x[n, c, y, x] and out[n, c, y, x] in this layout.
  int64_t at_x(int64_t in, int64_t ic, int64_t iy, int64_t ix) const {
    return nhwc ? ((in * h + iy) * w + ix) * c + ic : ((in * c + ic) * h + iy) * w + ix;
  }
  int64_t at_y(int64_t in, int64_t oc, int64_t iy, int64_t ix) const {
    return nhwc ? ((in * oh + iy) * ow + ix) * o + oc : ((in * o + oc) * oh + iy) * ow + ix;
  }
};

Checked check_inputs(const std::vector<const Tensor*>& in, const Node& node, const QConvParams& p) {
  Checked k{};
  k.x = &required_input(in, 0, node);
  k.codes = &required_input(in, 1, node);
  k.step = &required_input(in, 2, node);
  k.bias = optional_input(in, 3);
  k.sum = p.sum ? optional_input(in, 4) : nullptr;
  k.nhwc = p.nhwc;
  check(k.x->dtype() == DType::f32 && k.x->rank() == 4, node.label(),
        p.nhwc ? "x must be f32 NHWC" : "x must be f32 NCHW");
  check(k.codes->dtype() == DType::i8 && k.codes->rank() == 4, node.label(),
        "weight codes must be int8 [O, C/group, kh, kw]");
  k.n = k.x->dim(0), k.c = k.x->dim(p.nhwc ? 3 : 1);
  k.h = k.x->dim(p.nhwc ? 1 : 2), k.w = k.x->dim(p.nhwc ? 2 : 3);
  k.o = k.codes->dim(0), k.kh = k.codes->dim(2), k.kw = k.codes->dim(3);
  check(k.codes->dim(1) * p.group == k.c && k.o % p.group == 0, node.label(),
        "weight channels do not match the input and group");
  check(k.step->numel() == k.o && (!k.bias || k.bias->numel() == k.o), node.label(),
        "step and bias need one value per output channel");
  check(p.win.kernel.empty() || p.win.kernel == std::vector<int64_t>{k.kh, k.kw}, node.label(),
        "kernel_shape does not match the weight codes");
  const AxisWindow wy = forward_window(p.win, 0, 2, k.h, k.kh, p.strides[0], p.dilations[0]);
  const AxisWindow wx = forward_window(p.win, 1, 2, k.w, k.kw, p.strides[1], p.dilations[1]);
  check(wy.fits && wx.fits && wy.out > 0 && wx.out > 0, node.label(), "output would be empty");
  k.oh = wy.out, k.ow = wx.out;
  k.pad_t = wy.pad_b, k.pad_b = wy.pad_e, k.pad_l = wx.pad_b, k.pad_r = wx.pad_e;
  check(!p.sum || (k.sum && k.sum->dtype() == DType::f32 && k.sum->shape() == k.out_shape()),
        node.label(), "the fused sum input must be f32 of the output's shape");
  return k;
}

// The fused tail in float, element by element: + sum, then relu. `sum` may be y itself only
// when it was copied in first (then pass nullptr).
void apply_tail(const Checked& k, const QConvParams& p, const float* sum, Tensor& y) {
  if (!sum && !p.relu) return;
  float* out = y.data<float>();
  const int64_t total = y.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < total; ++i) {
    float v = out[i] + (sum ? sum[i] : 0.0f);
    out[i] = p.relu && v < 0 ? 0.0f : v;
  }
  (void)k;
}

class QConvRef : public Kernel {
 public:
  QConvRef(const Node& node, const Graph&) : node_(node), p_(node) {}
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Checked k = check_inputs(in, node_, p_);
    // The sum may arrive in the output's own buffer (an executor's in-place hand-over).
    Tensor sum = k.sum ? k.sum->clone() : Tensor();
    ensure(*out[0], DType::f32, k.out_shape());
    const float* x = k.x->data<float>();
    const int8_t* wc = k.codes->data<int8_t>();
    const int64_t cg = k.c / p_.group, og = k.o / p_.group;
    const float qmax = static_cast<float>(p_.qmax);
    for (int64_t n = 0; n < k.n; ++n)
      for (int64_t o = 0; o < k.o; ++o) {
        const int64_t g = o / og;
        const double s = static_cast<double>(p_.scale) * k.step->data<float>()[o];
        for (int64_t y = 0; y < k.oh; ++y)
          for (int64_t xo = 0; xo < k.ow; ++xo) {
            int64_t acc = 0;
            for (int64_t ci = 0; ci < cg; ++ci)
              for (int64_t i = 0; i < k.kh; ++i)
                for (int64_t j = 0; j < k.kw; ++j) {
                  const int64_t iy = y * p_.strides[0] - k.pad_t + i * p_.dilations[0];
                  const int64_t ix = xo * p_.strides[1] - k.pad_l + j * p_.dilations[1];
                  if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                  const float v = x[k.at_x(n, g * cg + ci, iy, ix)];
                  acc += static_cast<int64_t>(wc[((o * cg + ci) * k.kh + i) * k.kw + j]) *
                         quantize(v, p_.scale, qmax);
                }
            out[0]->data<float>()[k.at_y(n, o, y, xo)] = static_cast<float>(
                s * static_cast<double>(acc) + (k.bias ? k.bias->data<float>()[o] : 0.0f));
          }
      }
    apply_tail(k, p_, k.sum ? sum.data<float>() : nullptr, *out[0]);
  }

 private:
  Node node_;
  QConvParams p_;
};

class QConvDnnl : public Kernel {
 public:
  QConvDnnl(const Node& node, const Graph&) : node_(node), p_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Checked k = check_inputs(in, node_, p_);
    dnnl_util::guarded(node_.label(), [&] { run(k, *out[0]); });
  }

 private:
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;

  // One primitive per input shape (batch changes rebuild it once).
  struct Plan {
    dnnl::convolution_forward prim;
    dnnl::memory src, wei, bias, dst;
    Tensor q;    // u8 NHWC codes
    Tensor y;    // f32 NHWC result when the output is NCHW
    bool fused;  // sum and relu inside the primitive (else applied afterwards in float)
    // At qmax 255 a oneDNN reorder quantizes (and, from NCHW, transposes) in one pass: it
    // rounds half to even and saturates to 0..255, as FakeQuant does; otherwise the loops below.
    dnnl::reorder quantize;
    dnnl::memory x_user, y_user;  // f32 input and output in the graph's layout
    dnnl::reorder to_nchw;
  };

  Plan& plan(const Checked& k) {
    const std::vector<int64_t> key{k.n, k.c, k.h, k.w};
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    auto& eng = dnnl_util::engine();
    const int64_t g = p_.group;
    const dnnl::memory::dims src_d{k.n, k.c, k.h, k.w}, dst_d{k.n, k.o, k.oh, k.ow};
    const dnnl::memory::dims wei_d = g == 1 ? dnnl::memory::dims{k.o, k.c, k.kh, k.kw}
                                            : dnnl::memory::dims{g, k.o / g, k.c / g, k.kh, k.kw};
    const dnnl::memory::desc src_md(src_d, dt::u8, tag::nhwc), dst_md(dst_d, dt::f32, tag::nhwc);
    const dnnl::memory::desc wei_any(wei_d, dt::s8, tag::any), bias_md({k.o}, dt::f32, tag::a);
    const dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_any,
        bias_md, dst_md, {p_.strides[0], p_.strides[1]}, {p_.dilations[0] - 1, p_.dilations[1] - 1},
        {k.pad_t, k.pad_l}, {k.pad_b, k.pad_r});
    Plan pl;
    // oneDNN 2.6's brgconv skips post-ops on output rows whose window lies wholly in the
    // padding (see conv_dnnl.cpp); those geometries, and NCHW outputs, get the tail in float.
    const int64_t keff_h = window_extent(k.kh, p_.dilations[0]),
                  keff_w = window_extent(k.kw, p_.dilations[1]);
    pl.fused =
        k.nhwc && k.pad_t < keff_h && k.pad_b < keff_h && k.pad_l < keff_w && k.pad_r < keff_w;
    dnnl::post_ops po;
    if (pl.fused && p_.sum) po.append_sum(1.f);
    if (pl.fused && p_.relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    std::vector<float> scales(static_cast<size_t>(k.o));
    for (int64_t o = 0; o < k.o; ++o) scales[o] = p_.scale * k.step->data<float>()[o];
    attr.set_output_scales(1 << 1, scales);
    attr.set_post_ops(po);
    const dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    pl.prim = dnnl::convolution_forward(pd);
    // Weights reordered once into the primitive's layout.
    const dnnl::memory::desc wei_plain(wei_d, dt::s8, g == 1 ? tag::oihw : tag::goihw);
    dnnl::memory plain(wei_plain, eng, const_cast<void*>(k.codes->raw()));
    pl.wei = dnnl::memory(pd.weights_desc(), eng);
    dnnl::reorder(plain, pl.wei).execute(dnnl_util::stream(), plain, pl.wei);
    dnnl_util::stream().wait();
    // oneDNN adds the bias to the integer sums before the output scale: divide it by the scale.
    pl.bias = dnnl::memory(bias_md, eng);
    float* b = static_cast<float*>(pl.bias.get_data_handle());
    for (int64_t o = 0; o < k.o; ++o) b[o] = k.bias ? k.bias->data<float>()[o] / scales[o] : 0.0f;
    pl.q = Tensor(DType::u8, {k.n, k.h, k.w, k.c});
    pl.src = dnnl::memory(pd.src_desc(), eng, pl.q.raw());
    const tag user = k.nhwc ? tag::nhwc : tag::nchw;
    pl.x_user = dnnl::memory(dnnl::memory::desc(src_d, dt::f32, user), eng, nullptr);
    pl.y_user = dnnl::memory(dnnl::memory::desc(dst_d, dt::f32, user), eng, nullptr);
    if (k.nhwc) {
      pl.dst = dnnl::memory(pd.dst_desc(), eng, nullptr);  // the output tensor itself
    } else {
      pl.y = Tensor(DType::f32, {k.n, k.oh, k.ow, k.o});
      pl.dst = dnnl::memory(pd.dst_desc(), eng, pl.y.raw());
      pl.to_nchw = dnnl::reorder(pl.dst, pl.y_user);
    }
    if (p_.qmax == 255) {
      dnnl::primitive_attr qa;
      qa.set_output_scales(0, {1.0f / p_.scale});
      pl.quantize = dnnl::reorder(dnnl::reorder::primitive_desc(pl.x_user, pl.src, qa));
    }
    return plans_.emplace(key, std::move(pl)).first->second;
  }

  // x (either layout) -> u8 NHWC codes, for qmax below 255.
  void quantize_loop(const Checked& k, Plan& pl) {
    const float* x = k.x->data<float>();
    uint8_t* q = pl.q.data<uint8_t>();
    const float qmax = static_cast<float>(p_.qmax), s = p_.scale;
    if (k.nhwc) {
      const int64_t total = k.x->numel();
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < total; ++i) q[i] = quantize(x[i], s, qmax);
      return;
    }
    const int64_t hw = k.h * k.w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < k.n; ++n)
      for (int64_t c = 0; c < k.c; ++c) {
        const float* src = x + (n * k.c + c) * hw;
        uint8_t* dst = q + n * hw * k.c + c;
        for (int64_t i = 0; i < hw; ++i) dst[i * k.c] = quantize(src[i], s, qmax);
      }
  }

  void run(const Checked& k, Tensor& out) {
    Plan& pl = plan(k);
    auto& st = dnnl_util::stream();
    // The executor may hand the sum's own buffer over as the output: then it is already there
    // for a fused sum; an unfused one needs a copy, since the result overwrites it first.
    const bool sum_in_out = k.sum && k.sum->raw() == out.raw() && out.shape() == k.out_shape();
    Tensor sum_copy;
    if (k.sum && sum_in_out && !pl.fused) sum_copy = k.sum->clone();
    const float* sum = !k.sum               ? nullptr
                       : sum_copy.defined() ? sum_copy.data<float>()
                                            : k.sum->data<float>();
    if (!sum_in_out) ensure(out, DType::f32, k.out_shape());
    if (pl.quantize) {
      dnnl_util::bind(pl.x_user, *k.x);
      pl.quantize.execute(st, pl.x_user, pl.src);
    } else {
      quantize_loop(k, pl);
    }
    if (k.nhwc) {
      if (pl.fused && k.sum && !sum_in_out) std::memcpy(out.raw(), k.sum->raw(), out.nbytes());
      dnnl_util::bind(pl.dst, out);
    }
    pl.prim.execute(st, {{DNNL_ARG_SRC, pl.src},
                         {DNNL_ARG_WEIGHTS, pl.wei},
                         {DNNL_ARG_BIAS, pl.bias},
                         {DNNL_ARG_DST, pl.dst}});
    if (!k.nhwc) {
      dnnl_util::bind(pl.y_user, out);
      pl.to_nchw.execute(st, pl.dst, pl.y_user);
    }
    st.wait();
    if (!pl.fused) apply_tail(k, p_, sum, out);
  }

  Node node_;
  QConvParams p_;
  std::map<std::vector<int64_t>, Plan> plans_;
};

template <class K>
std::unique_ptr<Kernel> make(const Node& node, const Graph& graph) {
  return std::make_unique<K>(node, graph);
}

}  // namespace

void register_qconv_ops(Registry& r) {
  r.add(names::internal_key(names::kQConv), "dnnl", make<QConvDnnl>, false);
  r.add(names::internal_key(names::kQConv), "ref", make<QConvRef>, true);
}

}  // namespace mixq
