#include "qat/finetune.h"

#include <utility>

namespace mixq {

QatOptions ste_recipe(int64_t epochs) {
  QatOptions q;
  q.method = QatMethod::ste;
  TrainOptions& o = q.train;
  o.epochs = epochs;
  o.batch_size = 128;
  o.optimizer.kind = OptimizerKind::sgd;
  o.optimizer.momentum = 0.9;
  o.optimizer.weight_decay = 1e-4;
  o.schedule.kind = ScheduleKind::cosine;
  o.schedule.lr = 0.001;
  return q;
}

bool ste_finetune(Graph& g, QuantConfig& cfg, const Dataset& train, const QatOptions& o,
                  const std::string& where) {
  QatTrainer qat(g, cfg, o, where);
  if (!qat.fit(train)) return false;
  QatResult r = qat.result();
  g = std::move(r.model);
  r.config.info = cfg.info;
  r.config.info["finetune"] = {{"method", qat_method_name(o.method)}, {"epochs", o.train.epochs}};
  cfg = std::move(r.config);
  return true;
}

}  // namespace mixq
