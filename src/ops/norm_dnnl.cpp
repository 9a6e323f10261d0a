// BatchNormalization's f32 fast path: inference folds the statistics into one per-channel scale
// and shift; training mode and the backward passes run oneDNN batch normalization. What it does
// not cover goes to the reference (norm_ref.cpp), which the per-op tests compare it with.
#include <cmath>
#include <cstring>
#include <memory>

#include "ops/dnnl_util.h"
#include "ops/norm_impl.h"

namespace mixq {
namespace {
using namespace norm_impl;

// f32. Inference: y = x * a[c] + b[c] with a = scale / sqrt(var + eps), b = B - mean * a (the
// parameters are usually constants; a and b are still recomputed per call, O(C), so a parameter
// update is never missed). Training mode and the backward passes: oneDNN batch normalization
// with one plan per shape. Per-position parameters (spatial = 0), channels-last training and
// gradients through the statistics go to the reference.
class BatchNormFast : public Kernel {
 public:
  BatchNormFast(const Node& node, const Graph& graph)
      : node_(node), a_(node, graph), ref_(make_bn_ref(node, graph)) {}

  void set_training(bool training) override {
    trainer_ = training;
    ref_->set_training(training);
  }
  bool training() const { return a_.training || trainer_; }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.dtype() == DType::f32, node_.label(), "X must be float32");
    const Planes p = planes_of(x.shape(), a_.nhwc, node_);
    stats_valid_ = false;
    if (!per_channel_f32(in, p) || (training() && (a_.nhwc || p.n * p.pos * p.c == 0)))
      return ref_->forward(in, out);
    if (training()) return train_forward(in, out, p);
    const Tensor* prm[4];
    for (size_t i = 0; i < 4; ++i) prm[i] = in[i + 1];
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

  bool has_backward() const override {
    return !a_.nhwc;
  }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& x = required_input(in, 0, node_);
    const Planes p = planes_of(x.shape(), a_.nhwc, node_);
    bool simple = !a_.nhwc && x.dtype() == DType::f32 && per_channel_f32(in, p) &&
                  p.n * p.pos * p.c > 0 && !gout.empty() && gout[0] && !grad_slot(gin, 3) &&
                  !grad_slot(gin, 4);
    for (size_t o = 1; o < gout.size(); ++o) simple &= gout[o] == nullptr;
    if (!simple) return ref_->backward(in, out, gout, gin);
    const Tensor& dy = *gout[0];
    check(dy.shape() == x.shape() && dy.dtype() == DType::f32, node_.label(),
          "gradient of Y " + shape_str(dy.shape()) + " does not match X " + shape_str(x.shape()));
    Plan& pl = plan(x.shape(), p);
    const bool train = training();
    Tensor* dx = grad_slot(gin, 0);
    Tensor* ds = grad_slot(gin, 1);
    Tensor* db = grad_slot(gin, 2);
    if (dx) ensure(*dx, DType::f32, x.shape());
    if (ds) ensure(*ds, DType::f32, in[1]->shape());
    if (db) ensure(*db, DType::f32, in[2]->shape());
    sink_.resize(2 * p.c);
    dnnl_util::guarded(node_.label(), [&] {
      dnnl_util::bind(pl.src, x);
      dnnl_util::bind(pl.scale, *in[1]);
      dnnl_util::bind(pl.shift, *in[2]);
      if (train) {
        if (!(stats_valid_ && stats_shape_ == x.shape())) {
          // No training forward of this input to take the statistics from: recompute them.
          pl.dst.set_data_handle(dnnl_util::scratch(0, x.nbytes()));
          bind_stats(pl);
          pl.train.run();
        }
        bind_stats(pl);
      } else {
        dnnl_util::bind(pl.mean, *in[3]);
        dnnl_util::bind(pl.var, *in[4]);
      }
      dnnl_util::bind(pl.diff_dst, dy);
      if (dx)
        dnnl_util::bind(pl.diff_src, *dx);
      else
        pl.diff_src.set_data_handle(dnnl_util::scratch(1, x.nbytes()));
      pl.diff_scale.set_data_handle(ds ? ds->raw() : sink_.data());
      pl.diff_shift.set_data_handle(db ? db->raw() : sink_.data() + p.c);
      (train ? pl.bwd_train : pl.bwd_frozen).run();
      dnnl_util::stream().wait();
    });
  }

 private:
  struct Plan {
    dnnl::memory src, dst, scale, shift, mean, var, diff_src, diff_dst, diff_scale, diff_shift;
    dnnl_util::Bound train;                  // forward training: batch statistics out
    dnnl_util::Bound bwd_train, bwd_frozen;  // backward through batch / given statistics
  };

  // The oneDNN path takes f32 parameters of one value per channel.
  static bool per_channel_f32(const std::vector<const Tensor*>& in, const Planes& p) {
    for (size_t i = 1; i <= 4; ++i)
      if (i >= in.size() || !in[i] || in[i]->dtype() != DType::f32 || in[i]->numel() != p.c)
        return false;
    return true;
  }

  Plan& plan(const Shape& xs, const Planes& p) {
    return plans_.get({&xs}, [&] {
      Plan pl;
      dnnl_util::guarded(node_.label(), [&] { build(pl, p); });
      return pl;
    });
  }

  // X seen as [n, c, positions, 1], channels first.
  void build(Plan& pl, const Planes& p) {
    using dnnl::memory;
    using flags = dnnl::normalization_flags;
    auto& eng = dnnl_util::engine();
    const memory::desc data({p.n, p.c, p.pos, 1}, memory::data_type::f32, memory::format_tag::abcd);
    const memory::desc chan({p.c}, memory::data_type::f32, memory::format_tag::a);
    const float eps = static_cast<float>(a_.eps);
    const auto ss = flags::use_scale | flags::use_shift;
    using fwd = dnnl::batch_normalization_forward;
    using bwd = dnnl::batch_normalization_backward;
    fwd::primitive_desc train(fwd::desc(dnnl::prop_kind::forward_training, data, eps, ss), eng);
    fwd::primitive_desc frozen(
        fwd::desc(dnnl::prop_kind::forward_training, data, eps, ss | flags::use_global_stats), eng);
    bwd::primitive_desc bt(bwd::desc(dnnl::prop_kind::backward, data, data, eps, ss), eng, train);
    bwd::primitive_desc bf(
        bwd::desc(dnnl::prop_kind::backward, data, data, eps, ss | flags::use_global_stats), eng,
        frozen);
    for (dnnl::memory* m : {&pl.src, &pl.dst, &pl.diff_src, &pl.diff_dst})
      *m = dnnl_util::unbound(data);
    for (dnnl::memory* m :
         {&pl.scale, &pl.shift, &pl.mean, &pl.var, &pl.diff_scale, &pl.diff_shift})
      *m = dnnl_util::unbound(chan);
    pl.train = dnnl_util::Bound(fwd(train));
    pl.train.arg(DNNL_ARG_SRC, pl.src)
        .arg(DNNL_ARG_DST, pl.dst)
        .arg(DNNL_ARG_SCALE, pl.scale)
        .arg(DNNL_ARG_SHIFT, pl.shift)
        .arg(DNNL_ARG_MEAN, pl.mean)
        .arg(DNNL_ARG_VARIANCE, pl.var);
    for (auto [bound, pd] : {std::pair{&pl.bwd_train, &bt}, std::pair{&pl.bwd_frozen, &bf}}) {
      *bound = dnnl_util::Bound(bwd(*pd));
      bound->arg(DNNL_ARG_SRC, pl.src)
          .arg(DNNL_ARG_MEAN, pl.mean)
          .arg(DNNL_ARG_VARIANCE, pl.var)
          .arg(DNNL_ARG_SCALE, pl.scale)
          .arg(DNNL_ARG_SHIFT, pl.shift)
          .arg(DNNL_ARG_DIFF_DST, pl.diff_dst)
          .arg(DNNL_ARG_DIFF_SRC, pl.diff_src)
          .arg(DNNL_ARG_DIFF_SCALE, pl.diff_scale)
          .arg(DNNL_ARG_DIFF_SHIFT, pl.diff_shift);
    }
  }

  void bind_stats(Plan& pl) {
    pl.mean.set_data_handle(bmean_.data());
    pl.var.set_data_handle(bvar_.data());
  }

  // Batch statistics from oneDNN, then the running and saved statistics outputs.
  void train_forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out,
                     const Planes& p) {
    const Tensor& x = *in[0];
    Plan& pl = plan(x.shape(), p);
    Tensor& y = *out.at(0);
    ensure(y, DType::f32, x.shape());
    bmean_.resize(p.c);
    bvar_.resize(p.c);
    dnnl_util::guarded(node_.label(), [&] {
      dnnl_util::bind(pl.src, x);
      dnnl_util::bind(pl.dst, y);
      dnnl_util::bind(pl.scale, *in[1]);
      dnnl_util::bind(pl.shift, *in[2]);
      bind_stats(pl);
      pl.train.run();
      dnnl_util::stream().wait();
    });
    stats_valid_ = true;
    stats_shape_ = x.shape();
    const float *m = in[3]->data<float>(), *v = in[4]->data<float>();
    const double mom = a_.momentum, vf = running_var_factor(trainer_, p);
    for (size_t o = 1; o < out.size() && o <= 4; ++o) {
      if (!out[o]) continue;
      ensure(*out[o], DType::f32, in[3]->shape());
      float* r = out[o]->data<float>();
      for (int64_t c = 0; c < p.c; ++c)
        r[c] = static_cast<float>(o == 1   ? m[c] * mom + bmean_[c] * (1 - mom)
                                  : o == 2 ? v[c] * mom + bvar_[c] * vf * (1 - mom)
                                  : o == 3 ? bmean_[c]
                                           : bvar_[c]);
    }
  }

  Node node_;
  BnAttrs a_;
  std::unique_ptr<Kernel> ref_;  // the reference, for what this path does not cover
  bool trainer_ = false;
  std::vector<float> scale_, shift_;
  std::vector<float> bmean_, bvar_, sink_;  // batch statistics of the last training forward
  bool stats_valid_ = false;
  Shape stats_shape_;
  dnnl_util::PlanCache<Plan> plans_;
};

}  // namespace

std::unique_ptr<Kernel> norm_impl::make_bn_fast(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  for (size_t i = 1; i <= 4; ++i)
    if (input_dtype(node, graph, i) != DType::f32) return nullptr;
  // A node that trains by itself (ONNX training graphs) runs the reference; mixq's trainer
  // switches fast kernels of inference nodes into training with set_training.
  if (BnAttrs(node, graph).training) return nullptr;
  return std::make_unique<BatchNormFast>(node, graph);
}

}  // namespace mixq
