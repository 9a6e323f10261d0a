// Budgets an allocation must meet, parsed from the command line:
//   3.0bits     average weight bits over the searched layers (pinned and float layers left out,
//               as the edge layers are)
//   2MB, 512KB  weight storage of the whole model (searched layers + fixed layers + float rest)
//   1.2GBOPs    bit operations per sample of the whole model (MACs x b_w x b_a)
//   5ms@XC7Z020 latency of one sample on that FPGA (src/hw: the device's balanced 4-bit MSQ
//               design; fixed rows on the DSP array, SP2/PoT rows on the LUT array)
#pragma once
#include <string>
#include <vector>

#include "hw/fpga.h"
#include "search/candidates.h"

namespace mixq {

struct Budget {
  enum class Kind { avg_bits, bytes, bops, latency_ms };
  Kind kind = Kind::avg_bits;
  double value = 0;
  std::string text;    // as given
  std::string device;  // latency_ms: the FPGA
};

Budget parse_budget(const std::string& text, const std::string& where);
// Comma-separated list ("2.5bits,3bits").
std::vector<Budget> parse_budgets(const std::string& text, const std::string& where);
// The budgets as given, comma-separated.
std::string budgets_text(const std::vector<Budget>& budgets);

// The FPGA design a latency budget is costed on: the device's balanced 4-bit MSQ design.
hw::Design latency_design(const hw::Device& device);

// The budget as a linear constraint over the searched layers' candidates: per-variable costs
// (layer-major, candidate-minor) and the bound, after subtracting what the fixed part uses.
// A pinned or float layer (SearchSpace::fixes) costs the same at every candidate: float weights
// at 32 bits, float layers at 32 x 32 BOPs, and on the FPGA as 8-bit fixed (as mixq hw).
struct LinearBudget {
  std::vector<double> costs;
  double bound = 0;
  double per_unit = 1;  // cost units per unit of the budget's value (bits per byte, ...)
  // The budget's value (bytes, bits, BOPs, ms) that costs summing to `sum` need.
  double value_of(const Budget& b, double sum) const { return b.value + (sum - bound) / per_unit; }
};
LinearBudget linearize(const Budget& b, const Graph& g, const SearchSpace& space);

// A budget that no assignment of the candidates meets is an Error naming `where`, the budget and
// what the cheapest and dearest assignments need; checked before any measurement.
void check_budget_feasible(const Budget& b, const Graph& g, const SearchSpace& space,
                           const std::string& where);

}  // namespace mixq
