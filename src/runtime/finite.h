// Non-finite values (NaN, +-Inf) are never scored: every driver that computes a metric, a loss
// or a statistic from a network's values checks them, and a run that meets one stops with an
// Error naming the node where the first one appears.
#pragma once
#include <string>
#include <vector>

#include "base/error.h"
#include "ir/graph.h"
#include "tensor/tensor.h"

namespace mixq {

// "NaN", "+Inf" or "-Inf" for the first non-finite element of a float tensor; "" when every
// element is finite (always for integer and bool tensors).
std::string non_finite_kind(const Tensor& t);
inline bool all_finite(const Tensor& t) {
  return non_finite_kind(t).empty();
}

struct NonFinite {
  bool found = false;
  std::string where;  // "Add node 'x'" or "model input 'x'"
  std::string value;  // the value holding it
  std::string kind;   // NaN, +Inf, -Inf
};

// Scans an environment that holds every value of g (as Executor::run_range leaves it, on an
// unoptimised executor of g) in topological order: graph inputs first, then each node's
// outputs; the first node whose output holds a non-finite value while its inputs hold none.
NonFinite first_non_finite(const Graph& g, const std::vector<Tensor>& env);

// Runs g with the reference kernels on inputs and scans every value.
NonFinite locate_non_finite(const Graph& g, const std::vector<Tensor>& inputs);

// The one-line Error for a run that met non-finite values while doing `during` (e.g.
// "evaluating fmnist:test"): it names the node (located by the reference kernels on inputs)
// where they first appear. When the reference finds none, the fast kernels are at fault, and the
// Error says so.
Error non_finite_error(const Graph& g, const std::vector<Tensor>& inputs,
                       const std::string& during);
// The same for a located finding.
Error non_finite_error(const NonFinite& f, const std::string& during);

}  // namespace mixq
