// Softmax cross-entropy, the one definition evaluation, sensitivity, training and Hessian
// estimates share: per row, and over a batch of logits with the gradient the reverse pass starts
// from.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mixq {

// log(sum_c exp(row[c])), in double, stable for any finite row.
double log_sum_exp(const float* row, int64_t k);

// -log softmax(row)[label].
inline double row_cross_entropy(const float* row, int64_t k, int64_t label) {
  return log_sum_exp(row, k) - row[label];
}

struct LossResult {
  double loss = 0;     // mean over the batch
  size_t correct = 0;  // samples no class outscores the label on (as eval's top-1 counts)
};

// logits: f32 [n, classes] (trailing dims of size 1 allowed); labels: n class indices.
// grad (when not null) receives dloss/dlogits = (softmax(logits) - onehot(label)) / n, shaped
// like logits. Throws Error(where, ...) on a label out of range or a shape that does not fit.
LossResult softmax_cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels,
                                 Tensor* grad, const std::string& where = "loss");

}  // namespace mixq
