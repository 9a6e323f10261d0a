#include "cli/sweep_lines.h"

#include <fmt/format.h>

#include <cmath>
#include <iostream>

namespace mixq::cli {
namespace {

// The predicted loss increase, empty for an allocation without one (uniform off the candidates).
std::string predicted_text(const SweepRow& row) {
  const double p = row.allocation.predicted;
  return std::isnan(p) ? "" : fmt::format("{:.5f}", p);
}

}  // namespace

std::string sweep_csv_line(const SweepRow& row) {
  const Allocation& al = row.allocation;
  if (!row.feasible()) return fmt::format("{},{},,,,,,infeasible,\n", al.method, row.budget.text);
  return fmt::format("{},{},{:.3f},{:.1f},{},{:.5f},{:.2f},{},{:.3f}\n", al.method, row.budget.text,
                     row.avg_bits, row.weight_kb, predicted_text(row), row.measured, row.test_top1,
                     row.solver_status(), al.solver.seconds);
}

void print_sweep_row(const SweepRow& row) {
  if (!row.feasible()) return;
  const std::string predicted = predicted_text(row);
  std::cerr << fmt::format(
      "{:<10} {:<8} {:.2f} bits  predicted {:>9}  measured {:.5f}  top-1 {:.2f} %\n",
      row.allocation.method, row.budget.text, row.avg_bits, predicted.empty() ? "-" : predicted,
      row.measured, row.test_top1);
}

}  // namespace mixq::cli
