#include "eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "base/error.h"
#include "data/batch_iterator.h"
#include "data/model_inputs.h"
#include "runtime/finite.h"
#include "runtime/loss.h"

namespace mixq {

void Metrics::add(const Tensor& logits, const std::vector<int64_t>& labels,
                  const std::string& where) {
  check(logits.rank() >= 2 && logits.dim(0) == static_cast<int64_t>(labels.size()), where,
        "model output " + shape_str(logits.shape()) + " does not hold one row per sample");
  const int64_t n = logits.dim(0);
  const int64_t k = logits.numel() / std::max<int64_t>(n, 1);
  std::vector<float> row(k);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < k; ++c) row[c] = static_cast<float>(logits.get_double(i * k + c));
    // No metric is ever computed from non-finite logits (a NaN row would rank its label first).
    for (int64_t c = 0; c < k; ++c)
      check(std::isfinite(row[c]), where,
            "model output of sample " + std::to_string(i) + " is not finite (" +
                std::to_string(row[c]) + ")");
    const int64_t y = labels[i];
    check(y >= 0 && y < k, where,
          "label " + std::to_string(y) + " outside the model's " + std::to_string(k) + " outputs");
    // Rank of the true class: how many classes score strictly higher (ties favour the label).
    int64_t higher = 0;
    for (int64_t c = 0; c < k; ++c) higher += row[c] > row[y];
    top1_ += higher == 0;
    top5_ += higher < 5;
    loss_ += row_cross_entropy(row.data(), k, y);
  }
  n_ += static_cast<size_t>(n);
}

EvalResult Metrics::result() const {
  EvalResult r;
  r.samples = n_;
  if (n_) {
    r.top1 = static_cast<double>(top1_) / n_;
    r.top5 = static_cast<double>(top5_) / n_;
    r.loss = loss_ / n_;
  }
  return r;
}

EvalResult evaluate(Executor& ex, const Dataset& data, const EvalOptions& options) {
  using clock = std::chrono::steady_clock;
  check(data.size() > 0, data.description(), "dataset is empty");
  IterOptions it_opts;
  it_opts.batch_size = options.batch_size;
  it_opts.limit = options.limit;
  BatchIterator it(data, it_opts);
  Metrics metrics;
  Agreement agreement;
  Batch batch;
  double compute = 0;
  const auto t0 = clock::now();
  size_t done = 0;
  while (it.next(batch)) {
    const auto c0 = clock::now();
    std::vector<Tensor> out;
    const std::vector<Tensor> in = model_inputs(batch, ex.graph(), data);
    try {
      for (size_t i = 0; i < in.size(); ++i) ex.check_input(i, in[i]);
    } catch (const Error& e) {
      throw Error(data.description(), "does not fit the model: " + std::string(e.what()));
    }
    try {
      out = ex.run(in);
      compute += std::chrono::duration<double>(clock::now() - c0).count();
      for (const Tensor& o : out)
        if (!all_finite(o))
          throw non_finite_error(ex.source_graph(), in, "evaluating " + data.description());
      if (data.labelled()) {
        if (out.at(0).rank() >= 2 && out.at(0).dim(0) > 0)
          check_labels(data, batch.labels, out.at(0).numel() / out.at(0).dim(0), ex.graph().source);
        metrics.add(out.at(0), batch.labels, ex.graph().source);
      }
      if (options.reference) agreement.add(out, options.reference->run(in), ex.graph().source);
    } catch (const Error& e) {
      // A buffer past the memory limit outside any node: say which model and batch.
      if (e.where() != "tensor") throw;
      throw Error(ex.graph().source,
                  "evaluating a batch of " + std::to_string(batch.size()) + ": " + e.cause());
    }
    done += batch.size();
    if (options.progress) options.progress(done, it.num_samples());
  }
  EvalResult r = metrics.result();
  r.samples = done;
  r.labelled = data.labelled();
  if (options.reference) {
    r.compared = true;
    r.agreement = agreement.result();
  }
  r.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  r.compute_seconds = compute;
  return r;
}

nlohmann::json agreement_json(const Agreement::Result& a) {
  nlohmann::json sqnr = nlohmann::json::array();
  for (double db : a.sqnr_db) sqnr.push_back(std::isfinite(db) ? nlohmann::json(db) : nullptr);
  return {{"top1", a.top1 * 100}, {"kl", a.kl}, {"sqnr_db", sqnr}};
}

std::string agreement_text(const Agreement::Result& a, const std::string& with) {
  std::string sqnr;
  for (double db : a.sqnr_db)
    sqnr += (sqnr.empty() ? "" : ", ") +
            (std::isfinite(db) ? fmt::format("{:.1f} dB", db) : std::string("exact"));
  return fmt::format("agreement with the {}: top-1 {:.2f} %, KL {:.4g}, SQNR {}", with,
                     a.top1 * 100, a.kl, sqnr);
}

}  // namespace mixq
