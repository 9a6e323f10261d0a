// Inference-only fusion: Conv (or the integer mixq.QConv) followed by Relu, and followed by a
// residual Add (then optionally Relu), become one node carrying internal attributes its
// kernels understand:
//   mixq_activation = "Relu"   apply relu to the result
//   mixq_sum = 1               inputs[fused_sum_input(n)] is added before the activation
//                              (3 for Conv, after X, W, B; 4 for QConv, after x, codes, step, bias)
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

// The convolutions the fusion applies to, and where each keeps its fused sum.
bool is_fusable_conv(const Node& n);
int fused_sum_input(const Node& n);

}  // namespace mixq
