#include "search/sweep.h"

#include <cmath>

#include "data/model_inputs.h"
#include "eval/evaluate.h"
#include "quant/apply.h"
#include "runtime/executor.h"

namespace mixq {

namespace {

double mean_loss_increase(Executor& ex, const Graph& g, const Dataset& sens,
                          const std::vector<size_t>& subset, double L0, size_t batch) {
  Metrics m;
  for (size_t first = 0; first < subset.size(); first += batch) {
    std::vector<size_t> idx(subset.begin() + first,
                            subset.begin() + std::min(subset.size(), first + batch));
    const Batch b = sens.get(idx);
    m.add(ex.run(model_inputs(b, g, sens))[0], b.labels, g.source);
  }
  return m.result().loss - L0;
}

}  // namespace

double measured_increase(const Graph& g, const QuantConfig& cfg, const Dataset& sens,
                         const std::vector<size_t>& subset, double L0, size_t batch,
                         const WeightRounding& r) {
  Executor ex(apply_quant(round_weights(g, cfg, r), cfg), Impl::fast, true);
  return mean_loss_increase(ex, g, sens, subset, L0, batch);
}

std::string SweepRow::solver_status() const {
  return method == AllocMethod::uniform || method == AllocMethod::greedy
             ? "-"
             : to_string(allocation.solver.status);
}

std::vector<SweepRow> sweep(const AllocInputs& in, const std::vector<Budget>& budgets,
                            const std::vector<AllocMethod>& methods, const IqpOptions& o,
                            const SweepData& data,
                            const std::function<void(const SweepRow&)>& on_row) {
  const Graph& g = *in.graph;
  const SearchSpace& space = *in.space;
  std::vector<SweepRow> rows;
  const std::vector<QuantLayer> searched = space.free_layers();  // what a bits budget averages
  for (const Budget& b : budgets)
    for (AllocMethod m : methods) {
      SweepRow row;
      row.method = m;
      row.budget = b;
      row.allocation = allocate(in, m, {b}, o);
      if (row.feasible()) {
        const QuantConfig cfg = allocation_config(in, row.allocation);
        Executor ex(apply_quant(round_weights(g, cfg, data.rounding), cfg), Impl::fast, true);
        row.measured =
            mean_loss_increase(ex, g, *data.sens, data.subset, in.sens->L0(), data.batch);
        EvalOptions eo;
        eo.batch_size = data.batch;
        eo.limit = data.limit;
        row.test_top1 = evaluate(ex, *data.test, eo).top1 * 100;
        row.avg_bits = average_weight_bits(g, cfg, searched);
        row.weight_kb = weight_bytes(g, cfg) / 1024;
      }
      rows.push_back(std::move(row));
      if (on_row) on_row(rows.back());
    }
  return rows;
}

std::vector<RankedAllocation> rank_allocations(const AllocInputs& in,
                                               const std::vector<Budget>& budgets,
                                               const std::vector<AllocMethod>& methods,
                                               const IqpOptions& o, const SweepData& data) {
  std::vector<RankedAllocation> ranked;
  for (AllocMethod m : methods) {
    RankedAllocation r;
    r.method = m;
    r.allocation = allocate(in, m, budgets, o);
    if (!r.allocation.feasible) continue;
    bool seen = false;
    for (const RankedAllocation& q : ranked)
      seen = seen || q.allocation.choice == r.allocation.choice;
    if (seen) continue;
    r.measured = measured_increase(*in.graph, allocation_config(in, r.allocation), *data.sens,
                                   data.subset, in.sens->L0(), data.batch, data.rounding);
    ranked.push_back(std::move(r));
  }
  std::stable_sort(
      ranked.begin(), ranked.end(),
      [](const RankedAllocation& a, const RankedAllocation& b) { return a.measured < b.measured; });
  return ranked;
}

nlohmann::json sweep_json(const std::vector<SweepRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const SweepRow& r : rows) {
    const Allocation& al = r.allocation;
    nlohmann::json row = {{"method", al.method}, {"budget", r.budget.text}};
    if (!r.feasible()) {
      row["feasible"] = false;
      out.push_back(row);
      continue;
    }
    row.update(
        {{"feasible", true},
         {"avg_bits", r.avg_bits},
         {"weight_kb", r.weight_kb},
         {"predicted", std::isnan(al.predicted) ? nlohmann::json() : nlohmann::json(al.predicted)},
         {"measured", r.measured},
         {"test_top1", r.test_top1},
         {"solver", r.solver_status()},
         {"solver_seconds", al.solver.seconds},
         {"uniform_bits", al.uniform_bits},
         {"choice", al.choice}});
    out.push_back(row);
  }
  return out;
}

}  // namespace mixq
