// BatchNormalization (inference and training mode, with backward), InstanceNormalization,
// LayerNormalization and LRN: references computing in double (the specification).
#include <cmath>
#include <memory>

#include "ir/internal_names.h"
#include "ops/norm_impl.h"

namespace mixq {
namespace norm_impl {

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
  std::string layout = node.get_string(names::kLayout, "NCHW");
  check(layout == "NCHW" || layout == "NHWC", node.label(), "unknown layout '" + layout + "'");
  return layout == "NHWC";
}

double running_var_factor(bool unbiased, const Planes& p) {
  const double count = static_cast<double>(p.n * p.pos);
  return unbiased && count > 1 ? count / (count - 1) : 1.0;
}

}  // namespace norm_impl

namespace {
using namespace norm_impl;

// Input X of a forward reference, checked to be f32 or f64.
const Tensor& float_input(const std::vector<const Tensor*>& in, const Node& node) {
  const Tensor& x = required_input(in, 0, node);
  check(x.dtype() == DType::f32 || x.dtype() == DType::f64, node.label(),
        std::string("unsupported dtype ") + dtype_name(x.dtype()));
  return x;
}

// X [N, C, spatial...] of InstanceNormalization and LRN as planes, checked to have rank >= 3.
Planes spatial_planes(const Tensor& x, const Node& node) {
  check(x.rank() >= 3, node.label(), "input X must have rank >= 3, got " + shape_str(x.shape()));
  return planes_of(x.shape(), false, node);
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

// Element (n, c, q) of X lives at n * c * pos + c * cs + q * ps (cs, ps: channel and position
// strides, for either layout).
struct BnIndex {
  Planes p;
  int64_t cs, ps;
  BnIndex(const Planes& planes, bool nhwc)
      : p(planes), cs(nhwc ? 1 : planes.pos), ps(nhwc ? planes.c : 1) {}
  int64_t at(int64_t n, int64_t c, int64_t q) const { return n * p.c * p.pos + c * cs + q * ps; }
  // Index into a parameter of one value per channel, or per channel and position.
  int64_t param(const std::vector<double>& v, int64_t c, int64_t q) const {
    return static_cast<int64_t>(v.size()) == p.c ? c : c * p.pos + q;
  }
  bool big() const { return p.n * p.c * p.pos > 65536; }
};

// Per channel mean and biased variance over every axis but the channel.
template <class T>
void batch_stats(const T* x, const BnIndex& ix, std::vector<double>& mean,
                 std::vector<double>& var) {
  const Planes& p = ix.p;
  const double count = static_cast<double>(p.n * p.pos);
  mean.assign(p.c, 0.0);
  var.assign(p.c, 0.0);
#pragma omp parallel for schedule(static) if (ix.big())
  for (int64_t c = 0; c < p.c; ++c) {
    double s = 0, s2 = 0;
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t q = 0; q < p.pos; ++q) s += x[ix.at(n, c, q)];
    const double m = s / count;
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t q = 0; q < p.pos; ++q) {
        const double d = x[ix.at(n, c, q)] - m;
        s2 += d * d;
      }
    mean[c] = m;
    var[c] = s2 / count;
  }
}

// y = (x - mean) / sqrt(var + eps) * scale + B, folded into y = x * a + b per channel (or per
// channel and position when any parameter is).
template <class T>
void bn_forward(const T* x, T* y, const BnIndex& ix, const std::vector<double>& scale,
                const std::vector<double>& bias, const std::vector<double>& mean,
                const std::vector<double>& var, double eps) {
  const Planes& p = ix.p;
  bool per_channel = true;
  for (const auto* v : {&scale, &bias, &mean, &var})
    per_channel &= static_cast<int64_t>(v->size()) == p.c;
  const int64_t len = per_channel ? p.c : p.c * p.pos;
  std::vector<double> a(len), b(len);
  for (int64_t c = 0; c < p.c; ++c)
    for (int64_t q = 0; q < (per_channel ? 1 : p.pos); ++q) {
      const int64_t k = per_channel ? c : c * p.pos + q;
      a[k] = scale[ix.param(scale, c, q)] / std::sqrt(var[ix.param(var, c, q)] + eps);
      b[k] = bias[ix.param(bias, c, q)] - mean[ix.param(mean, c, q)] * a[k];
    }
#pragma omp parallel for schedule(static) if (ix.big())
  for (int64_t c = 0; c < p.c; ++c)
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t q = 0; q < p.pos; ++q) {
        const int64_t i = ix.at(n, c, q), k = per_channel ? c : c * p.pos + q;
        y[i] = static_cast<T>(x[i] * a[k] + b[k]);
      }
}

// Training mode. With xhat = (x - mu) * inv: dscale = sum dy xhat, dB = sum dy, and
// dx = scale inv / N (N dy - sum dy - xhat sum dy xhat) + gm / N + gv 2 (x - mu) / N, where gm
// and gv are the gradients reaching the batch mean and biased variance through other outputs.
template <class T>
void bn_backward_batch(const T* x, const T* dy, T* dx, const BnIndex& ix,
                       const std::vector<double>& scale, const std::vector<double>& bmean,
                       const std::vector<double>& bvar, const std::vector<double>& gm,
                       const std::vector<double>& gv, double eps, std::vector<double>& dscale,
                       std::vector<double>& dbias) {
  const Planes& p = ix.p;
  const double count = static_cast<double>(p.n * p.pos);
#pragma omp parallel for schedule(static) if (ix.big())
  for (int64_t c = 0; c < p.c; ++c) {
    const double inv = 1.0 / std::sqrt(bvar[c] + eps), mu = bmean[c];
    double sum_dy = 0, sum_dy_xhat = 0;
    if (dy)
      for (int64_t n = 0; n < p.n; ++n)
        for (int64_t q = 0; q < p.pos; ++q) {
          const int64_t i = ix.at(n, c, q);
          sum_dy += dy[i];
          sum_dy_xhat += dy[i] * ((x[i] - mu) * inv);
        }
    dscale[c] = sum_dy_xhat;
    dbias[c] = sum_dy;
    if (!dx) continue;
    const double k = scale[c] * inv / count;
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t q = 0; q < p.pos; ++q) {
        const int64_t i = ix.at(n, c, q);
        const double xc = x[i] - mu, d = dy ? static_cast<double>(dy[i]) : 0.0;
        dx[i] = static_cast<T>(k * (count * d - sum_dy - xc * inv * sum_dy_xhat) + gm[c] / count +
                               gv[c] * 2 * xc / count);
      }
  }
}

// Inference mode: mean and var are inputs like scale and B; g[k] collects the gradient of
// parameter k (scale, B, mean, var). A channel's parameters belong to one thread.
template <class T>
void bn_backward_given(const T* x, const T* dy, T* dx, const BnIndex& ix,
                       const std::vector<double>* v, double eps, std::vector<double>* g) {
  const Planes& p = ix.p;
#pragma omp parallel for schedule(static) if (ix.big())
  for (int64_t c = 0; c < p.c; ++c)
    for (int64_t n = 0; n < p.n; ++n)
      for (int64_t q = 0; q < p.pos; ++q) {
        int64_t k[4];
        for (int j = 0; j < 4; ++j) k[j] = ix.param(v[j], c, q);
        const double s = v[0][k[0]], inv = 1.0 / std::sqrt(v[3][k[3]] + eps);
        const int64_t i = ix.at(n, c, q);
        const double d = dy ? static_cast<double>(dy[i]) : 0.0, xc = x[i] - v[2][k[2]];
        if (dx) dx[i] = static_cast<T>(d * s * inv);
        g[0][k[0]] += d * xc * inv;
        g[1][k[1]] += d;
        g[2][k[2]] -= d * s * inv;
        g[3][k[3]] -= 0.5 * d * s * xc * inv * inv * inv;
      }
}

class BatchNormRef : public Kernel {
 public:
  BatchNormRef(const Node& node, const Graph& graph) : node_(node), a_(node, graph) {}

  void set_training(bool training) override { trainer_ = training; }
  bool training() const { return a_.training || trainer_; }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = float_input(in, node_);
    const Planes p = planes_of(x.shape(), a_.nhwc, node_);
    const BnIndex ix(p, a_.nhwc);
    auto scale = channel_param(required_input(in, 1, node_), p, "scale", node_);
    auto bias = channel_param(required_input(in, 2, node_), p, "B", node_);
    auto mean = channel_param(required_input(in, 3, node_), p, "mean", node_);
    auto var = channel_param(required_input(in, 4, node_), p, "var", node_);
    const bool train = training();
    std::vector<double> bmean, bvar;
    if (train) {
      check(mean.size() == static_cast<size_t>(p.c) && var.size() == static_cast<size_t>(p.c),
            node_.label(), "training mode needs per-channel statistics");
      if (x.dtype() == DType::f32)
        batch_stats(x.data<float>(), ix, bmean, bvar);
      else
        batch_stats(x.data<double>(), ix, bmean, bvar);
    }
    const auto& use_mean = train ? bmean : mean;
    const auto& use_var = train ? bvar : var;
    Tensor& y = *out.at(0);
    ensure(y, x.dtype(), x.shape());
    if (x.dtype() == DType::f32)
      bn_forward(x.data<float>(), y.data<float>(), ix, scale, bias, use_mean, use_var, a_.eps);
    else
      bn_forward(x.data<double>(), y.data<double>(), ix, scale, bias, use_mean, use_var, a_.eps);
    if (!train) return;
    // Outputs 1, 2: running statistics; 3, 4 (before opset 14): the batch statistics.
    const Tensor& in_mean = *in[3];
    const double vf = running_var_factor(trainer_, p);
    for (size_t o = 1; o < out.size() && o <= 4; ++o) {
      if (!out[o]) continue;
      ensure(*out[o], in_mean.dtype(), in_mean.shape());
      for (int64_t c = 0; c < p.c; ++c) {
        double v = o == 1   ? mean[c] * a_.momentum + bmean[c] * (1 - a_.momentum)
                   : o == 2 ? var[c] * a_.momentum + bvar[c] * vf * (1 - a_.momentum)
                   : o == 3 ? bmean[c]
                            : bvar[c];
        store_any(*out[o], c, v);
      }
    }
  }

  bool has_backward() const override { return !a_.nhwc; }

  // Training mode differentiates through the batch statistics (and through the running and
  // saved statistics outputs when they receive gradients); inference mode treats mean and var
  // as inputs like any other.
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    check(!a_.nhwc, node_.label(),
          "has no backward in its fused form (mixq_layout); train the unfused graph");
    const Tensor& x = required_input(in, 0, node_);
    check(x.dtype() == DType::f32 || x.dtype() == DType::f64, node_.label(),
          std::string("no backward for dtype ") + dtype_name(x.dtype()));
    const Planes p = planes_of(x.shape(), false, node_);
    const Tensor* prm[4];
    std::vector<double> v[4];  // scale, B, mean, var
    const char* names[4] = {"scale", "B", "mean", "var"};
    for (size_t i = 0; i < 4; ++i) {
      prm[i] = &required_input(in, i + 1, node_);
      v[i] = channel_param(*prm[i], p, names[i], node_);
    }
    const Tensor* dy = optional_input(gout, 0);
    if (dy)
      check(
          dy->shape() == x.shape() && dy->dtype() == x.dtype(), node_.label(),
          "gradient of Y " + shape_str(dy->shape()) + " does not match X " + shape_str(x.shape()));
    Tensor* dx = grad_slot(gin, 0);
    if (dx) ensure(*dx, x.dtype(), x.shape());
    std::vector<double> g[4];
    for (size_t i = 0; i < 4; ++i) g[i].assign(v[i].size(), 0.0);
    if (x.dtype() == DType::f32)
      run_backward<float>(x, dy, dx, p, v, gout, g);
    else
      run_backward<double>(x, dy, dx, p, v, gout, g);
    for (size_t k = 0; k < 4; ++k) {
      Tensor* t = grad_slot(gin, k + 1);
      if (!t) continue;
      ensure(*t, prm[k]->dtype(), prm[k]->shape());
      for (size_t i = 0; i < g[k].size(); ++i) store_any(*t, static_cast<int64_t>(i), g[k][i]);
    }
  }

 private:
  template <class T>
  void run_backward(const Tensor& x, const Tensor* dy, Tensor* dx, const Planes& p,
                    const std::vector<double>* v, const std::vector<const Tensor*>& gout,
                    std::vector<double>* g) {
    const BnIndex ix(p, false);
    const T* dyp = dy ? dy->data<T>() : nullptr;
    T* dxp = dx ? dx->data<T>() : nullptr;
    if (!training()) return bn_backward_given(x.data<T>(), dyp, dxp, ix, v, a_.eps, g);
    check(v[2].size() == static_cast<size_t>(p.c) && v[3].size() == static_cast<size_t>(p.c),
          node_.label(), "training mode needs per-channel statistics");
    std::vector<double> bmean, bvar;
    batch_stats(x.data<T>(), ix, bmean, bvar);
    // Gradients reaching the batch statistics through outputs 1..4, and the running
    // statistics inputs through outputs 1 and 2.
    const double mom = a_.momentum, vf = running_var_factor(trainer_, p);
    auto stat = [&](size_t o, int64_t c) {
      const Tensor* t = optional_input(gout, o);
      return t ? t->get_double(c) : 0.0;
    };
    std::vector<double> gm(p.c), gv(p.c);
    for (int64_t c = 0; c < p.c; ++c) {
      gm[c] = stat(1, c) * (1 - mom) + stat(3, c);
      gv[c] = stat(2, c) * (1 - mom) * vf + stat(4, c);
      g[2][c] = stat(1, c) * mom;
      g[3][c] = stat(2, c) * mom;
    }
    bn_backward_batch(x.data<T>(), dyp, dxp, ix, v[0], bmean, bvar, gm, gv, a_.eps, g[0], g[1]);
  }

  Node node_;
  BnAttrs a_;
  bool trainer_ = false;  // set_training(true): mixq's trainer runs this node
};

// ---------------------------------------------------------------------------------------------
// InstanceNormalization: per (n, c) normalization over the spatial positions.

class InstanceNormRef : public Kernel {
 public:
  explicit InstanceNormRef(const Node& node)
      : node_(node), eps_(node.get_float("epsilon", 1e-5f)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = float_input(in, node_);
    const Planes p = spatial_planes(x, node_);
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
    const Tensor& x = float_input(in, node_);
    const Planes p = spatial_planes(x, node_);
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
    const Tensor& x = float_input(in, node_);
    const int64_t rank = static_cast<int64_t>(x.rank());
    const int64_t axis = normalize_axis(axis_, rank, node_);
    const Shape inner(x.shape().begin() + axis, x.shape().end());
    const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().begin() + axis));
    const int64_t cols = shape_numel(inner);
    const Tensor& scale = required_input(in, 1, node_);
    const Tensor* bias = optional_input(in, 2);
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

}  // namespace

std::unique_ptr<Kernel> norm_impl::make_bn_ref(const Node& node, const Graph& graph) {
  return std::make_unique<BatchNormRef>(node, graph);
}

void register_norm_ops(Registry& r) {
  r.add("BatchNormalization", "fast", make_bn_fast, false);
  r.add("BatchNormalization", "ref", make_bn_ref, true);
  r.add("InstanceNormalization", "ref", make_plain<InstanceNormRef>, true);
  r.add("LRN", "ref", make_plain<LrnRef>, true);
  r.add("LayerNormalization", "ref", make_plain<LayerNormRef>, true);
}

}  // namespace mixq
