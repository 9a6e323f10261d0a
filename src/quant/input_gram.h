// The second moment of each quantizable layer's inputs, H = X^T X over the rows X the layer's
// weight rows multiply (Gemm/MatMul: the input rows; Conv: every window of the input, one per
// group). Error-compensating rounding (quant/gptq.h) weighs a weight error e by e^T H e: the
// squared change of the layer's output on the calibration data.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/layers.h"
#include "tensor/tensor.h"

namespace mixq {

struct InputGram {
  int64_t k = 0;          // inputs per weight row (Conv: Ci/group x kernel size)
  int64_t groups = 1;     // Conv groups: rows of group i see only their own inputs
  std::vector<double> h;  // groups x k x k, row-major, both triangles filled
  double rows = 0;        // input rows summed into h

  const double* group(int64_t i) const { return h.data() + i * k * k; }
};
using InputGrams = std::map<std::string, InputGram>;

// An empty gram shaped for layer l of g.
InputGram make_input_gram(const Graph& g, const QuantLayer& l);
// Adds the rows of one batch of the layer's data input x (channels-first, as ONNX has it).
void accumulate_input_gram(const Graph& g, const QuantLayer& l, const Tensor& x, InputGram& gram);
// The same for the layer's input x in one model and y in another, on the same samples: adds
// X^T X to xx and X^T Y to xy (not symmetric; both shaped by make_input_gram).
void accumulate_cross_gram(const Graph& g, const QuantLayer& l, const Tensor& x, const Tensor& y,
                           InputGram& xx, InputGram& xy);

}  // namespace mixq
