#include "runtime/output_compare.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "runtime/loss.h"

namespace mixq {

const char* loss_name(OutputLoss l) {
  switch (l) {
    case OutputLoss::cross_entropy:
      return "ce";
    case OutputLoss::kl:
      return "kl";
    case OutputLoss::mse:
      return "mse";
  }
  return "?";
}

std::string loss_title(const std::string& name) {
  if (name == "kl") return "KL to the float model";
  if (name == "mse") return "MSE to the float model";
  return "cross-entropy";
}

OutputLoss parse_loss(const std::string& text, const std::string& where) {
  if (text == "ce") return OutputLoss::cross_entropy;
  if (text == "kl") return OutputLoss::kl;
  if (text == "mse") return OutputLoss::mse;
  throw Error(where, "unknown loss '" + text + "' (expected ce, kl or mse)");
}

ScoreRows score_rows(const Tensor& output) {
  ScoreRows r;
  const Shape& s = output.shape();
  if (s.empty()) return {1, 1, 1};
  r.samples = s[0];
  size_t axis = s.size() - 1;
  while (axis > 1 && s[axis] == 1) --axis;
  r.width = 1;
  for (size_t d = std::max<size_t>(axis, 1); d < s.size(); ++d) r.width *= s[d];
  r.rows = 1;
  for (size_t d = 1; d < axis; ++d) r.rows *= s[d];
  return r;
}

OutputLoss default_loss(bool labelled, const Tensor& output) {
  if (labelled) return OutputLoss::cross_entropy;
  const ScoreRows r = score_rows(output);
  return r.rows == 1 && r.width > 1 ? OutputLoss::kl : OutputLoss::mse;
}

namespace {

// KL(softmax(r) || softmax(p)) of one row.
double row_kl(const float* p, const float* r, int64_t k) {
  const double lz = log_sum_exp(p, k), lzr = log_sum_exp(r, k);
  double kl = 0;
  for (int64_t c = 0; c < k; ++c) {
    const double lpr = r[c] - lzr;
    kl += std::exp(lpr) * (lpr - (p[c] - lz));
  }
  return kl;
}

}  // namespace

double loss_sum(const Tensor& output, const std::vector<int64_t>& labels, const Tensor* reference,
                OutputLoss kind) {
  const ScoreRows sr = score_rows(output);
  const float* p = output.data<float>();
  const int64_t per_sample = sr.rows * sr.width;
  double total = 0;
  if (kind == OutputLoss::cross_entropy) {
    check(sr.rows == 1 && labels.size() == static_cast<size_t>(sr.samples), "loss",
          "cross-entropy needs one row of class scores per sample, the output is " +
              shape_str(output.shape()));
    for (int64_t i = 0; i < sr.samples; ++i) {
      total += row_cross_entropy(p + i * sr.width, sr.width, labels[i]);
    }
    return total;
  }
  check(reference && reference->shape() == output.shape(), "loss",
        "the reference output differs in shape from " + shape_str(output.shape()));
  const float* r = reference->data<float>();
  for (int64_t i = 0; i < sr.samples; ++i) {
    if (kind == OutputLoss::kl) {
      for (int64_t j = 0; j < sr.rows; ++j) {
        const int64_t off = i * per_sample + j * sr.width;
        total += row_kl(p + off, r + off, sr.width);
      }
    } else {
      double se = 0;
      for (int64_t e = i * per_sample; e < (i + 1) * per_sample; ++e) {
        const double d = static_cast<double>(p[e]) - r[e];
        se += d * d;
      }
      total += per_sample ? se / static_cast<double>(per_sample) : 0;
    }
  }
  return total;
}

void Agreement::add(const std::vector<Tensor>& outputs, const std::vector<Tensor>& reference,
                    const std::string& where) {
  check(outputs.size() == reference.size() && !outputs.empty(), where,
        "outputs and reference outputs differ in number");
  if (signal_.empty()) signal_.assign(outputs.size(), 0), noise_.assign(outputs.size(), 0);
  for (size_t o = 0; o < outputs.size(); ++o) {
    const Tensor &a = outputs[o], &b = reference[o];
    check(a.shape() == b.shape(), where,
          "output " + std::to_string(o) + " is " + shape_str(a.shape()) + ", the reference's " +
              shape_str(b.shape()));
    for (int64_t e = 0; e < a.numel(); ++e) {
      const double x = a.get_double(e), y = b.get_double(e);
      signal_[o] += y * y;
      noise_[o] += (x - y) * (x - y);
    }
  }
  const Tensor &out = outputs[0], &ref = reference[0];
  if (out.dtype() != DType::f32 || out.rank() == 0) return;
  const ScoreRows sr = score_rows(out);
  const float *p = out.data<float>(), *r = ref.data<float>();
  for (int64_t row = 0; row < sr.samples * sr.rows; ++row) {
    const float *a = p + row * sr.width, *b = r + row * sr.width;
    agree_ += std::max_element(a, a + sr.width) - a == std::max_element(b, b + sr.width) - b;
    if (sr.width > 1) kl_ += row_kl(a, b, sr.width);
  }
  rows_ += static_cast<size_t>(sr.samples * sr.rows);
  samples_ += static_cast<size_t>(sr.samples);
}

Agreement::Result Agreement::result() const {
  Result r;
  r.samples = samples_;
  if (rows_) r.top1 = static_cast<double>(agree_) / static_cast<double>(rows_);
  if (samples_) r.kl = kl_ / static_cast<double>(samples_);
  for (size_t o = 0; o < signal_.size(); ++o)
    r.sqnr_db.push_back(noise_[o] > 0 ? 10 * std::log10(signal_[o] / noise_[o])
                                      : std::numeric_limits<double>::infinity());
  return r;
}

}  // namespace mixq
