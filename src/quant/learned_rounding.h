// Learned rounding (AdaRound, Nagel et al. 2020, on a layer's input gram): each weight chooses
// between the two grid levels around its compensated value (GPTQ's, quant/gptq.h), through a
// soft variable h in [0, 1] that gradient descent moves to lower the layer's output error
// e^T H e while an annealed regulariser drives every h to 0 or 1. It starts from GPTQ's
// solution and keeps it when learning does not lower the output error.
#pragma once
#include <vector>

#include "quant/gptq.h"

namespace mixq {

struct LearnedRoundingOptions {
  int iterations = 1000;
  double learning_rate = 0.03;  // Adam, on the soft variables' logits
  // Weight of the rounding regulariser against the output error (relative to GPTQ's). On
  // ResNet-20 W3, 10 beats 1 (too weak: a third of the weights undecided) and 100.
  double regularisation = 10;
  double warmup = 0.2;  // share of the iterations before the regulariser starts
  double beta_start = 20, beta_end = 2;
  int min_bits = 8;  // rows with at least this many bits keep GPTQ's rounding (it is exact enough)
};

// The dequantized weight, every row on its grid (the rows and scales given).
Tensor learned_quantize_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                               const InputGram& gram, const GptqOptions& gptq = {},
                               const LearnedRoundingOptions& o = {});

}  // namespace mixq
