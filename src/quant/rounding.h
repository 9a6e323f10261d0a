// How quantized weights are rounded onto their grids: to the nearest level, or with the rounding
// error compensated across each row's inputs (quant/gptq.h). The rows' quantizers (scheme, bits,
// scale) are the same either way; compensated weights are stored in the model at their
// dequantized values, where nearest rounding with the same config reproduces them exactly.
#pragma once
#include <string>

#include "quant/config.h"
#include "quant/gptq.h"

namespace mixq {

enum class Rounding { nearest, gptq };

const char* rounding_name(Rounding r);
// "nearest" or "gptq"; an error naming `where` otherwise.
Rounding parse_rounding(const std::string& text, const std::string& where);
// The names, comma-separated (for help texts and errors).
std::string rounding_names();

// One layer's quantized weight. gram is needed (and used) only for Rounding::gptq.
Tensor round_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                    Rounding rounding, const InputGram* gram, const GptqOptions& o = {});

// A copy of g whose quantized layers (those cfg gives weight rows) hold their rounded weights
// at the dequantized values. Every such layer needs a gram for Rounding::gptq.
Graph round_weights(const Graph& g, const QuantConfig& cfg, Rounding rounding,
                    const InputGrams& grams, const GptqOptions& o = {});

}  // namespace mixq
