// Fake-quantized execution: a copy of the graph whose quantized layers read dequantized weights
// (computed once here) and whose data inputs pass through mixq.FakeQuant nodes.
#pragma once
#include <string>

#include "ir/graph.h"
#include "quant/config.h"
#include "quant/layers.h"

namespace mixq {

// `where` names the config in errors (a layer the model lacks, a row count that differs).
Graph apply_quant(const Graph& g, const QuantConfig& cfg, const std::string& where = "config");

// A FakeQuant node reading `input` and writing a new value; returns the new value id.
int add_fake_quant_node(Graph& g, int input, const ActQuant& q, const std::string& name);

// Average weight bits over the given layers (each row's bits weighted by its size); layers the
// config leaves in float count as 32 bits.
double average_weight_bits(const Graph& g, const QuantConfig& cfg,
                           const std::vector<QuantLayer>& layers);
// Weight storage in bytes of the whole model under the config (float weights at 4 bytes).
double weight_bytes(const Graph& g, const QuantConfig& cfg);

}  // namespace mixq
