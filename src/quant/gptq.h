// Error-compensating weight rounding (GPTQ, after OBQ): the input columns of a layer's weight are
// quantized one at a time, and each column's rounding error is pushed onto the columns not yet
// quantized, weighted by the inverse of the layer's input gram H (quant/input_gram.h), so that
// the layer's output on the calibration data moves as little as the grid allows. Each row keeps
// its own quantizer (scheme, bits and scale, fixed beforehand), so per-row, per-tensor and
// MSQ/RMSMP row mixes all work: a row's values always land on its own grid.
#pragma once
#include <vector>

#include "quant/input_gram.h"
#include "quant/quantizer.h"

namespace mixq {

struct GptqOptions {
  double damp = 0.01;   // added to H's diagonal, as a share of its mean
  int64_t block = 128;  // columns quantized between two updates of the rest (speed only)
};

// The dequantized weight: every row on its grid, with the rows and scales given. When `targets`
// is given it receives, in the weight's layout, the compensated value each weight was rounded
// from (learned rounding starts from there: quant/learned_rounding.h).
Tensor gptq_quantize_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                            const InputGram& gram, const GptqOptions& o = {},
                            Tensor* targets = nullptr);

// The same result computed plainly: one column at a time, the inverse of H restricted to the
// columns left updated explicitly after each (OBQ's update). For tests.
Tensor gptq_quantize_weight_reference(const Tensor& w, const std::vector<RowQuant>& rows,
                                      int row_axis, const InputGram& gram,
                                      const GptqOptions& o = {});

// sum over the gram's rows of the squared output change, (W - Q) H (W - Q)^T traced: what the
// compensation minimises. w and q in the weight's layout.
double output_error(const Tensor& w, const Tensor& q, int row_axis, const InputGram& gram);

}  // namespace mixq
