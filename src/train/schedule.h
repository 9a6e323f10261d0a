// Learning-rate schedules, evaluated per optimizer step so a run resumed mid-epoch follows the
// same curve. Time is measured in epochs (step / steps_per_epoch, fractional):
//   constant  lr
//   step      lr * gamma^floor(t / step_epochs)
//   cosine    min_lr + (lr - min_lr) * (1 + cos(pi * t' / T')) / 2, t' and T' counted after the
//             warm-up, reaching min_lr at the end of the last epoch
// Optional linear warm-up over the first warmup_epochs: lr * (step + 1) / warmup_steps (it
// replaces the schedule there and never starts at zero).
#pragma once
#include <cstdint>
#include <string>

namespace mixq {

enum class ScheduleKind { constant, step, cosine };
ScheduleKind parse_schedule(const std::string& name);  // Error for an unknown name
const char* schedule_name(ScheduleKind k);

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::cosine;
  double lr = 0.1;
  double min_lr = 0;         // cosine floor
  double step_epochs = 30;   // step: decay every this many epochs
  double gamma = 0.1;        // step: factor per decay
  double warmup_epochs = 0;  // linear warm-up length (may be fractional)
};

class LrSchedule {
 public:
  // Throws Error for inconsistent options (non-positive lr, gamma, ...).
  LrSchedule(const ScheduleOptions& o, int64_t steps_per_epoch, int64_t epochs);
  // Learning rate of optimizer step `step` (0-based, counted over the whole run).
  double at(int64_t step) const;
  int64_t total_steps() const { return total_; }

 private:
  ScheduleOptions o_;
  int64_t per_epoch_, total_, warmup_;
};

}  // namespace mixq
