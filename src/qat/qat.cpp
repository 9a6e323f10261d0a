#include "qat/qat.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "base/error.h"
#include "eval/evaluate.h"
#include "qat/project.h"
#include "quant/apply.h"
#include "quant/layers.h"
#include "train/params.h"

namespace mixq {
namespace {

Tensor row_scales(const std::vector<RowQuant>& rows) {
  Tensor t(DType::f32, {static_cast<int64_t>(rows.size())});
  for (size_t r = 0; r < rows.size(); ++r) t.data<float>()[r] = rows[r].scale;
  return t;
}

}  // namespace

QatMethod parse_qat_method(const std::string& name, const std::string& where) {
  if (name == "ste") return QatMethod::ste;
  if (name == "admm") return QatMethod::admm;
  throw Error(where, "unknown method '" + name + "' (ste or admm)");
}

const char* qat_method_name(QatMethod m) {
  return m == QatMethod::ste ? "ste" : "admm";
}

QatTrainer::QatTrainer(const Graph& model, const QuantConfig& config, QatOptions options,
                       const std::string& where)
    : base_(model), config_(config), o_(std::move(options)) {
  check(o_.refit_every >= 1, "--refit-every", "must be at least 1");
  check(o_.admm_every >= 0, "--admm-every", "must not be negative");
  check(o_.rho0 > 0, "--rho", "must be positive");
  check(o_.rho_growth >= 1, "--rho-growth", "must be at least 1");
  check_config_weights(base_, config_, where);
  config_.weights_hash.clear();  // the weights move: result() hashes the trained ones
  std::map<std::string, QuantLayer> by_name;
  for (const QuantLayer& l : find_quant_layers(base_)) by_name[l.name] = l;
  // The training graph quantizes activations only; quantized weights are handled by the hooks.
  QuantConfig acts = config_;
  for (LayerConfig& lc : acts.layers) {
    auto it = by_name.find(lc.name);
    check(it != by_name.end(), where,
          "layer '" + lc.name + "' is not a quantizable layer of " + base_.source);
    const QuantLayer& l = it->second;
    if (!lc.rows.empty()) {
      check(static_cast<int64_t>(lc.rows.size()) == l.rows, where,
            "layer '" + lc.name + "' has " + std::to_string(l.rows) + " rows, config gives " +
                std::to_string(lc.rows.size()));
      Layer q;
      q.name = lc.name;
      q.value = l.weight;  // an id in base_ until the training graph is built
      q.row_axis = l.row_axis;
      q.rows = lc.rows;
      layers_.push_back(std::move(q));
    }
    lc.rows.clear();
  }
  Graph tg = apply_quant(base_, acts, where);
  make_training_form(tg);
  for (Layer& q : layers_) {
    const std::string& wname = base_.values[q.value].name;
    q.value = tg.find_value(wname);
    check(tg.is_constant(q.value), where, "weight '" + wname + "' of '" + q.name + "' is lost");
  }
  rho_ = o_.rho0;

  TrainOptions to = o_.train;
  if (o_.method == QatMethod::ste)
    to.hooks.before_forward = [this](std::vector<Tensor>& env, int64_t step) {
      before_forward(env, step);
    };
  to.hooks.before_update = [this](std::vector<Tensor>& env, std::vector<Tensor>& genv, int64_t) {
    before_update(env, genv);
  };
  if (o_.method == QatMethod::admm)
    to.hooks.after_update = [this](std::vector<Tensor>& env, int64_t step) {
      after_update(env, step);
    };
  to.hooks.save = [this](Checkpoint& c) { save(c); };
  to.hooks.restore = [this](const Checkpoint& c, const std::string& w) { restore(c, w); };
  to.on_epoch = [this](const EpochSummary& s) { on_epoch(s); };
  trainer_ = std::make_unique<Trainer>(std::move(tg), to);

  std::vector<bool> trained(trainer_->graph().values.size(), false);
  for (const Param& p : trainer_->trainables().params) trained[p.value] = true;
  for (Layer& q : layers_) {
    check(trained[q.value], where, "the weight of '" + q.name + "' is not trainable");
    if (o_.method == QatMethod::admm) {
      const Tensor& w = trainer_->value(trainer_->graph().values[q.value].name);
      q.z = project_rows(w, q.rows, q.row_axis, true);
      q.u = Tensor(DType::f32, w.shape());  // zeros
    }
  }
}

QatTrainer::~QatTrainer() = default;

void QatTrainer::before_forward(std::vector<Tensor>& env, int64_t step) {
  for (Layer& q : layers_) {
    q.shadow = env[q.value];
    if (step % o_.refit_every == 0)
      choose_row_scales(q.shadow, q.rows, ScaleMethod::mse, q.row_axis);
    env[q.value] = fake_quantize_weight(q.shadow, q.rows, q.row_axis);
  }
}

void QatTrainer::before_update(std::vector<Tensor>& env, std::vector<Tensor>& genv) {
  for (Layer& q : layers_) {
    if (o_.method == QatMethod::ste) {
      // Straight through: the gradient at the quantized weight updates the float weight.
      env[q.value] = std::move(q.shadow);
      q.shadow = Tensor();
    } else {
      genv[q.value] = admm_penalty_grad(genv[q.value], env[q.value], q.z, q.u, rho_);
    }
  }
}

void QatTrainer::after_update(std::vector<Tensor>& env, int64_t step) {
  if (step % admm_every_ != 0) return;
  for (Layer& q : layers_) admm_zu_step(env[q.value], q.z, q.u, q.rows, q.row_axis);
  rho_ *= o_.rho_growth;
}

void QatTrainer::save(Checkpoint& c) const {
  c.meta["qat"] = {{"method", qat_method_name(o_.method)},
                   {"rho", rho_},
                   {"refit_every", o_.refit_every},
                   {"admm_every", admm_every_},
                   {"layers", layers_.size()}};
  for (const Layer& q : layers_) {
    c.add("qat:scale:" + q.name, row_scales(q.rows));
    if (o_.method == QatMethod::admm) {
      c.add("qat:z:" + q.name, q.z);
      c.add("qat:u:" + q.name, q.u);
    }
  }
}

void QatTrainer::restore(const Checkpoint& c, const std::string& where) {
  check(c.meta.contains("qat"), where, "is not a fine-tuning checkpoint (mixq finetune)");
  const nlohmann::json& m = c.meta.at("qat");
  const nlohmann::json want = {{"method", qat_method_name(o_.method)},
                               {"refit_every", o_.refit_every},
                               {"admm_every", admm_every_},
                               {"layers", layers_.size()}};
  for (auto& [key, value] : want.items())
    check(m.at(key) == value, where,
          "was written by a different run: " + key + " " + m.at(key).dump() + ", now " +
              value.dump());
  rho_ = m.at("rho").get<double>();
  auto load = [&](const std::string& name, const Shape& shape) {
    const Tensor* t = c.find(name);
    check(t && t->dtype() == DType::f32 && t->shape() == shape, where,
          "does not match the config: '" + name + "' " +
              (t ? "has shape " + shape_str(t->shape()) : std::string("is missing")));
    return t->clone();
  };
  for (Layer& q : layers_) {
    const Tensor s = load("qat:scale:" + q.name, {static_cast<int64_t>(q.rows.size())});
    for (size_t r = 0; r < q.rows.size(); ++r) q.rows[r].scale = s.data<float>()[r];
    if (o_.method == QatMethod::admm) {
      const Shape& shape = trainer_->value(trainer_->graph().values[q.value].name).shape();
      q.z = load("qat:z:" + q.name, shape);
      q.u = load("qat:u:" + q.name, shape);
    }
  }
}

bool QatTrainer::fit(const Dataset& train, const Dataset* val) {
  val_ = val;
  const TrainOptions& t = o_.train;
  const size_t samples = t.limit > 0 ? std::min(t.limit, train.size()) : train.size();
  const int64_t per_epoch =
      std::max<int64_t>(1, static_cast<int64_t>((samples + t.batch_size - 1) / t.batch_size));
  admm_every_ = o_.admm_every > 0 ? o_.admm_every : per_epoch;
  return trainer_->fit(train, nullptr);
}

QatResult QatTrainer::result() const {
  QatResult r{base_, config_};
  const Graph& tg = trainer_->graph();
  auto take = [&](int v) {
    const std::string& name = tg.values[v].name;
    const int b = r.model.find_value(name);
    if (b >= 0 && r.model.is_constant(b)) r.model.values[b].constant = trainer_->value(name);
  };
  for (const Param& p : trainer_->trainables().params) take(p.value);
  for (const BnStats& s : trainer_->trainables().bn) take(s.mean_in), take(s.var_in);
  for (const Layer& q : layers_) {
    const int b = r.model.find_value(tg.values[q.value].name);
    std::vector<RowQuant> rows = q.rows;
    Tensor w = project_rows(r.model.constant(b), rows, q.row_axis, true);
    r.model.values[b].constant = std::move(w);
    r.config.find(q.name)->rows = std::move(rows);
  }
  r.config.info["finetune"] = {{"method", qat_method_name(o_.method)},
                               {"steps", trainer_->steps()},
                               {"epochs", trainer_->epochs_done()}};
  r.config.weights_hash = config_weights_hash(r.model, r.config);
  return r;
}

void QatTrainer::on_epoch(const EpochSummary& s) {
  EpochSummary e = s;
  if (val_) {
    const auto t0 = std::chrono::steady_clock::now();
    const QatResult r = result();
    Executor ex(apply_quant(r.model, r.config), Impl::fast, /*optimize=*/true);
    EvalOptions eo;
    eo.batch_size = o_.train.val_batch;
    const EvalResult v = evaluate(ex, *val_, eo);
    e.val_top1 = v.top1;
    e.val_loss = v.loss;
    e.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (o_.train.on_epoch) o_.train.on_epoch(e);
}

}  // namespace mixq
