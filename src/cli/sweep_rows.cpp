#include "cli/sweep_rows.h"

#include <fmt/format.h>

#include <cmath>
#include <iostream>

#include "data/model_inputs.h"
#include "eval/evaluate.h"
#include "quant/apply.h"
#include "runtime/executor.h"

namespace mixq::cli {

double measured_increase(const Graph& g, const QuantConfig& cfg, const Dataset& sens,
                         const std::vector<size_t>& subset, double L0, size_t batch) {
  Executor ex(apply_quant(g, cfg), Impl::fast, true);
  Metrics m;
  for (size_t first = 0; first < subset.size(); first += batch) {
    std::vector<size_t> idx(subset.begin() + first,
                            subset.begin() + std::min(subset.size(), first + batch));
    const Batch b = sens.get(idx);
    m.add(ex.run(model_inputs(b, g, sens))[0], b.labels, g.source);
  }
  return m.result().loss - L0;
}

nlohmann::json sweep_rows(const AllocInputs& in, const std::vector<Budget>& budgets,
                          const std::vector<AllocMethod>& methods, const IqpOptions& o,
                          const SweepData& data, std::string* csv) {
  const Graph& g = *in.graph;
  const SearchSpace& space = *in.space;
  nlohmann::json rows = nlohmann::json::array();
  std::vector<QuantLayer> searched;
  for (int i : space.searched) searched.push_back(space.all[i]);
  for (const Budget& b : budgets)
    for (AllocMethod m : methods) {
      Allocation al = allocate(in, m, {b}, o);
      nlohmann::json row = {{"method", al.method}, {"budget", b.text}};
      if (!al.feasible) {
        row["feasible"] = false;
        rows.push_back(row);
        if (csv) *csv += fmt::format("{},{},,,,,,infeasible,\n", al.method, b.text);
        continue;
      }
      QuantConfig cfg = allocation_config(in, al);
      const double measured =
          measured_increase(g, cfg, *data.sens, data.subset, in.sens->L0(), data.batch);
      Executor ex(apply_quant(g, cfg), Impl::fast, true);
      EvalOptions eo;
      eo.batch_size = data.batch;
      eo.limit = data.limit;
      EvalResult r = evaluate(ex, *data.test, eo);
      const double bits = average_weight_bits(g, cfg, searched);
      const std::string status =
          m == AllocMethod::uniform || m == AllocMethod::greedy ? "-" : to_string(al.solver.status);
      const std::string predicted =
          std::isnan(al.predicted) ? "" : fmt::format("{:.5f}", al.predicted);
      row.update({{"feasible", true},
                  {"avg_bits", bits},
                  {"weight_kb", weight_bytes(g, cfg) / 1024},
                  {"predicted",
                   std::isnan(al.predicted) ? nlohmann::json() : nlohmann::json(al.predicted)},
                  {"measured", measured},
                  {"test_top1", r.top1 * 100},
                  {"solver", status},
                  {"solver_seconds", al.solver.seconds},
                  {"uniform_bits", al.uniform_bits},
                  {"choice", al.choice}});
      rows.push_back(row);
      if (csv)
        *csv += fmt::format("{},{},{:.3f},{:.1f},{},{:.5f},{:.2f},{},{:.3f}\n", al.method, b.text,
                            bits, weight_bytes(g, cfg) / 1024, predicted, measured, r.top1 * 100,
                            status, al.solver.seconds);
      std::cerr << fmt::format(
          "{:<10} {:<8} {:.2f} bits  predicted {:>9}  measured {:.5f}  top-1 {:.2f} %\n", al.method,
          b.text, bits, predicted.empty() ? "-" : predicted, measured, r.top1 * 100);
    }
  return rows;
}

}  // namespace mixq::cli
