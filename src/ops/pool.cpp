// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: a plain reference for 1..3 spatial
// axes (the specification) and a oneDNN pooling fast path for f32.
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

#include "ops/common.h"
#include "ops/dnnl_util.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

enum class PoolKind { max, avg };

struct PoolAttrs {
  PoolKind kind;
  bool global;
  std::string auto_pad;
  std::vector<int64_t> kernel, strides, dilations, pads;
  bool ceil_mode, count_include_pad, column_major_indices, nhwc;

  PoolAttrs(const Node& node, PoolKind k, bool is_global) : kind(k), global(is_global) {
    auto_pad = node.get_string("auto_pad", "NOTSET");
    if (auto_pad.empty()) auto_pad = "NOTSET";
    check(auto_pad == "NOTSET" || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER" ||
              auto_pad == "VALID",
          node.label(), "unknown auto_pad '" + auto_pad + "'");
    kernel = node.get_ints("kernel_shape");
    check(global || !kernel.empty(), node.label(), "kernel_shape is required");
    strides = node.get_ints("strides");
    dilations = node.get_ints("dilations");
    pads = node.get_ints("pads");
    for (int64_t v : kernel) check(v >= 1, node.label(), "kernel_shape must be positive");
    for (int64_t v : strides) check(v >= 1, node.label(), "strides must be positive");
    for (int64_t v : dilations) check(v >= 1, node.label(), "dilations must be positive");
    for (int64_t v : pads) check(v >= 0, node.label(), "pads must be non-negative");
    ceil_mode = node.get_int("ceil_mode", 0) != 0;
    count_include_pad = node.get_int("count_include_pad", 0) != 0;
    column_major_indices = node.get_int("storage_order", 0) != 0;
    std::string layout = node.get_string("mixq_layout", "NCHW");
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

std::vector<int64_t> per_axis(const std::vector<int64_t>& v, size_t sp, int64_t fallback,
                              const char* name, const Node& node) {
  if (v.empty()) return std::vector<int64_t>(sp, fallback);
  check(v.size() == sp, node.label(),
        std::string(name) + " has " + std::to_string(v.size()) + " values for " +
            std::to_string(sp) + " spatial axes");
  return v;
}

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
  if (!a.global && !a.pads.empty())
    check(a.pads.size() == 2 * g.sp, node.label(),
          "pads has " + std::to_string(a.pads.size()) + " values, expected " +
              std::to_string(2 * g.sp));
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
    const int64_t keff = (kernel[i] - 1) * dil[i] + 1;
    if (a.global) {
      g.out[j] = 1;
      continue;
    }
    if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
      g.out[j] = (in[i] + strides[i] - 1) / strides[i];
      int64_t total = std::max<int64_t>(0, (g.out[j] - 1) * strides[i] + keff - in[i]);
      g.pb[j] = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pe[j] = total - g.pb[j];
    } else {
      if (a.auto_pad == "NOTSET" && !a.pads.empty()) {
        g.pb[j] = a.pads[i];
        g.pe[j] = a.pads[i + g.sp];
      }
      const int64_t span = in[i] + g.pb[j] + g.pe[j] - keff;
      check(span >= 0, node.label(),
            "kernel " + shape_str(kernel) + " larger than padded input " + shape_str(x));
      g.out[j] = (a.ceil_mode ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1;
      // A window that would start in the right padding is dropped.
      if (a.ceil_mode && (g.out[j] - 1) * strides[i] >= in[i] + g.pb[j]) --g.out[j];
    }
  }
  g.isz = g.in[0] * g.in[1] * g.in[2];
  g.osz = g.out[0] * g.out[1] * g.out[2];
  return g;
}

// Reference pooling over one (n, c) plane. xs/ys: element stride between spatial positions.
template <class T>
void pool_plane(const PoolAttrs& a, const PoolGeom& g, const T* x, int64_t xs, T* y, int64_t ys,
                int64_t* idx, int64_t idx_base) {
  for (int64_t od = 0; od < g.out[0]; ++od)
    for (int64_t oh = 0; oh < g.out[1]; ++oh)
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        const int64_t sd = od * g.s[0] - g.pb[0], sh = oh * g.s[1] - g.pb[1],
                      sw = ow * g.s[2] - g.pb[2];
        double acc = 0;
        int64_t inside = 0, padded = 0;  // taps in the real input / in the padded input
        T best = std::numeric_limits<T>::lowest();
        int64_t best_pos = -1;
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
              if (id < 0 || ih < 0 || iw < 0 || id >= g.in[0] || ih >= g.in[1] || iw >= g.in[2])
                continue;
              ++inside;
              const int64_t pos = (id * g.in[1] + ih) * g.in[2] + iw;
              const T v = x[pos * xs];
              acc += static_cast<double>(v);
              if (best_pos < 0 || v > best) {
                best = v;
                best_pos = pos;
              }
            }
          }
        }
        const int64_t opos = (od * g.out[1] + oh) * g.out[2] + ow;
        if (a.kind == PoolKind::max) {
          y[opos * ys] = best;
          if (idx) {
            int64_t flat = best_pos;
            if (a.column_major_indices && best_pos >= 0) {
              // Position counted with the first spatial axis fastest.
              const int64_t iw = best_pos % g.in[2], ih = (best_pos / g.in[2]) % g.in[1],
                            id = best_pos / (g.in[2] * g.in[1]);
              flat = (iw * g.in[1] + ih) * g.in[0] + id;
            }
            idx[opos] = idx_base + flat;
          }
        } else {
          const int64_t div = a.count_include_pad ? padded : inside;
          y[opos * ys] = static_cast<T>(acc / static_cast<double>(div));
        }
      }
}

template <class T>
void pool_reference(const PoolAttrs& a, const PoolGeom& g, const T* x, T* y, int64_t* idx) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c) {
      const int64_t plane = n * g.c + c;
      if (g.nhwc)
        pool_plane<T>(a, g, x + n * g.c * g.isz + c, g.c, y + n * g.c * g.osz + c, g.c, nullptr, 0);
      else
        pool_plane<T>(a, g, x + plane * g.isz, 1, y + plane * g.osz, 1,
                      idx ? idx + plane * g.osz : nullptr, plane * g.isz);
    }
}

class PoolRef : public Kernel {
 public:
  PoolRef(const Node& node, PoolKind kind, bool global) : node_(node), a_(node, kind, global) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    PoolGeom g = pool_geometry(a_, x.shape(), node_);
    Tensor& y = *out.at(0);
    ensure(y, x.dtype(), g.out_shape());
    int64_t* idx = nullptr;
    if (out.size() > 1 && out[1]) {
      check(a_.kind == PoolKind::max && !a_.nhwc, node_.label(),
            "the Indices output needs MaxPool in NCHW layout");
      ensure(*out[1], DType::i64, g.out_shape());
      idx = out[1]->data<int64_t>();
    }
    switch (x.dtype()) {
      case DType::f32:
        return pool_reference(a_, g, x.data<float>(), y.data<float>(), idx);
      case DType::f64:
        return pool_reference(a_, g, x.data<double>(), y.data<double>(), idx);
      case DType::i8:
        if (a_.kind == PoolKind::max)
          return pool_reference(a_, g, x.data<int8_t>(), y.data<int8_t>(), idx);
        break;
      case DType::u8:
        if (a_.kind == PoolKind::max)
          return pool_reference(a_, g, x.data<uint8_t>(), y.data<uint8_t>(), idx);
        break;
      default:
        break;
    }
    throw Error(node_.label(), std::string("unsupported dtype ") + dtype_name(x.dtype()));
  }

 private:
  Node node_;
  PoolAttrs a_;
};

// oneDNN pooling (f32, 1..3 spatial axes). ceil_mode becomes extra right padding, which is
// exact for max and for averages that exclude padding; an average that counts padding and
// needs such extra padding, or a window lying wholly in the padding, goes to the reference.
class PoolDnnl : public Kernel {
 public:
  PoolDnnl(const Node& node, PoolKind kind, bool global)
      : node_(node), a_(node, kind, global), ref_(node, kind, global) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    if (x.dtype() != DType::f32) return ref_.forward(in, out);
    Plan& p = plans_.get({&x.shape()}, [&] { return make_plan(x.shape()); });
    if (!p.prim) return ref_.forward(in, out);
    Tensor& y = *out.at(0);
    ensure(y, DType::f32, p.g.out_shape());
    dnnl_util::guarded(node_.label(), [&] {
      dnnl_util::bind(p.src, x);
      dnnl_util::bind(p.dst, y);
      p.prim.run();
      dnnl_util::stream().wait();
    });
  }

 private:
  struct Plan {
    PoolGeom g;
    dnnl_util::Bound prim;  // empty: use the reference
    dnnl::memory src, dst;
  };

  Plan make_plan(const Shape& xs) {
    using dnnl::memory;
    Plan p;
    p.g = pool_geometry(a_, xs, node_);
    const PoolGeom& g = p.g;
    if (shape_numel(xs) == 0) return p;
    const size_t off = 3 - g.sp;
    memory::dims k, s, d, pl, pr, src_dims{g.n, g.c}, dst_dims{g.n, g.c};
    for (size_t j = off; j < 3; ++j) {
      const int64_t keff = (g.k[j] - 1) * g.d[j] + 1;
      // Right padding that makes the last window fit exactly.
      const int64_t right = (g.out[j] - 1) * g.s[j] + keff - g.in[j] - g.pb[j];
      if (right > g.pe[j] && a_.kind == PoolKind::avg && a_.count_include_pad) return p;
      if (g.pb[j] >= keff || right >= keff) return p;  // a window of padding only
      k.push_back(g.k[j]);
      s.push_back(g.s[j]);
      d.push_back(g.d[j] - 1);
      pl.push_back(g.pb[j]);
      pr.push_back(std::max<int64_t>(right, 0));
      src_dims.push_back(g.in[j]);
      dst_dims.push_back(g.out[j]);
    }
    const auto alg = a_.kind == PoolKind::max ? dnnl::algorithm::pooling_max
                     : a_.count_include_pad   ? dnnl::algorithm::pooling_avg_include_padding
                                              : dnnl::algorithm::pooling_avg_exclude_padding;
    using tag = memory::format_tag;
    const tag t = g.sp == 1   ? (g.nhwc ? tag::acb : tag::abc)
                  : g.sp == 2 ? (g.nhwc ? tag::acdb : tag::abcd)
                              : (g.nhwc ? tag::acdeb : tag::abcde);
    try {
      memory::desc src_md(src_dims, memory::data_type::f32, t);
      memory::desc dst_md(dst_dims, memory::data_type::f32, t);
      dnnl::pooling_v2_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src_md, dst_md,
                                          s, k, d, pl, pr);
      p.src = dnnl_util::unbound(src_md);
      p.dst = dnnl_util::unbound(dst_md);
      p.prim = dnnl_util::Bound(dnnl::pooling_v2_forward(
          dnnl::pooling_v2_forward::primitive_desc(desc, dnnl_util::engine())));
      p.prim.arg(DNNL_ARG_SRC, p.src).arg(DNNL_ARG_DST, p.dst);
    } catch (const dnnl::error&) {
      p.prim = dnnl_util::Bound();  // a geometry oneDNN rejects: the reference does it
    }
    return p;
  }

  Node node_;
  PoolAttrs a_;
  PoolRef ref_;
  dnnl_util::PlanCache<Plan> plans_;
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
