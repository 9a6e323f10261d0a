// Layer lists for the FPGA model: built from an architecture's shapes alone (no weights), or
// read from a graph; and the row splits a quantization config gives them.
#pragma once
#include <string>
#include <vector>

#include "hw/fpga.h"
#include "ir/graph.h"
#include "quant/config.h"

namespace mixq::hw {

// torchvision ResNet-18 on 224x224 ImageNet inputs: conv1, the 16 block convolutions, the
// three 1x1 downsample convolutions and fc, named as torchvision names them (1.814 GMACs).
std::vector<LayerShape> resnet18_layers();
// Architectures known by name ("resnet18"); Error naming `where` otherwise.
std::vector<LayerShape> arch_layers(const std::string& arch, const std::string& where);
std::vector<std::string> arch_names();

// The Conv / Gemm / MatMul layers with constant weights (quant/layers.h), with shapes and MACs
// per sample found by running one zero sample (runtime/summary.h). Error naming the graph's
// source when the shapes cannot be found.
std::vector<LayerShape> layers_from_graph(const Graph& g);

// Row splits from a config: fixed rows at <= 4 bits, fixed rows at 5..8 bits, SP2/PoT rows.
// A layer the config leaves float (absent or no rows) is costed as 8-bit fixed and counted in
// *float_layers. Error naming `where` when a layer's row count differs from the model's.
std::vector<RowSplit> splits_from_config(const std::vector<LayerShape>& layers,
                                         const QuantConfig& cfg, const std::string& where,
                                         int* float_layers = nullptr);

}  // namespace mixq::hw
