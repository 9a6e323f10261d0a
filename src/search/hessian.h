// HAWQ-style sensitivities: the trace of each layer's Hessian block, estimated by Hutchinson's
// method, turned into per-candidate loss estimates tr(H_ii)/n_i * ||Q(W_i) - W_i||^2.
//
// Hessian-vector products come from central differences of gradients (forward + backward passes
// only, no second-order autodiff): H v ~ (g(W + v) - g(W - v)) / 2 for a small probe v. One
// Rademacher probe over all searched layers at once gives every block's estimate, since the
// cross blocks average out: E[v_i' H_ij v_j] = 0 for i != j.
// Differences of gradients also see the ReLU kinks a probe crosses, which autodiff's Hessian
// (zero curvature almost everywhere in a ReLU) ignores: the estimate is the curvature of the loss
// averaged over the samples, kinks included. For a layer the rest of the network is smooth in
// (the classifier) the two agree; near a trained optimum the kink terms are small, because they
// scale with the gradient reaching the ReLU.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "ir/graph.h"
#include "search/candidates.h"

namespace mixq {

struct HessianOptions {
  int probes = 32;  // Rademacher probes (the estimate's variance falls as 1/probes)
  // Probe size relative to each weight tensor's RMS: on the scale of quantization noise (4-bit
  // errors are a few percent of the RMS), where a ReLU network's curvature matters for the
  // allocation; smaller probes see fewer, larger kink terms and a noisier estimate (on ResNet-20,
  // 32 probes: standard errors 2-4x smaller at 0.05 than at 0.001).
  double step = 0.05;
  size_t batch = 128;     // samples per forward/backward pass
  uint64_t seed = 0;      // of the probes
  bool progress = false;  // one line per probe on stderr
};

struct HessianTraces {
  std::vector<double> trace;     // tr(H_ii) per searched layer (loss = mean cross-entropy)
  std::vector<double> trace_sd;  // standard error of each estimate over the probes
  int probes = 0;
};

// Traces for the weights of space.searched, with the loss averaged over `subset` of `data`.
// The graph is the float model (inference form). Throws Error for a layer without backward.
HessianTraces hessian_traces(const Graph& g, const SearchSpace& space, const Dataset& data,
                             const std::vector<size_t>& subset, const HessianOptions& o);

// Per searched layer and candidate (row-major [layer][candidate]):
// tr(H_ii) / n_i * ||Q_c(W_i) - W_i||^2 with the candidate's per-row MSE quantizer.
std::vector<double> hawq_sensitivity(const Graph& g, const SearchSpace& space,
                                     const HessianTraces& h);

}  // namespace mixq
