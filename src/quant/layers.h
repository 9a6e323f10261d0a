// Quantizable layers: Conv, Gemm and MatMul nodes whose weight is a constant.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace mixq {

struct QuantLayer {
  int node = -1;     // index in graph.nodes
  std::string name;  // node name (unique key in configs)
  std::string op_type;
  int weight = -1;      // value id of the constant weight
  int data_input = -1;  // value id of the activation input
  int row_axis = 0;     // axis of the weight holding output channels
  int64_t rows = 0;     // output channels
  int64_t weight_count = 0;
};

// In graph order. Node names must be unique among them (they are the configs' keys); unnamed
// nodes are named "<op>_<index>" by Graph::name_unnamed_nodes() first.
std::vector<QuantLayer> find_quant_layers(const Graph& g);

}  // namespace mixq
