// Load-time graph passes that make an imported model runnable and fast for inference.
#pragma once
#include "ir/graph.h"

namespace mixq {

// Identity, and Dropout in inference mode, are replaced by their input.
int remove_identities(Graph& g);
// Evaluates every node whose inputs are all constants (shape computations as PyTorch exports
// them, Constant chains) with the reference kernels and stores the results as constants.
int fold_constants(Graph& g);
// Folds BatchNormalization into the Conv or Gemm that alone feeds it.
int fold_batchnorm(Graph& g);
// All of the above, then dead-node removal.
void run_default_passes(Graph& g);

}  // namespace mixq
