// GroupNormalization, imported from opsets 18 and 21 as mixq.GroupNormalization (libonnx knows
// opset 17 at most; onnx/lower_opset.cpp rewrites the node). X [N, C, ...] is normalised over
// each group of C / num_groups channels and all positions: (x - mean) / sqrt(var + epsilon),
// then scaled and shifted. The attribute channel_affine says which specification the node
// follows: 0 for opset 18 (scale and bias [num_groups], one value per group), 1 for opset 21
// (scale and bias [C], one value per channel). Statistics are computed in double whatever
// stash_type says (the float32 stash is at least as precise). Backward (float data): X, scale
// and bias.
#include <cmath>

#include "ir/internal_names.h"
#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

class GroupNorm final : public Kernel {
 public:
  GroupNorm(const Node& node, const Graph&)
      : node_(node),
        groups_(node.get_int("num_groups", 0)),
        eps_(node.get_float("epsilon", 1e-5f)),
        channel_affine_(node.get_int("channel_affine", -1)) {
    check(node.has("num_groups"), node.label(), "missing attribute num_groups");
    check(groups_ >= 1, node.label(),
          "num_groups must be positive, got " + std::to_string(groups_));
    check(channel_affine_ == 0 || channel_affine_ == 1, node.label(),
          "attribute channel_affine must be 0 (opset 18) or 1 (opset 21)");
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Layout l = layout(x, in);
    ensure(*out.at(0), x.dtype(), x.shape());
    visit_dtype<kFloatTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = x.data<T>();
      const T* ps = in[1]->data<T>();
      const T* pb = in[2]->data<T>();
      T* py = out[0]->data<T>();
      for (int64_t n = 0; n < l.n; ++n)
        for (int64_t g = 0; g < groups_; ++g) {
          const int64_t base = (n * groups_ + g) * l.group_size;
          const Stats st = stats(px + base, l.group_size);
          for (int64_t c = 0; c < l.per_group; ++c) {
            const int64_t a = affine_index(g, c, l);
            const double s = ps[a], b = pb[a];
            for (int64_t p = 0; p < l.pos; ++p) {
              const int64_t i = base + c * l.pos + p;
              py[i] = static_cast<T>((px[i] - st.mean) * st.inv * s + b);
            }
          }
        }
    });
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    (void)out;
    const Tensor& x = required_input(in, 0, node_);
    const Layout l = layout(x, in);
    const Tensor& gy = grad_arg(gout, 0, node_.label());
    check(gy.shape() == x.shape() && gy.dtype() == x.dtype(), node_.label(),
          "gradient has the wrong type or shape");
    Tensor* gx = grad_slot(gin, 0);
    Tensor* gs = grad_slot(gin, 1);
    Tensor* gb = grad_slot(gin, 2);
    visit_dtype<kFloatTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = x.data<T>();
      const T* ps = in[1]->data<T>();
      const T* pg = gy.data<T>();
      if (gx) ensure(*gx, x.dtype(), x.shape());
      std::vector<double> dscale(static_cast<size_t>(in[1]->numel()), 0.0);
      std::vector<double> dbias(dscale.size(), 0.0);
      for (int64_t n = 0; n < l.n; ++n)
        for (int64_t g = 0; g < groups_; ++g) {
          const int64_t base = (n * groups_ + g) * l.group_size;
          const Stats st = stats(px + base, l.group_size);
          // Sums over the group of dxhat = gy * scale and of dxhat * xhat.
          double sum_d = 0, sum_dx = 0;
          for (int64_t c = 0; c < l.per_group; ++c) {
            const int64_t a = affine_index(g, c, l);
            for (int64_t p = 0; p < l.pos; ++p) {
              const int64_t i = base + c * l.pos + p;
              const double xhat = (px[i] - st.mean) * st.inv;
              const double d = pg[i] * static_cast<double>(ps[a]);
              sum_d += d;
              sum_dx += d * xhat;
              dscale[a] += pg[i] * xhat;
              dbias[a] += pg[i];
            }
          }
          if (!gx) continue;
          const double m = static_cast<double>(l.group_size);
          T* r = gx->data<T>();
          for (int64_t c = 0; c < l.per_group; ++c) {
            const double s = ps[affine_index(g, c, l)];
            for (int64_t p = 0; p < l.pos; ++p) {
              const int64_t i = base + c * l.pos + p;
              const double xhat = (px[i] - st.mean) * st.inv;
              r[i] = static_cast<T>(st.inv * (pg[i] * s - sum_d / m - xhat * sum_dx / m));
            }
          }
        }
      auto store = [&](Tensor* t, const std::vector<double>& v) {
        if (!t) return;
        ensure(*t, x.dtype(), in[1]->shape());
        T* r = t->data<T>();
        for (size_t i = 0; i < v.size(); ++i) r[i] = static_cast<T>(v[i]);
      };
      store(gs, dscale);
      store(gb, dbias);
    });
  }

 private:
  struct Layout {
    int64_t n = 0, c = 0, pos = 1, per_group = 0, group_size = 0;
  };
  struct Stats {
    double mean = 0, inv = 0;
  };

  Layout layout(const Tensor& x, const std::vector<const Tensor*>& in) const {
    check(x.rank() >= 2, node_.label(), "input X must have rank >= 2, got " + shape_str(x.shape()));
    Layout l;
    l.n = x.dim(0);
    l.c = x.dim(1);
    for (size_t d = 2; d < x.rank(); ++d) l.pos *= x.dim(d);
    check(
        l.c % groups_ == 0, node_.label(),
        std::to_string(l.c) + " channels do not split into " + std::to_string(groups_) + " groups");
    l.per_group = l.c / groups_;
    l.group_size = l.per_group * l.pos;
    const int64_t want = channel_affine_ ? l.c : groups_;
    for (size_t i = 1; i <= 2; ++i) {
      const Tensor& t = required_input(in, i, node_);
      check(t.rank() == 1 && t.dim(0) == want && t.dtype() == x.dtype(), node_.label(),
            std::string(i == 1 ? "scale " : "bias ") + shape_str(t.shape()) + " must be [" +
                std::to_string(want) + "] (" + (channel_affine_ ? "channels" : "groups") +
                ") of X's type");
    }
    return l;
  }

  int64_t affine_index(int64_t g, int64_t c, const Layout& l) const {
    return channel_affine_ ? g * l.per_group + c : g;
  }

  template <class T>
  Stats stats(const T* p, int64_t n) const {
    Stats s;
    if (n == 0) return s;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i) sum += p[i];
    s.mean = sum / static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) sq += (p[i] - s.mean) * (p[i] - s.mean);
    s.inv = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps_);
    return s;
  }

  Node node_;
  int64_t groups_;
  double eps_;
  int64_t channel_affine_;
};

}  // namespace

void register_group_norm_ops(Registry& r) {
  r.add(names::internal_key(names::kGroupNorm), "ref", make_kernel<GroupNorm>, true);
}

}  // namespace mixq
