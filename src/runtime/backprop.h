// Reverse-mode differentiation over an Executor's graph: the reverse pass that training, STE /
// ADMM quantization-aware training and Hessian estimates run after a forward pass.
#pragma once
#include <vector>

#include "runtime/executor.h"

namespace mixq {

class Backprop {
 public:
  // wrt: value ids whose gradients are wanted (trainable parameters, and inputs if asked).
  Backprop(Executor& ex, std::vector<int> wrt);

  // env: every value of a forward pass over the whole graph (Executor::run_range on it).
  // genv: one slot per value; the caller seeds the gradients of the loss's starting values
  // (for example the graph output); the pass accumulates into every slot that needs a gradient.
  void run(const std::vector<Tensor>& env, std::vector<Tensor>& genv);

  // Values that depend on a wrt value (their gradients are computed).
  const std::vector<bool>& needs_grad() const { return needs_; }

 private:
  Executor& ex_;
  std::vector<int> wrt_;
  std::vector<bool> needs_;
};

// out += x, elementwise (same shape); out taken over when empty.
void accumulate_grad(Tensor& out, Tensor x);

}  // namespace mixq
