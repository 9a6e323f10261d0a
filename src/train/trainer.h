// The training loop: epochs of seeded shuffled batches, augmentation, a training-mode forward on
// an unoptimised executor, softmax cross-entropy, the reverse pass, an optimizer step with the
// scheduled learning rate, and BatchNormalization running statistics carried over from the
// training-mode outputs. Deterministic for a seed and a thread count. Checkpoints (see
// train/checkpoint.h) are written at the end of every epoch and every few minutes; a run resumed
// from one continues bit-identically.
//
// Checkpoint contents written by the trainer:
//   meta.format "mixq-train", meta.version 1
//   meta.position   {epoch, batch, step}: the next batch to run is `batch` of `epoch` (0-based),
//                   `step` optimizer steps were taken
//   meta.run        {seed, batch_size, samples, epochs, optimizer, parameters}: checked on resume
//   meta.epoch_sums {loss_sum, correct, seen}: the running metrics of the unfinished epoch
//   meta.elapsed_seconds
//   tensors "param:<value>" (parameters), "bn:<value>" (running statistics),
//           "opt:<value>:<buffer>" (momentum, adam_m, adam_v)
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "runtime/executor.h"
#include "train/augment.h"
#include "runtime/backprop.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/params.h"
#include "train/schedule.h"

namespace mixq {

struct BatchProgress {
  int64_t epoch = 0, epochs = 0;   // epoch is 0-based
  int64_t batch = 0, batches = 0;  // batches done in this epoch, of
  double loss = 0, accuracy = 0;   // running over the epoch
  double lr = 0;
  double images_per_s = 0;  // this session
};

struct EpochSummary {
  int64_t epoch = 0, epochs = 0;  // epoch is 0-based
  double loss = 0, accuracy = 0;  // training, over the epoch (augmented, training mode)
  std::optional<double> val_top1, val_loss;
  double lr = 0;       // at the last step of the epoch
  double seconds = 0;  // wall time of the epoch in this session (validation included)
  double images_per_s = 0;
};

// Hooks into every step, for quantization-aware training (src/qat); each one is optional.
// env and genv are the trainer's value and gradient environments (indexed by value id). A hook
// that changes a tensor hands over a new one (kernels cache forms derived from a weight).
struct StepHooks {
  // Before the forward pass (e.g. swap in fake-quantized weights). step: steps taken so far.
  std::function<void(std::vector<Tensor>& env, int64_t step)> before_forward;
  // After the reverse pass, before the optimizer step (e.g. restore the float weights, add a
  // penalty's gradient).
  std::function<void(std::vector<Tensor>& env, std::vector<Tensor>& genv, int64_t step)>
      before_update;
  // After the optimizer step; step counts it.
  std::function<void(std::vector<Tensor>& env, int64_t step)> after_update;
  // Extra state in checkpoints: add to a checkpoint being written, restore from one being read.
  std::function<void(Checkpoint& c)> save;
  std::function<void(const Checkpoint& c, const std::string& where)> restore;
};

struct TrainOptions {
  int64_t epochs = 10;
  size_t batch_size = 128;
  size_t limit = 0;  // first N training samples; 0 = all
  uint64_t seed = 0;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  AugmentOptions augment;
  size_t val_batch = 256;

  std::string checkpoint;          // file; empty = none
  double checkpoint_minutes = 10;  // also mid-epoch, at most this often; 0 = epoch ends only
  bool resume = false;             // continue from `checkpoint`

  // Stop after this many steps in this call (a checkpoint is written first); 0 = no limit.
  int64_t max_steps = 0;
  // Polled between batches (set it from a signal handler): save a checkpoint and stop.
  const std::atomic<bool>* stop = nullptr;

  std::function<void(const BatchProgress&)> on_batch;
  std::function<void(const EpochSummary&)> on_epoch;
  std::function<void(const std::string&)> on_message;
  StepHooks hooks;
};

class Trainer {
 public:
  // graph: a model in training form (built-in models, or make_training_form of an import) with
  // one input (NCHW images) and logits as its first output. Throws Error when an operator on the
  // path from a parameter to the output has no backward.
  Trainer(Graph graph, TrainOptions options);
  ~Trainer();

  // Trains to options.epochs (continuing from the checkpoint with options.resume). Returns false
  // when stopped early by max_steps or the stop flag. Throws Error when the data does not fit.
  bool fit(const Dataset& train, const Dataset* val = nullptr);

  // One optimizer step on a batch (no augmentation); returns the batch loss.
  double train_step(const Batch& batch, double lr);

  // The model with the current parameters, in inference form.
  Graph inference_graph(bool fold_bn = true) const;
  const Graph& graph() const { return graph_; }
  const Trainables& trainables() const { return trainables_; }
  // Current value of a parameter or running statistic by value name; Error when unknown.
  const Tensor& value(const std::string& name) const;
  int64_t steps() const { return step_; }
  int64_t epochs_done() const { return epoch_; }

  Checkpoint make_checkpoint(double elapsed_seconds) const;
  // Restores parameters, statistics, optimizer state and position; Error when the checkpoint
  // belongs to another model or run (seed, batch size, sample count, optimizer).
  void restore(const Checkpoint& c, const std::string& where, size_t samples);

 private:
  nlohmann::json run_identity(size_t samples) const;
  void save(double elapsed_seconds) const;

  Graph graph_;
  const Dataset* data_ = nullptr;  // during fit: named when a label does not fit the model
  TrainOptions o_;
  Trainables trainables_;
  std::unique_ptr<Executor> ex_;
  std::unique_ptr<Backprop> backprop_;
  std::unique_ptr<Optimizer> opt_;
  std::vector<Tensor> env_, genv_;
  int input_ = -1, output_ = -1;
  // Position: the next batch is batch_ of epoch_; step_ steps taken.
  int64_t epoch_ = 0, batch_ = 0, step_ = 0;
  double loss_sum_ = 0;
  int64_t correct_ = 0, seen_ = 0;
  double elapsed_before_ = 0;  // seconds spent before a resume
  size_t samples_ = 0;         // training samples per epoch (fit)
  // Content of the model as given and of the training data: a resume needs both unchanged.
  std::string model_hash_, data_hash_;
};

}  // namespace mixq
