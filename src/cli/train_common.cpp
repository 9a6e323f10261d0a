#include "cli/train_common.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "cli/commands.h"
#include "cli/validators.h"
#include "data/model_inputs.h"

namespace mixq::cli {
namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

}  // namespace

void add_train_options(CLI::App* cmd, TrainFlags& f, const TrainFlagsHelp& help) {
  cmd->add_option("--epochs", f.epochs, "Epochs")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  cmd->add_option("--optimizer", f.optimizer, "sgd, adam or adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  auto* lr = cmd->add_option("--lr", f.lr, help.lr)->check(CLI::PositiveNumber);
  if (f.lr > 0) lr->capture_default_str();
  cmd->add_option("--min-lr", f.min_lr, "Cosine: final learning rate")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--momentum", f.momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  auto* wd = cmd->add_option("--wd", f.wd, help.wd)->check(CLI::Range(0.0, 1.0));
  if (f.wd >= 0) wd->capture_default_str();
  cmd->add_option("--schedule", f.schedule, "Learning rate: constant, step or cosine")
      ->check(CLI::IsMember({"constant", "step", "cosine"}))
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, help.seed)->capture_default_str();
  cmd->add_flag("--augment,!--no-augment", f.augment, help.augment);
  cmd->add_option("--checkpoint", f.checkpoint,
                  "Checkpoint file, written after every epoch and every --checkpoint-minutes")
      ->type_name(kFileType);
  cmd->add_option("--checkpoint-minutes", f.checkpoint_minutes,
                  "Also checkpoint mid-epoch this often (0: epoch ends only)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_flag("--resume", f.resume, "Continue from --checkpoint");
  cmd->add_option("--max-steps", f.max_steps,
                  "Stop after this many steps in this run, with a checkpoint (0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
}

void apply_train_flags(const TrainFlags& f, TrainOptions& o) {
  o.epochs = f.epochs;
  o.seed = f.seed;
  o.optimizer.kind = parse_optimizer(f.optimizer);
  const bool sgd = o.optimizer.kind == OptimizerKind::sgd;
  o.optimizer.momentum = f.momentum;
  o.optimizer.weight_decay = f.wd >= 0 ? f.wd
                                       : (sgd                                        ? 5e-4
                                          : o.optimizer.kind == OptimizerKind::adamw ? 1e-2
                                                                                     : 0);
  o.schedule.kind = parse_schedule(f.schedule);
  o.schedule.lr = f.lr > 0 ? f.lr : (sgd ? 0.1 : 1e-3);
  o.schedule.min_lr = f.min_lr;
  o.checkpoint = f.checkpoint;
  o.checkpoint_minutes = f.checkpoint_minutes;
  o.resume = f.resume;
  o.max_steps = f.max_steps;
}

TrainData open_train_data(const DataArgs& data, const std::string& val_spec,
                          const std::string& purpose) {
  TrainData d;
  d.train = open_data(data);
  require_labels(*d.train, purpose);
  if (!val_spec.empty()) {
    DataArgs v = data;
    v.spec = val_spec;
    d.val = open_data(v);
    require_labels(*d.val, "validation");
  }
  return d;
}

std::vector<float> black_fill(const DataArgs& d, int64_t channels) {
  const std::vector<float> mean =
      d.mean.empty() ? std::vector<float>{0.f} : parse_float_list(d.mean, "--mean");
  const std::vector<float> sd =
      d.std.empty() ? std::vector<float>{1.f} : parse_float_list(d.std, "--std");
  std::vector<float> fill(channels);
  for (int64_t c = 0; c < channels; ++c)
    fill[c] = -mean[std::min<size_t>(c, mean.size() - 1)] / sd[std::min<size_t>(c, sd.size() - 1)];
  return fill;
}

AugmentOptions default_augment(const DataArgs& d, const Shape& sample) {
  AugmentOptions a;
  a.pad = default_crop_pad(sample[1], sample[2]);
  a.flip = sample[0] == 3;
  a.fill = black_fill(d, sample[0]);
  return a;
}

void set_progress(TrainOptions& o, const std::string& val_label) {
  const bool tty = stderr_is_tty();
  if (tty)
    o.on_batch = [](const BatchProgress& p) {
      std::cerr << fmt::format(
                       "\repoch {}/{}  batch {}/{}  loss {:.4f}  acc {:.2f} %  {:.0f} img/s ",
                       p.epoch + 1, p.epochs, p.batch, p.batches, p.loss, p.accuracy * 100,
                       p.images_per_s)
                << std::flush;
    };
  o.on_epoch = [tty, val_label](const EpochSummary& s) {
    if (tty) std::cerr << "\r\033[K" << std::flush;
    const std::string val =
        s.val_top1 ? fmt::format("  val top-1 {:.2f} %{}", *s.val_top1 * 100, val_label) : "";
    std::cout << fmt::format(
                     "epoch {:>3}/{}  loss {:.4f}  train top-1 {:.2f} %{}  lr {:.4g}  "
                     "{:.0f} img/s  {:.1f} s\n",
                     s.epoch + 1, s.epochs, s.loss, s.accuracy * 100, val, s.lr, s.images_per_s,
                     s.seconds)
              << std::flush;
  };
  o.on_message = [](const std::string& m) { std::cout << m << "\n" << std::flush; };
}

StopOnSignal::StopOnSignal() {
  g_stop.store(false);
  old_int_ = std::signal(SIGINT, on_stop_signal);
  old_term_ = std::signal(SIGTERM, on_stop_signal);
}

StopOnSignal::~StopOnSignal() {
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
}

const std::atomic<bool>* StopOnSignal::flag() {
  return &g_stop;
}

bool StopOnSignal::stopped() {
  return g_stop.load();
}

std::optional<int> fit_or_report_stop(const std::function<bool()>& fit, const Trainer& trainer,
                                      const std::string& checkpoint, const std::string& unwritten) {
  bool done = false;
  {
    StopOnSignal guard;
    done = fit();
  }
  if (done) return std::nullopt;
  std::cout << fmt::format(
      "stopped at epoch {}, step {}{}; {} written\n", trainer.epochs_done() + 1, trainer.steps(),
      checkpoint.empty() ? " (give --checkpoint to be able to resume)"
                         : "; checkpoint " + checkpoint + " (continue with --resume)",
      unwritten);
  return StopOnSignal::stopped() ? 130 : 0;
}

}  // namespace mixq::cli
