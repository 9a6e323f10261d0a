// Allocators x budgets on one set of measurements: each allocation's predicted loss increase,
// its measured increase on the sensitivity samples and its test top-1 (mixq sweep, and the
// accuracy-vs-size curves of mixq quantize's report).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "search/allocate.h"

namespace mixq::cli {

// Mean loss over the sensitivity subset minus L0.
double measured_increase(const Graph& g, const QuantConfig& cfg, const Dataset& sens,
                         const std::vector<size_t>& subset, double L0, size_t batch);

struct SweepData {
  const Dataset* sens = nullptr;  // the sensitivity samples
  std::vector<size_t> subset;
  const Dataset* test = nullptr;
  size_t batch = 64, limit = 0;
};

// One JSON row per (budget, method), in that order; a line per row on stderr, and CSV lines
// appended to *csv when given.
nlohmann::json sweep_rows(const AllocInputs& in, const std::vector<Budget>& budgets,
                          const std::vector<AllocMethod>& methods, const IqpOptions& o,
                          const SweepData& data, std::string* csv);

}  // namespace mixq::cli
