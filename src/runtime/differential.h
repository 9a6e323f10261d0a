// Differential check of the fast path against the reference: both executors run the same graph
// on the same inputs and every value both compute is compared, so a disagreement is reported at
// the first node whose output differs, not only at the graph outputs. The reference executor is
// the specification; whatever the optimised executor fuses, reorders or computes in place must
// reproduce it.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "tensor/tensor.h"

namespace mixq {

struct Divergence {
  bool found = false;
  std::string node;         // label of the first node (reference order) whose output disagrees
  std::string value;        // the value that disagrees
  double max_abs = 0;       // largest |fast - reference| over that value
  double reference_at = 0;  // the reference element there
  double fast_at = 0;       // the fast element there
  std::string describe() const;
};

struct DifferentialOptions {
  double abs_tol = 1e-4;  // |fast - ref| <= abs_tol + rel_tol * |ref| everywhere
  double rel_tol = 1e-3;
  int batch_threads = 0;  // OpenMP threads for the fast run (0: as set), so slicing is exercised
};

// Runs g with Impl::reference (unoptimised) and Impl::fast (optimised) on inputs. Graph outputs
// are compared first; when they agree the result is "not found". When they disagree, the
// intermediate values both executors compute (fused-away values skipped, channels-last values
// compared in ONNX layout) locate the first disagreement in topological order. Non-finite
// values must match in kind (NaN where NaN, the same infinity).
Divergence compare_fast_to_reference(const Graph& g, const std::vector<Tensor>& inputs,
                                     const DifferentialOptions& options = {});

// Element-wise comparison of two tensors of the same shape under the options' tolerance; the
// index of the worst element in *worst. Integer and bool tensors must be equal.
bool tensors_agree(const Tensor& ref, const Tensor& fast, const DifferentialOptions& options = {},
                   double* max_abs = nullptr, int64_t* worst = nullptr);

}  // namespace mixq
