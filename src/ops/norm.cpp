// BatchNormalization (inference with running statistics; training mode in the reference),
// InstanceNormalization, LayerNormalization and LRN. References compute in double; the f32
// BatchNormalization fast path folds the statistics into one per-channel scale and shift.
//
// Internal attribute: mixq_layout = "NHWC" makes BatchNormalization's X and Y channels-last.
#include <cmath>
#include <memory>

#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// X as [n, c, positions] (or [n, positions, c] channels-last).
struct Planes {
  int64_t n = 0, c = 0, pos = 1;
};

Planes planes_of(const Shape& x, bool nhwc, const Node& node) {
  check(x.size() >= 2, node.label(), "input X must have rank >= 2, got " + shape_str(x));
  Planes p;
  p.n = x[0];
  p.c = nhwc ? x.back() : x[1];
  for (size_t i = 1; i < x.size(); ++i) p.pos *= x[i];
  p.pos /= std::max<int64_t>(p.c, 1);
  return p;
}

bool read_nhwc(const Node& node) {
  std::string layout = node.get_string("mixq_layout", "NCHW");
  check(layout == "NCHW" || layout == "NHWC", node.label(), "unknown layout '" + layout + "'");
  return layout == "NHWC";
}

// A per-channel parameter (or, for BatchNormalization with spatial = 0 before opset 9, one per
// channel and position) read as doubles.
std::vector<double> channel_param(const Tensor& t, const Planes& p, const char* name,
                                  const Node& node) {
  check(t.numel() == p.c || t.numel() == p.c * p.pos, node.label(),
        std::string(name) + " " + shape_str(t.shape()) + " does not match " + std::to_string(p.c) +
            " channels");
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_double(i);
  return v;
}

template <class T>
void store(Tensor& t, int64_t i, double v) {
  t.data<T>()[i] = static_cast<T>(v);
}

void store_any(Tensor& t, int64_t i, double v) {
  if (t.dtype() == DType::f64)
    store<double>(t, i, v);
  else
    store<float>(t, i, v);
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization

struct BnAttrs {
  double eps, momentum;
  bool training, nhwc;
  explicit BnAttrs(const Node& node, const Graph& graph)
      : eps(node.get_float("epsilon", 1e-5f)),
        momentum(node.get_float("momentum", 0.9f)),
        nhwc(read_nhwc(node)) {
    // Opset 14 has an explicit flag; earlier opsets train when the statistics outputs are used.
    bool wants_stats = false;
    for (size_t i = 1; i < node.outputs.size(); ++i) wants_stats |= node.outputs[i] >= 0;
    training = graph.opset >= 14 ? node.get_int("training_mode", 0) != 0 : wants_stats;
  }
};

class BatchNormRef : public Kernel {
 public:
  BatchNormRef(const Node& node, const Graph& graph) : node_(node), a_(node, graph) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.dtype() == DType::f32 || x.dtype() == DType::f64, node_.label(),
          std::string("unsupported dtype ") + dtype_name(x.dtype()));
    const Planes p = planes_of(x.shape(), a_.nhwc, node_);
    auto scale = channel_param(required_input(in, 1, node_), p, "scale", node_);
    auto bias = channel_param(required_input(in, 2, node_), p, "B", node_);
    auto mean = channel_param(required_input(in, 3, node_), p, "mean", node_);
    auto var = channel_param(required_input(in, 4, node_), p, "var", node_);
    const int64_t cs = a_.nhwc ? 1 : p.pos, ps = a_.nhwc ? p.c : 1;
    auto at = [&](int64_t n, int64_t c, int64_t q) { return (n * p.c * p.pos) + c * cs + q * ps; };
    // A parameter per channel, or per channel and position.
    auto param = [&](const std::vector<double>& v, int64_t c, int64_t q) {
      return static_cast<int64_t>(v.size()) == p.c ? v[c] : v[c * p.pos + q];
    };
    std::vector<double> bmean, bvar;
    if (a_.training) {
      // Batch statistics (population variance) over every axis but the channel.
      check(mean.size() == static_cast<size_t>(p.c), node_.label(),
            "training mode needs per-channel statistics");
      bmean.assign(p.c, 0.0);
      bvar.assign(p.c, 0.0);
      const double count = static_cast<double>(p.n * p.pos);
      for (int64_t c = 0; c < p.c; ++c) {
        double s = 0, s2 = 0;
        for (int64_t n = 0; n < p.n; ++n)
          for (int64_t q = 0; q < p.pos; ++q) s += x.get_double(at(n, c, q));
        const double m = s / count;
        for (int64_t n = 0; n < p.n; ++n)
          for (int64_t q = 0; q < p.pos; ++q) {
            const double dlt = x.get_double(at(n, c, q)) - m;
            s2 += dlt * dlt;
          }
        bmean[c] = m;
        bvar[c] = s2 / count;
      }
    }
    const auto& use_mean = a_.training ? bmean : mean;
    const auto& use_var = a_.training ? bvar : var;
    Tensor& y = *out.at(0);
    ensure(y, x.dtype(), x.shape());
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t c = 0; c < p.c; ++c)
        for (int64_t q = 0; q < p.pos; ++q) {
          const int64_t i = at(n, c, q);
          const double v = (x.get_double(i) - param(use_mean, c, q)) /
                               std::sqrt(param(use_var, c, q) + a_.eps) * param(scale, c, q) +
                           param(bias, c, q);
          store_any(y, i, v);
        }
    if (!a_.training) return;
    // Outputs 1, 2: running statistics; 3, 4 (before opset 14): the batch statistics.
    const Tensor& in_mean = *in[3];
    for (size_t o = 1; o < out.size() && o <= 4; ++o) {
      if (!out[o]) continue;
      ensure(*out[o], in_mean.dtype(), in_mean.shape());
      for (int64_t c = 0; c < p.c; ++c) {
        double v = o == 1   ? mean[c] * a_.momentum + bmean[c] * (1 - a_.momentum)
                   : o == 2 ? var[c] * a_.momentum + bvar[c] * (1 - a_.momentum)
                   : o == 3 ? bmean[c]
                            : bvar[c];
        store_any(*out[o], c, v);
      }
    }
  }

 private:
  Node node_;
  BnAttrs a_;
};

// f32 inference: y = x * a[c] + b[c] with a = scale / sqrt(var + eps), b = B - mean * a.
// The four parameters are usually constants; a and b are still recomputed per call (O(C)) so
// a parameter update is never missed.
class BatchNormFast : public Kernel {
 public:
  BatchNormFast(const Node& node, const Graph& graph) : node_(node), a_(node, graph) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.dtype() == DType::f32, node_.label(), "X must be float32");
    const Planes p = planes_of(x.shape(), a_.nhwc, node_);
    const Tensor* prm[4];
    for (size_t i = 0; i < 4; ++i) {
      prm[i] = &required_input(in, i + 1, node_);
      check(prm[i]->dtype() == DType::f32 && prm[i]->numel() == p.c, node_.label(),
            "parameter " + std::to_string(i + 1) + " " + shape_str(prm[i]->shape()) +
                " must hold " + std::to_string(p.c) + " float32 values");
    }
    scale_.resize(p.c);
    shift_.resize(p.c);
    const float *s = prm[0]->data<float>(), *b = prm[1]->data<float>(), *m = prm[2]->data<float>(),
                *v = prm[3]->data<float>();
    for (int64_t c = 0; c < p.c; ++c) {
      const double a = s[c] / std::sqrt(static_cast<double>(v[c]) + a_.eps);
      scale_[c] = static_cast<float>(a);
      shift_[c] = static_cast<float>(b[c] - m[c] * a);
    }
    Tensor& y = *out.at(0);
    ensure(y, DType::f32, x.shape());
    const float* xp = x.data<float>();
    float* yp = y.data<float>();
    const float *sc = scale_.data(), *sh = shift_.data();
    if (a_.nhwc) {
      const int64_t rows = p.n * p.pos, ch = p.c;
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = xp + r * ch;
        float* yr = yp + r * ch;
#pragma omp simd
        for (int64_t c = 0; c < ch; ++c) yr[c] = xr[c] * sc[c] + sh[c];
      }
    } else {
      const int64_t planes = p.n * p.c, pos = p.pos, ch = p.c;
#pragma omp parallel for schedule(static)
      for (int64_t pl = 0; pl < planes; ++pl) {
        const float a = sc[pl % ch], b = sh[pl % ch];
        const float* xr = xp + pl * pos;
        float* yr = yp + pl * pos;
#pragma omp simd
        for (int64_t q = 0; q < pos; ++q) yr[q] = xr[q] * a + b;
      }
    }
  }

 private:
  Node node_;
  BnAttrs a_;
  std::vector<float> scale_, shift_;
};

std::unique_ptr<Kernel> make_bn_fast(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  for (size_t i = 1; i <= 4; ++i)
    if (input_dtype(node, graph, i) != DType::f32) return nullptr;
  if (BnAttrs(node, graph).training) return nullptr;
  return std::make_unique<BatchNormFast>(node, graph);
}

// ---------------------------------------------------------------------------------------------
// InstanceNormalization: per (n, c) normalization over the spatial positions.

class InstanceNormRef : public Kernel {
 public:
  explicit InstanceNormRef(const Node& node)
      : node_(node), eps_(node.get_float("epsilon", 1e-5f)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.dtype() == DType::f32 || x.dtype() == DType::f64, node_.label(),
          std::string("unsupported dtype ") + dtype_name(x.dtype()));
    check(x.rank() >= 3, node_.label(), "input X must have rank >= 3, got " + shape_str(x.shape()));
    const Planes p = planes_of(x.shape(), false, node_);
    const Tensor& ts = required_input(in, 1, node_);
    const Tensor& tb = required_input(in, 2, node_);
    check(ts.numel() == p.c && tb.numel() == p.c, node_.label(),
          "scale and B must hold " + std::to_string(p.c) + " values");
    Tensor& y = *out.at(0);
    ensure(y, x.dtype(), x.shape());
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < p.n * p.c; ++pl) {
      const int64_t base = pl * p.pos, c = pl % p.c;
      double s = 0, s2 = 0;
      for (int64_t q = 0; q < p.pos; ++q) s += x.get_double(base + q);
      const double m = s / static_cast<double>(p.pos);
      for (int64_t q = 0; q < p.pos; ++q) {
        const double d = x.get_double(base + q) - m;
        s2 += d * d;
      }
      const double inv = 1.0 / std::sqrt(s2 / static_cast<double>(p.pos) + eps_);
      const double a = ts.get_double(c) * inv, b = tb.get_double(c);
      for (int64_t q = 0; q < p.pos; ++q)
        store_any(y, base + q, (x.get_double(base + q) - m) * a + b);
    }
  }

 private:
  Node node_;
  double eps_;
};

// ---------------------------------------------------------------------------------------------
// LRN: y = x / (bias + alpha / size * sum of x^2 over a window of channels)^beta.

class LrnRef : public Kernel {
 public:
  explicit LrnRef(const Node& node)
      : node_(node),
        alpha_(node.get_float("alpha", 1e-4f)),
        beta_(node.get_float("beta", 0.75f)),
        bias_(node.get_float("bias", 1.0f)),
        size_(node.get_int("size", 0)) {
    check(size_ >= 1, node.label(), "size must be a positive integer");
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.dtype() == DType::f32 || x.dtype() == DType::f64, node_.label(),
          std::string("unsupported dtype ") + dtype_name(x.dtype()));
    check(x.rank() >= 3, node_.label(), "input X must have rank >= 3, got " + shape_str(x.shape()));
    const Planes p = planes_of(x.shape(), false, node_);
    const int64_t lo = (size_ - 1) / 2, hi = size_ - 1 - lo;  // channels before / after
    Tensor& y = *out.at(0);
    ensure(y, x.dtype(), x.shape());
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t c = 0; c < p.c; ++c)
        for (int64_t q = 0; q < p.pos; ++q) {
          double sq = 0;
          for (int64_t j = std::max<int64_t>(0, c - lo); j <= std::min(p.c - 1, c + hi); ++j) {
            const double v = x.get_double((n * p.c + j) * p.pos + q);
            sq += v * v;
          }
          const int64_t i = (n * p.c + c) * p.pos + q;
          store_any(y, i, x.get_double(i) / std::pow(bias_ + alpha_ / size_ * sq, beta_));
        }
  }

 private:
  Node node_;
  double alpha_, beta_, bias_;
  int64_t size_;
};

// ---------------------------------------------------------------------------------------------
// LayerNormalization (opset 17): normalizes over axes [axis, rank); Scale and B broadcast to
// those axes. Optional outputs Mean and InvStdDev keep the leading axes, the rest become 1.

class LayerNormRef : public Kernel {
 public:
  explicit LayerNormRef(const Node& node)
      : node_(node), axis_(node.get_int("axis", -1)), eps_(node.get_float("epsilon", 1e-5f)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.dtype() == DType::f32 || x.dtype() == DType::f64, node_.label(),
          std::string("unsupported dtype ") + dtype_name(x.dtype()));
    const int64_t rank = static_cast<int64_t>(x.rank());
    const int64_t axis = normalize_axis(axis_, rank, node_);
    const Shape inner(x.shape().begin() + axis, x.shape().end());
    const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().begin() + axis));
    const int64_t cols = shape_numel(inner);
    const Tensor& scale = required_input(in, 1, node_);
    const Tensor* bias = in.size() > 2 ? in[2] : nullptr;
    // Scale and B broadcast (numpy, from the right) to the normalized shape.
    auto index_map = [&](const Tensor& t, const char* name) {
      check(t.rank() <= inner.size() && broadcast_shapes(t.shape(), inner, node_) == inner,
            node_.label(),
            std::string(name) + " " + shape_str(t.shape()) + " does not broadcast to " +
                shape_str(inner));
      return broadcast_strides(t.shape(), inner);
    };
    const auto s_strides = index_map(scale, "Scale");
    const auto b_strides = bias ? index_map(*bias, "B") : std::vector<int64_t>{};
    const auto inner_strides = shape_strides(inner);
    auto offset = [&](int64_t j, const std::vector<int64_t>& st) {
      int64_t off = 0;
      for (size_t d = 0; d < inner.size(); ++d) off += (j / inner_strides[d]) % inner[d] * st[d];
      return off;
    };
    Tensor& y = *out.at(0);
    ensure(y, x.dtype(), x.shape());
    Shape stat_shape = x.shape();
    for (int64_t d = axis; d < rank; ++d) stat_shape[d] = 1;
    Tensor* mean_out = out.size() > 1 ? out[1] : nullptr;
    Tensor* inv_out = out.size() > 2 ? out[2] : nullptr;
    // Statistics in float32 unless X is double (stash_type 1 is float32).
    const DType stat_dtype = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
    if (mean_out) ensure(*mean_out, stat_dtype, stat_shape);
    if (inv_out) ensure(*inv_out, stat_dtype, stat_shape);
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0, sq = 0;
      for (int64_t j = 0; j < cols; ++j) sum += x.get_double(r * cols + j);
      const double m = sum / static_cast<double>(cols);
      for (int64_t j = 0; j < cols; ++j) {
        const double d = x.get_double(r * cols + j) - m;
        sq += d * d;
      }
      const double inv = 1.0 / std::sqrt(sq / static_cast<double>(cols) + eps_);
      for (int64_t j = 0; j < cols; ++j) {
        double v = (x.get_double(r * cols + j) - m) * inv * scale.get_double(offset(j, s_strides));
        if (bias) v += bias->get_double(offset(j, b_strides));
        store_any(y, r * cols + j, v);
      }
      if (mean_out) store_any(*mean_out, r, m);
      if (inv_out) store_any(*inv_out, r, inv);
    }
  }

 private:
  Node node_;
  int64_t axis_;
  double eps_;
};

template <class K>
std::unique_ptr<Kernel> make_plain(const Node& node, const Graph&) {
  return std::make_unique<K>(node);
}

std::unique_ptr<Kernel> make_bn_ref(const Node& node, const Graph& graph) {
  return std::make_unique<BatchNormRef>(node, graph);
}

}  // namespace

void register_norm_ops(Registry& r) {
  r.add("BatchNormalization", "fast", make_bn_fast, false);
  r.add("BatchNormalization", "ref", make_bn_ref, true);
  r.add("InstanceNormalization", "ref", make_plain<InstanceNormRef>, true);
  r.add("LRN", "ref", make_plain<LrnRef>, true);
  r.add("LayerNormalization", "ref", make_plain<LayerNormRef>, true);
}

}  // namespace mixq
