// Gradient checks for one operator: analytic gradients from Kernel::backward against central
// differences, both in double precision with the reference kernels (so the check measures the
// backward, not float rounding), and fast against reference backward in float.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/kernel.h"

namespace mixq::test {

struct OpSpec {
  std::string op;
  std::map<std::string, Attribute> attrs;
  std::vector<Tensor> inputs;  // float inputs are differentiated; integer ones become constants
  size_t outputs = 1;
  int64_t opset = 13;
  std::string domain;
  // Inputs to hold constant even if float (e.g. BatchNormalization running statistics).
  std::vector<size_t> constant_inputs;
};

struct GradCheckResult {
  double max_rel_error = 0;  // over all elements of all differentiated inputs
  std::string worst;         // where it was
};

// Converts the float inputs of spec to f64, runs the reference kernel's backward and compares
// with central differences (eps 1e-6) of loss = sum_k <out_k, R_k> for fixed random R_k.
// Relative error: |analytic - numeric| / max(|analytic|, |numeric|, 1e-4).
GradCheckResult grad_check(const OpSpec& spec, uint32_t seed = 1);

// Max |fast - reference| / max(1, |reference|) over input gradients, in f32.
double fast_vs_reference_backward(const OpSpec& spec, uint32_t seed = 1);

// A random tensor (normal, sd) of the given dtype (f32 or f64).
Tensor random_tensor(DType dtype, const Shape& shape, uint32_t seed, double sd = 1.0);

}  // namespace mixq::test
