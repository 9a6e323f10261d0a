// Optimizers with PyTorch's update rules (so hyper-parameters carry over):
//   sgd    g = grad + wd * p;  buf = momentum * buf + g;  p -= lr * (nesterov ? g + momentum * buf
//          : buf)                                      (torch.optim.SGD, dampening 0)
//   adam   g = grad + wd * p;  m, v moving averages of g and g^2, bias-corrected;
//          p -= lr * m_hat / (sqrt(v_hat) + eps)       (torch.optim.Adam, L2 decay)
//   adamw  as adam without the L2 term, and p *= 1 - lr * wd first (torch.optim.AdamW)
// Weight decay applies to weights only unless decay_all (not to biases or BatchNormalization's
// scale and bias). Each step hands back updated parameters as new tensors: fast kernels cache
// forms derived from a weight by its storage, so a parameter is never written in place.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"
#include "train/params.h"

namespace mixq {

enum class OptimizerKind { sgd, adam, adamw };
OptimizerKind parse_optimizer(const std::string& name);  // Error for an unknown name
const char* optimizer_name(OptimizerKind k);

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::sgd;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0;
  bool decay_all = false;  // also decay biases and BatchNormalization parameters
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

class Optimizer {
 public:
  // One entry per parameter, in the order step() receives them.
  Optimizer(const OptimizerOptions& options, std::vector<ParamKind> kinds);

  // params[i] is replaced by its updated value (a new tensor); grads[i] nullptr or undefined:
  // that parameter has no gradient this step and is left alone (its state too).
  void step(const std::vector<Tensor*>& params, const std::vector<const Tensor*>& grads, double lr);

  const OptimizerOptions& options() const { return o_; }
  // Steps taken (Adam's bias correction counts them).
  int64_t steps() const { return t_; }
  void set_steps(int64_t t) { t_ = t; }
  // Per-parameter state for checkpoints: (suffix, tensor) pairs, e.g. ("momentum", buf).
  // Buffers are created at the first step, so a fresh optimizer lists none for a parameter.
  std::vector<std::pair<std::string, Tensor*>> state(size_t param);
  // Names of the state buffers this optimizer keeps per parameter.
  std::vector<std::string> state_names() const;

 private:
  OptimizerOptions o_;
  std::vector<ParamKind> kinds_;
  std::vector<Tensor> buf1_, buf2_;  // sgd: momentum; adam: first and second moments
  int64_t t_ = 0;
};

}  // namespace mixq
