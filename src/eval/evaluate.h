// Metrics of a network over a dataset: with labels top-1, top-5 and mean cross-entropy; with a
// reference model (the float model of a quantized one) agreement with its outputs (top-1
// agreement, KL, SQNR), which needs no labels; and speed.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "data/dataset.h"
#include "runtime/executor.h"
#include "runtime/output_compare.h"

namespace mixq {

struct EvalOptions {
  size_t batch_size = 256;
  size_t limit = 0;  // first N samples; 0 = all
  // Called after each batch with (samples done, samples total).
  std::function<void(size_t, size_t)> progress;
  // When set, every batch also runs here and the outputs are compared with its outputs.
  Executor* reference = nullptr;
};

struct EvalResult {
  size_t samples = 0;
  bool labelled = false;       // top1, top5 and loss are measured
  double top1 = 0, top5 = 0;   // fractions in [0, 1]
  double loss = 0;             // mean cross-entropy of the logits against the labels
  double seconds = 0;          // wall time, data loading included
  double compute_seconds = 0;  // network only
  double images_per_s() const { return seconds > 0 ? samples / seconds : 0; }
  bool compared = false;  // agreement is measured (a reference model was given)
  Agreement::Result agreement;
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

// Runs the model over the dataset (all inputs; metrics of the first output). Throws Error when
// the data does not fit the model (inputs, shapes, dtypes, class count).
EvalResult evaluate(Executor& ex, const Dataset& data, const EvalOptions& options = {});

// {"top1": %, "kl": mean per sample, "sqnr_db": [per output, null when exact]}.
nlohmann::json agreement_json(const Agreement::Result& a);
// "agreement with the float model: top-1 99.20 %, KL 0.0031, SQNR 31.4 dB".
std::string agreement_text(const Agreement::Result& a, const std::string& with);

}  // namespace mixq
