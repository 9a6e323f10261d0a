// What the commands that train share (mixq train, finetune, quantize --finetune): augmentation
// defaults for the data, progress lines, and Ctrl-C / SIGTERM as a graceful stop.
#pragma once
#include <atomic>
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli/data_args.h"
#include "data/dataset.h"
#include "train/trainer.h"

namespace mixq::cli {

// Per-channel value of black after normalisation, (0 - mean) / std: the crop padding.
std::vector<float> black_fill(const DataArgs& d, int64_t channels);

// Random crops padded by the size's default, horizontal flips for 3-channel images only.
AugmentOptions default_augment(const DataArgs& d, const Shape& sample);

// Progress: an updating batch line on a terminal, one line per epoch on stdout. `val_label`
// names what the validation top-1 measures ("" or " (quantized)").
void set_progress(TrainOptions& o, const std::string& val_label);

// While alive, SIGINT and SIGTERM set the stop flag (a second signal ends the process).
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  static const std::atomic<bool>* flag();
  static bool stopped();

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

// Runs `fit` with StopOnSignal in force. When it stops before the end (a signal, or a budget of
// steps), prints where it stopped and how to continue, and returns the exit status: 130 after a
// signal, else 0. Returns nothing when training finished.
std::optional<int> fit_or_report_stop(const std::function<bool()>& fit, const Trainer& trainer,
                                      const std::string& checkpoint, const std::string& unwritten);

}  // namespace mixq::cli
