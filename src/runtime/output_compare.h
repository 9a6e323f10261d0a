// Scoring a model's outputs: a loss per sample against class labels or against a reference
// output (the float model's, for unlabelled data), and how closely outputs agree with a
// reference (top-1 agreement, KL divergence, SQNR). Shared by evaluation, sensitivity and sweeps.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mixq {

enum class OutputLoss { cross_entropy, kl, mse };
const char* loss_name(OutputLoss l);  // "ce", "kl", "mse"
// For messages: "cross-entropy", "KL to the float model", "MSE to the float model".
std::string loss_title(const std::string& name);
// "ce", "kl" or "mse"; Error(where, ...) otherwise.
OutputLoss parse_loss(const std::string& text, const std::string& where);

// An output read as rows of scores: the last axis longer than 1 and the size-1 axes after it
// hold one row (classes, vocabulary); the axes between the batch and it count rows per sample.
// [n, k] and [n, k, 1, 1] are one row of k per sample; [n, seq, vocab] is seq rows of vocab.
struct ScoreRows {
  int64_t samples = 0, rows = 0, width = 0;  // rows per sample
};
ScoreRows score_rows(const Tensor& output);

// The loss when none is asked for: cross-entropy with labels; without, KL to the reference for
// class scores (one row per sample, [n, k] or [n, k, 1, 1]), else mean squared error (feature
// maps, hidden states, per-position scores: --loss kl asks for KL over their last axis).
OutputLoss default_loss(bool labelled, const Tensor& output);

// Sum over the batch of each sample's loss. cross_entropy: one row per sample, labels[i] its
// class; kl: sum over the sample's rows of KL(softmax(reference) || softmax(output)); mse: mean
// over the sample's elements of (output - reference)^2. Both tensors f32.
double loss_sum(const Tensor& output, const std::vector<int64_t>& labels, const Tensor* reference,
                OutputLoss kind);

// Agreement of outputs with reference outputs, accumulated batch by batch.
class Agreement {
 public:
  // outputs[i] against reference[i]; Error(where, ...) on shape mismatch.
  void add(const std::vector<Tensor>& outputs, const std::vector<Tensor>& reference,
           const std::string& where);
  struct Result {
    size_t samples = 0;
    double top1 = 0;              // rows of output 0 whose arg-max matches the reference's
    double kl = 0;                // mean per sample of output 0's KL(reference || output)
    std::vector<double> sqnr_db;  // per output: 10 log10(sum ref^2 / sum (out - ref)^2)
  };
  Result result() const;

 private:
  size_t samples_ = 0, rows_ = 0, agree_ = 0;
  double kl_ = 0;
  std::vector<double> signal_, noise_;
};

}  // namespace mixq
