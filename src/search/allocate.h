// Bit allocators over one set of sensitivity measurements:
//   uniform   every searched layer at the largest integer bit-width the budget allows
//             (fixed-point, any 2..8 bits, outside the candidate set: "uniform-equivalent")
//   greedy    from the widest candidate, move the layer whose step to any cheaper candidate (in
//             the exceeded budget) costs the least single-layer loss per unit saved, until
//             every budget holds
//   diagonal  the IQP with Omega's diagonal only (independent layers, HAWQ-like assumption)
//   clado     the IQP with the full Omega (cross-layer terms), solved exactly
//   clado-psd the same with Omega projected onto the PSD cone first (the reference code)
//   hawq      the IQP with a Hessian-trace diagonal (tr(H_ii)/n_i * ||Q(W_i)-W_i||^2)
#pragma once
#include <string>
#include <vector>

#include "search/budget.h"
#include "search/iqp.h"
#include "search/sensitivity.h"

namespace mixq {

enum class AllocMethod { uniform, greedy, diagonal, clado, clado_psd, hawq };
AllocMethod parse_alloc_method(const std::string& name, const std::string& where);
const char* alloc_method_name(AllocMethod m);

// What an allocation uses of one budget, in the budget's unit (bits per weight, bytes, BOPs, ms).
struct BudgetUse {
  Budget budget;
  double used = 0;
  double limit = 0;
};

struct Allocation {
  std::string method;
  std::vector<int> choice;  // per searched layer; empty for uniform (see uniform_bits)
  int uniform_bits = 0;     // uniform only
  double predicted = 0;     // x' Omega x with the measured Omega (NaN for uniform)
  IqpResult solver;         // IQP methods
  bool feasible = true;
  std::vector<BudgetUse> budget_use;  // per budget, in the given order (feasible allocations)
};

struct AllocInputs {
  const Graph* graph = nullptr;
  const SearchSpace* space = nullptr;
  const SensitivityData* sens = nullptr;
  // hawq only: per searched layer and candidate, the Hessian-trace sensitivity.
  const std::vector<double>* hawq_diag = nullptr;
};

Allocation allocate(const AllocInputs& in, AllocMethod method, const std::vector<Budget>& budgets,
                    const IqpOptions& options = {});

// The measured Omega as an Eigen matrix.
Eigen::MatrixXd omega_matrix(const SensitivityData& d);

// The config an allocation stands for (activation quantizers from the sensitivity file).
QuantConfig allocation_config(const AllocInputs& in, const Allocation& a);

}  // namespace mixq
