// What training changes in a graph: the trainable parameters (float constants feeding Conv, Gemm
// and MatMul weights and biases, BatchNormalization scale and bias) and the BatchNormalization
// running statistics (state, not trained). A graph is in training form when every
// BatchNormalization writes its updated running statistics to outputs 1 and 2; the inference form
// drops those outputs (and can fold BatchNormalization into the Conv before it).
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace mixq {

enum class ParamKind { weight, bias, bn_scale, bn_bias };
const char* param_kind_name(ParamKind k);

struct Param {
  int value = -1;  // value id of the constant
  ParamKind kind = ParamKind::weight;
  const std::string& name(const Graph& g) const { return g.values[value].name; }
};

// One BatchNormalization's running statistics: read from mean_in/var_in (constants), written
// by the training-mode forward to mean_out/var_out.
struct BnStats {
  int node = -1;
  int mean_in = -1, var_in = -1, mean_out = -1, var_out = -1;
};

struct Trainables {
  std::vector<Param> params;  // graph order, each value once
  std::vector<BnStats> bn;
};

// Gives every BatchNormalization running-statistics outputs (training form). Nodes already in
// that form are left alone. Throws Error for a BatchNormalization whose statistics are not
// per-channel float constants.
void make_training_form(Graph& g);
// The parameters and statistics of a graph in training form.
Trainables find_trainables(const Graph& g);
// Number of trainable scalars (running statistics excluded).
int64_t count_parameters(const Graph& g);

// The inference form of a training graph, with the constants of `env` (one tensor per value, as
// the training environment holds them) for parameters and running statistics. With fold_bn,
// BatchNormalization is folded into the Conv or Gemm before it. Dead values are removed.
Graph inference_graph(const Graph& training, const std::vector<Tensor>& env, bool fold_bn);

}  // namespace mixq
