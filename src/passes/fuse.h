// Inference-only fusion: Conv followed by Relu, and Conv followed by a residual Add (then
// optionally Relu), become one Conv carrying internal attributes the conv kernels understand:
//   mixq_activation = "Relu"   apply relu to the result
//   mixq_sum = 1               inputs[3] is added to the result before the activation
// The fused graph is not exported; it is what the optimising executor runs.
#pragma once
#include "ir/graph.h"
#include "passes/shape_info.h"

namespace mixq {

// Returns the number of nodes removed. The graph stays topologically sorted, and value ids keep
// their meaning (values fused away are left in the table, produced by nothing), so callers may
// keep indexing values of the graph they started from. An Add is fused only when `shapes` shows
// its two operands have the same shape at every batch size (no broadcasting).
int fuse_conv_activations(Graph& g, const ShapeInfo& shapes);

}  // namespace mixq
