// Allocators x budgets on one set of measurements: each allocation's predicted loss increase,
// its measured increase on the sensitivity samples and its test top-1 (mixq sweep, and the
// accuracy-vs-size curves of mixq quantize's report).
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "quant/rounding.h"
#include "search/allocate.h"

namespace mixq {

// Mean loss over the sensitivity subset minus L0, of g quantized by cfg with its weights
// rounded by r.
double measured_increase(const Graph& g, const QuantConfig& cfg, const Dataset& sens,
                         const std::vector<size_t>& subset, double L0, size_t batch,
                         const WeightRounding& r = {});

struct SweepData {
  const Dataset* sens = nullptr;  // the sensitivity samples
  std::vector<size_t> subset;
  const Dataset* test = nullptr;
  size_t batch = 64, limit = 0;
  WeightRounding rounding;  // as the sensitivities were measured
};

// One allocator under one budget. The figures are set for feasible allocations only.
struct SweepRow {
  AllocMethod method = AllocMethod::clado;
  Budget budget;
  Allocation allocation;
  double avg_bits = 0;   // over the searched layers not pinned or float
  double weight_kb = 0;  // the whole model's weights
  double measured = 0;   // loss increase on the sensitivity samples
  double test_top1 = 0;  // percent
  bool feasible() const { return allocation.feasible; }
  // The IQP solver's status, "-" for the allocators without one (uniform, greedy).
  std::string solver_status() const;
};

// One row per (budget, method), budgets outer, in the given orders; on_row sees each row as it
// is done.
std::vector<SweepRow> sweep(const AllocInputs& in, const std::vector<Budget>& budgets,
                            const std::vector<AllocMethod>& methods, const IqpOptions& o,
                            const SweepData& data,
                            const std::function<void(const SweepRow&)>& on_row = {});

// Robust allocation: the quadratic model (Omega) is a second-order expansion around the float
// model and can be wrong far from it (low budgets). Each of `methods` allocates under the
// budgets, every distinct feasible allocation is measured on the sensitivity samples, and they
// come back lowest measured loss first (infeasible ones dropped; ties keep the methods' order).
struct RankedAllocation {
  AllocMethod method = AllocMethod::clado;
  Allocation allocation;
  double measured = 0;  // loss increase on the sensitivity samples
};
std::vector<RankedAllocation> rank_allocations(const AllocInputs& in,
                                               const std::vector<Budget>& budgets,
                                               const std::vector<AllocMethod>& methods,
                                               const IqpOptions& o, const SweepData& data);

// The rows as JSON, as mixq sweep --json writes them and the report reads them.
nlohmann::json sweep_json(const std::vector<SweepRow>& rows);

}  // namespace mixq
