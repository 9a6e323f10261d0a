// What the commands that train share (mixq train, finetune, quantize --finetune): augmentation
// defaults for the data, progress lines, and Ctrl-C / SIGTERM as a graceful stop.
#pragma once
#include <atomic>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/data_args.h"
#include "data/dataset.h"
#include "train/trainer.h"

namespace mixq::cli {

// The training flags mixq train and mixq finetune share, with each command's defaults.
struct TrainFlags {
  int64_t epochs = 10;
  double lr = 0;  // 0: by the optimizer
  double min_lr = 0;
  std::string optimizer = "sgd";
  double momentum = 0.9;
  double wd = -1;  // negative: by the optimizer
  std::string schedule = "cosine";
  uint64_t seed = 0;
  bool augment = true;
  std::string checkpoint;
  double checkpoint_minutes = 10;
  bool resume = false;
  int64_t max_steps = 0;
};

// What a command's help says of the flags whose meaning differs between commands.
struct TrainFlagsHelp {
  std::string lr, wd, seed, augment;
};

// Declares the TrainFlags options on cmd: --epochs, --optimizer, --lr, --min-lr, --momentum,
// --wd, --schedule, --seed, --augment/--no-augment, --checkpoint, --checkpoint-minutes, --resume
// and --max-steps. A default is shown where it is a fixed value (lr > 0, wd >= 0).
void add_train_options(CLI::App* cmd, TrainFlags& f, const TrainFlagsHelp& help);

// Sets o's epochs, seed, optimizer, schedule, checkpointing and step limit from the flags; an lr
// of 0 and a negative wd become the optimizer's defaults (lr 0.1 for sgd, else 0.001; weight
// decay 5e-4 for sgd, 0.01 for adamw, 0 for adam). Augmentation is the caller's.
void apply_train_flags(const TrainFlags& f, TrainOptions& o);

// The labelled training data (`purpose` names it in the error when unlabelled) and, when
// val_spec is given, labelled validation data read with the same preprocessing.
struct TrainData {
  std::unique_ptr<Dataset> train, val;
};
TrainData open_train_data(const DataArgs& data, const std::string& val_spec,
                          const std::string& purpose);

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
