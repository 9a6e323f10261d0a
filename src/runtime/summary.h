// Static facts about a model for `mixq inspect` and cost models: per-node shapes, parameters,
// multiply-accumulates and weight bytes, found by running one sample through the graph.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace mixq {

struct NodeSummary {
  std::string name;
  std::string op_type;
  std::vector<Shape> input_shapes;  // non-constant inputs
  Shape output_shape;               // first output
  int64_t params = 0;               // elements of constant inputs (weights, biases)
  int64_t weight_bytes = 0;
  int64_t macs = 0;  // per sample
  bool supported = true;
};

struct ModelSummary {
  std::vector<NodeSummary> nodes;
  std::vector<std::string> unsupported;  // op types with no implementation
  bool shapes_known = false;             // false when the graph could not be run
  int64_t params = 0, weight_bytes = 0, macs = 0;
};

// MACs of one Conv / ConvTranspose / Gemm / MatMul given its input and output shapes (batch
// included); 0 for other ops.
int64_t node_macs(const Node& node, const std::vector<Shape>& inputs, const Shape& output);

// Runs a zero sample (batch 1, dynamic dims set to 1) to find shapes when every op is supported.
ModelSummary summarize(const Graph& g);

}  // namespace mixq
