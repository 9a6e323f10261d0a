// Quantization-aware fine-tuning of a model under a quantization config (`mixq finetune`).
//
// The training graph is the model with the config's activation quantizers inserted
// (mixq.FakeQuant, whose backward is the straight-through estimator); the weights of quantized
// layers are trained in float by one of two methods:
//   ste   the forward reads the fake-quantized weights (row scales refit by MSE every
//         `refit_every` steps), the gradient passes straight through to the float weights;
//   admm  the forward reads the float weights; the W-step adds rho (W - Z + U) to their gradient,
//         every `admm_every` steps Z = Proj_Q(W + U) and U += W - Z, and rho grows by
//         `rho_growth` (../shared/docs/ALGORITHMS.md section 2).
// Both end with a hard projection: result() holds the model whose quantized weights are their
// dequantized values (scales refit on the final weights) and the config with those scales, so
// apply_quant(result.model, result.config) is the fine-tuned network.
//
// Runs on Trainer (data, augmentation, optimizer, schedule, checkpoints) through its step hooks.
// Checkpoints add meta.qat {method, rho, refit_every, admm_every, layers} and tensors
// "qat:scale:<layer>" (row scales) and, for ADMM, "qat:z:<layer>" and "qat:u:<layer>"; a resumed
// run continues bit-identically.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/config.h"
#include "train/trainer.h"

namespace mixq {

enum class QatMethod { ste, admm };
QatMethod parse_qat_method(const std::string& name, const std::string& where);
const char* qat_method_name(QatMethod m);

struct QatOptions {
  QatMethod method = QatMethod::ste;
  TrainOptions train;        // its step hooks are QatTrainer's own
  int64_t refit_every = 10;  // ste: steps between MSE refits of the row scales (>= 1)
  int64_t admm_every = 0;    // admm: steps between Z/U updates; 0 = once per epoch
  double rho0 = 0.05;        // admm: initial penalty
  double rho_growth = 1.3;   // admm: rho *= this at every Z/U update
};

struct QatResult {
  Graph model;         // quantized layers' weights are their dequantized values
  QuantConfig config;  // scales refit on the final weights
};

class QatTrainer {
 public:
  // model: an inference graph as load_onnx returns it (BatchNormalization folded, nodes named);
  // where names the config in errors (a layer the model lacks, a row count that differs).
  QatTrainer(const Graph& model, const QuantConfig& config, QatOptions options,
             const std::string& where = "config");
  ~QatTrainer();
  QatTrainer(const QatTrainer&) = delete;
  QatTrainer& operator=(const QatTrainer&) = delete;

  // Trains (continuing from the checkpoint with options.train.resume). With val, each epoch's
  // summary carries the top-1 and loss of the projected network (result()) on it. Returns false
  // when stopped early.
  bool fit(const Dataset& train, const Dataset* val = nullptr);

  // The projected network at the current weights.
  QatResult result() const;

  double rho() const { return rho_; }
  const Trainer& trainer() const { return *trainer_; }
  Trainer& trainer() { return *trainer_; }

 private:
  struct Layer {
    std::string name;
    int value = -1;  // weight value id in the training graph
    int row_axis = 0;
    std::vector<RowQuant> rows;
    Tensor shadow;  // ste: the float weight during a step
    Tensor z, u;    // admm
  };
  void before_forward(std::vector<Tensor>& env, int64_t step);
  void before_update(std::vector<Tensor>& env, std::vector<Tensor>& genv);
  void after_update(std::vector<Tensor>& env, int64_t step);
  void save(Checkpoint& c) const;
  void restore(const Checkpoint& c, const std::string& where);
  void on_epoch(const EpochSummary& s);

  Graph base_;
  QuantConfig config_;
  QatOptions o_;
  std::vector<Layer> layers_;
  double rho_ = 0;
  int64_t admm_every_ = 1;
  const Dataset* val_ = nullptr;
  std::unique_ptr<Trainer> trainer_;
};

}  // namespace mixq
