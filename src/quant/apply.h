// Fake-quantized execution: a copy of the graph whose quantized layers read dequantized weights
// (computed once here) and whose data inputs pass through mixq.FakeQuant nodes.
#pragma once
#include <string>

#include "ir/graph.h"
#include "quant/config.h"
#include "quant/layers.h"

namespace mixq {

// How quantized weights appear in the graph:
//   dequantized  float constants holding the dequantized values (what mixq runs)
//   qdq          integer codes (int8 when every code fits, else int32) and per-row steps feeding
//                a DequantizeLinear along the row axis: the standard QDQ form other runtimes
//                and deployment tools read, a quarter of the size at 8 bits and below
//   int8         Conv layers whose input is unsigned (zero point 0) and whose codes fit int8
//                run as mixq.QConv: u8 activations x s8 weights, int32 sums (ops/qconv.cpp);
//                the rest as dequantized
enum class WeightForm { dequantized, qdq, int8 };

// A hash of the weights of the layers cfg quantizes, as g holds them: what
// QuantConfig::weights_hash records.
std::string config_weights_hash(const Graph& g, const QuantConfig& cfg);
// Refuses, naming `where`, a config whose weights_hash is not g's (the config was made for
// weights rounded or trained into another model; nearest rounding of g's would silently differ).
void check_config_weights(const Graph& g, const QuantConfig& cfg, const std::string& where);

// `where` names the config in errors (a layer the model lacks, a row count that differs).
Graph apply_quant(const Graph& g, const QuantConfig& cfg, const std::string& where = "config",
                  WeightForm form = WeightForm::dequantized);

// A FakeQuant node reading `input` and writing a new value; returns the new value id.
int add_fake_quant_node(Graph& g, int input, const ActQuant& q, const std::string& name);

// Average weight bits over the given layers (each row's bits weighted by its size); layers the
// config leaves in float count as 32 bits.
double average_weight_bits(const Graph& g, const QuantConfig& cfg,
                           const std::vector<QuantLayer>& layers);
// Weight storage in bytes of the whole model under the config (float weights at 4 bytes).
double weight_bytes(const Graph& g, const QuantConfig& cfg);

}  // namespace mixq
