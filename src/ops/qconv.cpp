// mixq.QConv: integer convolution. The float input is quantized on the fly to unsigned codes
// q = clamp(round_half_even(x / scale), 0, qmax) (zero point 0, as after ReLU), convolved with
// int8 weight codes, and the int32 sums scaled back per output channel:
//   y[n,o,..] = scale * step[o] * sum(codes * q) + bias[o]
// which equals Conv(FakeQuant(x), codes * step) + bias up to float rounding. Inputs: x (f32
// NCHW), codes (i8 [O, C/group, kh, kw]), step (f32 [O]), bias (f32 [O], optional); attributes:
// strides, pads, dilations, group, scale, qmax. The reference kernel counts in int64 loops; the
// fast one is oneDNN's u8 x s8 convolution (VNNI where the CPU has it).
#include <cmath>
#include <cstring>
#include <map>

#include "base/error.h"
#include "ops/common.h"
#include "ops/dnnl_util.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

struct QConvParams {
  std::vector<int64_t> strides, pads, dilations;
  int64_t group = 1;
  float scale = 1;
  int64_t qmax = 255;

  QConvParams(const Node& node) {
    strides = node.get_ints("strides", {1, 1});
    pads = node.get_ints("pads", {0, 0, 0, 0});
    dilations = node.get_ints("dilations", {1, 1});
    group = node.get_int("group", 1);
    scale = node.get_float("scale", 0);
    qmax = node.get_int("qmax", 255);
    check(strides.size() == 2 && pads.size() == 4 && dilations.size() == 2, node.label(),
          "QConv is 2-D: strides, dilations of 2 and pads of 4 values");
    check(scale > 0 && qmax >= 1 && qmax <= 255 && group >= 1, node.label(),
          "needs scale > 0, qmax in 1..255 and group >= 1");
  }
};

// Output spatial size of one axis.
int64_t out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_a, int64_t pad_b, int64_t dil) {
  return (in + pad_a + pad_b - dil * (k - 1) - 1) / stride + 1;
}

// The quantized code of one activation, as FakeQuant computes it.
inline uint8_t quantize(float x, float scale, float qmax) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: round half to even
  float v = x / scale;
  v = v < 0 ? 0 : v;
  v = v > qmax ? qmax : v;
  return static_cast<uint8_t>((v + kMagic) - kMagic);
}

struct Checked {
  const Tensor *x, *codes, *step, *bias;
  int64_t n, c, h, w, o, kh, kw, oh, ow;
};

Checked check_inputs(const std::vector<const Tensor*>& in, const Node& node, const QConvParams& p) {
  Checked k{};
  k.x = &required_input(in, 0, node);
  k.codes = &required_input(in, 1, node);
  k.step = &required_input(in, 2, node);
  k.bias = in.size() > 3 ? in[3] : nullptr;
  check(k.x->dtype() == DType::f32 && k.x->rank() == 4, node.label(), "x must be f32 NCHW");
  check(k.codes->dtype() == DType::i8 && k.codes->rank() == 4, node.label(),
        "weight codes must be int8 [O, C/group, kh, kw]");
  k.n = k.x->dim(0), k.c = k.x->dim(1), k.h = k.x->dim(2), k.w = k.x->dim(3);
  k.o = k.codes->dim(0), k.kh = k.codes->dim(2), k.kw = k.codes->dim(3);
  check(k.codes->dim(1) * p.group == k.c && k.o % p.group == 0, node.label(),
        "weight channels do not match the input and group");
  check(k.step->numel() == k.o && (!k.bias || k.bias->numel() == k.o), node.label(),
        "step and bias need one value per output channel");
  k.oh = out_size(k.h, k.kh, p.strides[0], p.pads[0], p.pads[2], p.dilations[0]);
  k.ow = out_size(k.w, k.kw, p.strides[1], p.pads[1], p.pads[3], p.dilations[1]);
  check(k.oh > 0 && k.ow > 0, node.label(), "output would be empty");
  return k;
}

class QConvRef : public Kernel {
 public:
  QConvRef(const Node& node, const Graph&) : node_(node), p_(node) {}
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Checked k = check_inputs(in, node_, p_);
    ensure(*out[0], DType::f32, {k.n, k.o, k.oh, k.ow});
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
                  const int64_t iy = y * p_.strides[0] - p_.pads[0] + i * p_.dilations[0];
                  const int64_t ix = xo * p_.strides[1] - p_.pads[1] + j * p_.dilations[1];
                  if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
                  const float v = x[((n * k.c + g * cg + ci) * k.h + iy) * k.w + ix];
                  acc += static_cast<int64_t>(wc[((o * cg + ci) * k.kh + i) * k.kw + j]) *
                         quantize(v, p_.scale, qmax);
                }
            out[0]->data<float>()[((n * k.o + o) * k.oh + y) * k.ow + xo] = static_cast<float>(
                s * static_cast<double>(acc) + (k.bias ? k.bias->data<float>()[o] : 0.0f));
          }
      }
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
    dnnl::memory src, wei, dst;
    Tensor q, y;  // u8 NHWC codes, f32 NHWC sums scaled
    // At qmax 255 a oneDNN reorder quantizes and transposes in one pass (it rounds half to
    // even and saturates to 0..255, as FakeQuant does); otherwise the loop below.
    dnnl::reorder quantize;
    dnnl::memory x_plain, y_plain;  // f32 NCHW input and output views
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
    const dnnl::memory::desc wei_any(wei_d, dt::s8, tag::any);
    const dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_any,
        dst_md, {p_.strides[0], p_.strides[1]}, {p_.dilations[0] - 1, p_.dilations[1] - 1},
        {p_.pads[0], p_.pads[1]}, {p_.pads[2], p_.pads[3]});
    dnnl::primitive_attr attr;
    std::vector<float> scales(static_cast<size_t>(k.o));
    for (int64_t o = 0; o < k.o; ++o) scales[o] = p_.scale * k.step->data<float>()[o];
    attr.set_output_scales(1 << 1, scales);
    const dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    Plan pl;
    pl.prim = dnnl::convolution_forward(pd);
    // Weights reordered once into the primitive's layout.
    const dnnl::memory::desc wei_plain(wei_d, dt::s8, g == 1 ? tag::oihw : tag::goihw);
    dnnl::memory plain(wei_plain, eng, const_cast<void*>(k.codes->raw()));
    pl.wei = dnnl::memory(pd.weights_desc(), eng);
    dnnl::reorder(plain, pl.wei).execute(dnnl_util::stream(), plain, pl.wei);
    dnnl_util::stream().wait();
    pl.q = Tensor(DType::u8, {k.n, k.h, k.w, k.c});
    pl.y = Tensor(DType::f32, {k.n, k.oh, k.ow, k.o});
    pl.src = dnnl::memory(pd.src_desc(), eng, pl.q.raw());
    pl.dst = dnnl::memory(pd.dst_desc(), eng, pl.y.raw());
    pl.x_plain = dnnl::memory(dnnl::memory::desc(src_d, dt::f32, tag::nchw), eng, nullptr);
    pl.y_plain = dnnl::memory(dnnl::memory::desc(dst_d, dt::f32, tag::nchw), eng, nullptr);
    if (p_.qmax == 255) {
      dnnl::primitive_attr qa;
      qa.set_output_scales(0, {1.0f / p_.scale});
      pl.quantize = dnnl::reorder(dnnl::reorder::primitive_desc(pl.x_plain, pl.src, qa));
    }
    pl.to_nchw = dnnl::reorder(pl.dst, pl.y_plain);
    return plans_.emplace(key, std::move(pl)).first->second;
  }

  void run(const Checked& k, Tensor& out) {
    Plan& pl = plan(k);
    auto& st = dnnl_util::stream();
    if (pl.quantize) {
      dnnl_util::bind(pl.x_plain, *k.x);
      pl.quantize.execute(st, pl.x_plain, pl.src);
    } else {  // NCHW float -> NHWC codes
      const float* x = k.x->data<float>();
      uint8_t* q = pl.q.data<uint8_t>();
      const float qmax = static_cast<float>(p_.qmax), s = p_.scale;
      const int64_t hw = k.h * k.w;
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t n = 0; n < k.n; ++n)
        for (int64_t c = 0; c < k.c; ++c) {
          const float* src = x + (n * k.c + c) * hw;
          uint8_t* dst = q + n * hw * k.c + c;
          for (int64_t i = 0; i < hw; ++i) dst[i * k.c] = quantize(src[i], s, qmax);
        }
    }
    pl.prim.execute(st,
                    {{DNNL_ARG_SRC, pl.src}, {DNNL_ARG_WEIGHTS, pl.wei}, {DNNL_ARG_DST, pl.dst}});
    ensure(out, DType::f32, {k.n, k.o, k.oh, k.ow});
    dnnl_util::bind(pl.y_plain, out);
    pl.to_nchw.execute(st, pl.dst, pl.y_plain);
    st.wait();
    if (!k.bias) return;
    const float* b = k.bias->data<float>();
    float* o = out.data<float>();
    const int64_t ohw = k.oh * k.ow;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < k.n; ++n)
      for (int64_t c = 0; c < k.o; ++c) {
        float* dst = o + (n * k.o + c) * ohw;
        for (int64_t i = 0; i < ohw; ++i) dst[i] += b[c];
      }
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
  r.add("mixq.QConv", "dnnl", make<QConvDnnl>, false);
  r.add("mixq.QConv", "ref", make<QConvRef>, true);
}

}  // namespace mixq
