#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace mixq {

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "step") return ScheduleKind::step;
  if (name == "cosine") return ScheduleKind::cosine;
  throw Error("--schedule", "unknown schedule '" + name + "' (constant, step, cosine)");
}

const char* schedule_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::constant:
      return "constant";
    case ScheduleKind::step:
      return "step";
    case ScheduleKind::cosine:
      return "cosine";
  }
  return "?";
}

LrSchedule::LrSchedule(const ScheduleOptions& o, int64_t steps_per_epoch, int64_t epochs)
    : o_(o), per_epoch_(std::max<int64_t>(steps_per_epoch, 1)) {
  check(o.lr > 0 && std::isfinite(o.lr), "--lr", "must be a positive number");
  check(o.min_lr >= 0 && o.min_lr <= o.lr, "--min-lr", "must be in [0, lr]");
  check(o.step_epochs > 0, "--step-epochs", "must be positive");
  check(o.gamma > 0, "--gamma", "must be positive");
  check(o.warmup_epochs >= 0, "--warmup", "must be non-negative");
  total_ = per_epoch_ * std::max<int64_t>(epochs, 1);
  warmup_ =
      std::min<int64_t>(static_cast<int64_t>(std::llround(o.warmup_epochs * per_epoch_)), total_);
}

double LrSchedule::at(int64_t step) const {
  step = std::max<int64_t>(step, 0);
  if (step < warmup_) return o_.lr * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  switch (o_.kind) {
    case ScheduleKind::constant:
      return o_.lr;
    case ScheduleKind::step: {
      const double epoch = static_cast<double>(step) / static_cast<double>(per_epoch_);
      return o_.lr * std::pow(o_.gamma, std::floor(epoch / o_.step_epochs + 1e-9));
    }
    case ScheduleKind::cosine: {
      const double span = static_cast<double>(std::max<int64_t>(total_ - warmup_, 1));
      const double t = std::min(static_cast<double>(step - warmup_) / span, 1.0);
      return o_.min_lr + (o_.lr - o_.min_lr) * 0.5 * (1 + std::cos(M_PI * t));
    }
  }
  return o_.lr;
}

}  // namespace mixq
