#include "runtime/loss.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace mixq {

namespace {

// sum_c exp(row[c] - m), in double.
double shifted_exp_sum(const float* row, int64_t k, float m) {
  double z = 0;
  for (int64_t c = 0; c < k; ++c) z += std::exp(static_cast<double>(row[c]) - m);
  return z;
}

}  // namespace

double log_sum_exp(const float* row, int64_t k) {
  const float m = *std::max_element(row, row + k);
  return std::log(shifted_exp_sum(row, k, m)) + m;
}

LossResult softmax_cross_entropy(const Tensor& logits, const std::vector<int64_t>& labels,
                                 Tensor* grad, const std::string& where) {
  check(logits.dtype() == DType::f32, where, "logits must be float32");
  check(logits.rank() >= 2 && logits.dim(0) == static_cast<int64_t>(labels.size()), where,
        "logits " + shape_str(logits.shape()) + " do not hold one row per sample (" +
            std::to_string(labels.size()) + " labels)");
  const int64_t n = logits.dim(0);
  const int64_t k = n ? logits.numel() / n : 0;
  check(k >= 1, where, "logits have no classes");
  const float* z = logits.data<float>();
  float* g = nullptr;
  if (grad) {
    ensure(*grad, DType::f32, logits.shape());
    g = grad->data<float>();
  }
  LossResult r;
  double total = 0;
  // Rows in double: the loss is summed over the batch in a fixed order (deterministic).
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = labels[i];
    check(y >= 0 && y < k, where,
          "label " + std::to_string(y) + " outside the model's " + std::to_string(k) + " outputs");
    const float* row = z + i * k;
    const float m = *std::max_element(row, row + k);
    const double sum = shifted_exp_sum(row, k, m);
    total += std::log(sum) + m - row[y];
    int64_t higher = 0;
    for (int64_t c = 0; c < k; ++c) higher += row[c] > row[y];
    r.correct += higher == 0;
    if (g) {
      const double inv = 1.0 / (sum * static_cast<double>(n));
      for (int64_t c = 0; c < k; ++c)
        g[i * k + c] = static_cast<float>(std::exp(static_cast<double>(row[c]) - m) * inv -
                                          (c == y ? 1.0 / n : 0.0));
    }
  }
  r.loss = n ? total / n : 0;
  return r;
}

}  // namespace mixq
