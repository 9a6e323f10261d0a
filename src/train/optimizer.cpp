#include "train/optimizer.h"

#include <cmath>

#include "base/error.h"

namespace mixq {

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::sgd;
  if (name == "adam") return OptimizerKind::adam;
  if (name == "adamw") return OptimizerKind::adamw;
  throw Error("--optimizer", "unknown optimizer '" + name + "' (sgd, adam, adamw)");
}

const char* optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::sgd:
      return "sgd";
    case OptimizerKind::adam:
      return "adam";
    case OptimizerKind::adamw:
      return "adamw";
  }
  return "?";
}

Optimizer::Optimizer(const OptimizerOptions& options, std::vector<ParamKind> kinds)
    : o_(options), kinds_(std::move(kinds)), buf1_(kinds_.size()), buf2_(kinds_.size()) {
  check(o_.momentum >= 0 && o_.momentum < 1, "--momentum", "must be in [0, 1)");
  check(o_.weight_decay >= 0, "--wd", "must be non-negative");
  check(o_.beta1 >= 0 && o_.beta1 < 1 && o_.beta2 >= 0 && o_.beta2 < 1, "optimizer",
        "Adam betas must be in [0, 1)");
  check(o_.eps > 0, "optimizer", "Adam epsilon must be positive");
}

std::vector<std::string> Optimizer::state_names() const {
  if (o_.kind == OptimizerKind::sgd) return {"momentum"};
  return {"adam_m", "adam_v"};
}

std::vector<std::pair<std::string, Tensor*>> Optimizer::state(size_t param) {
  std::vector<std::pair<std::string, Tensor*>> s;
  auto names = state_names();
  s.emplace_back(names[0], &buf1_.at(param));
  if (names.size() > 1) s.emplace_back(names[1], &buf2_.at(param));
  return s;
}

void Optimizer::step(const std::vector<Tensor*>& params, const std::vector<const Tensor*>& grads,
                     double lr) {
  check(params.size() == kinds_.size() && grads.size() == kinds_.size(), "optimizer",
        "parameter count changed");
  ++t_;
  const float flr = static_cast<float>(lr);
  const float mom = static_cast<float>(o_.momentum);
  const float b1 = static_cast<float>(o_.beta1), b2 = static_cast<float>(o_.beta2);
  // Bias corrections as PyTorch computes them (in double, applied in float).
  const double bc1 = 1 - std::pow(o_.beta1, static_cast<double>(t_));
  const double bc2_sqrt = std::sqrt(1 - std::pow(o_.beta2, static_cast<double>(t_)));
  const float step_size = static_cast<float>(lr / bc1);
  const float eps = static_cast<float>(o_.eps);
  for (size_t i = 0; i < params.size(); ++i) {
    if (!grads[i] || !grads[i]->defined()) continue;
    const Tensor& p = *params[i];
    const Tensor& gt = *grads[i];
    check(
        p.dtype() == DType::f32 && gt.dtype() == DType::f32 && gt.numel() == p.numel(), "optimizer",
        "gradient " + shape_str(gt.shape()) + " does not match parameter " + shape_str(p.shape()));
    const bool decays = o_.decay_all || kinds_[i] == ParamKind::weight;
    const float wd = decays ? static_cast<float>(o_.weight_decay) : 0.f;
    const int64_t n = p.numel();
    const bool fresh = !buf1_[i].defined();
    if (fresh) {
      buf1_[i] = Tensor(DType::f32, p.shape());
      if (o_.kind != OptimizerKind::sgd) buf2_[i] = Tensor(DType::f32, p.shape());
    }
    Tensor np(DType::f32, p.shape());
    const float* pp = p.data<float>();
    const float* g = gt.data<float>();
    float* q = np.data<float>();
    float* m = buf1_[i].data<float>();
    if (o_.kind == OptimizerKind::sgd) {
      const bool nest = o_.nesterov;
      const bool use_mom = o_.momentum > 0;
#pragma omp parallel for if (n > 65536)
      for (int64_t k = 0; k < n; ++k) {
        float d = g[k] + wd * pp[k];
        if (use_mom) {
          // PyTorch starts the buffer at the first gradient rather than decaying zero.
          m[k] = fresh ? d : mom * m[k] + d;
          d = nest ? d + mom * m[k] : m[k];
        }
        q[k] = pp[k] - flr * d;
      }
    } else {
      float* v = buf2_[i].data<float>();
      const bool decoupled = o_.kind == OptimizerKind::adamw;
      const float l2 = decoupled ? 0.f : wd;
      const float shrink = decoupled ? 1.f - flr * wd : 1.f;
#pragma omp parallel for if (n > 65536)
      for (int64_t k = 0; k < n; ++k) {
        const float d = g[k] + l2 * pp[k];
        m[k] = b1 * m[k] + (1 - b1) * d;
        v[k] = b2 * v[k] + (1 - b2) * d * d;
        const float denom = std::sqrt(v[k]) / static_cast<float>(bc2_sqrt) + eps;
        q[k] = pp[k] * shrink - step_size * m[k] / denom;
      }
    }
    *params[i] = std::move(np);
  }
}

}  // namespace mixq
