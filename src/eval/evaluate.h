// Classification metrics of a network over a dataset: top-1, top-5, mean cross-entropy, speed.
#pragma once
#include <functional>

#include "data/dataset.h"
#include "runtime/executor.h"

namespace mixq {

struct EvalOptions {
  size_t batch_size = 256;
  size_t limit = 0;  // first N samples; 0 = all
  // Called after each batch with (samples done, samples total).
  std::function<void(size_t, size_t)> progress;
};

struct EvalResult {
  size_t samples = 0;
  double top1 = 0, top5 = 0;   // fractions in [0, 1]
  double loss = 0;             // mean cross-entropy of the logits against the labels
  double seconds = 0;          // wall time, data loading included
  double compute_seconds = 0;  // network only
  double images_per_s() const { return seconds > 0 ? samples / seconds : 0; }
};

// Accumulates metrics batch by batch, so other drivers (training, quantized runs) share it.
class Metrics {
 public:
  // logits: [n, classes] (extra trailing dims of size 1 allowed).
  void add(const Tensor& logits, const std::vector<int64_t>& labels, const std::string& where);
  EvalResult result() const;

 private:
  size_t n_ = 0, top1_ = 0, top5_ = 0;
  double loss_ = 0;
};

// Runs the model's first input/output over the dataset. Throws Error when the data does not fit
// the model (shape, class count).
EvalResult evaluate(Executor& ex, const Dataset& data, const EvalOptions& options = {});

}  // namespace mixq
