// Synthetic CLADO problems for tests and benchmarks, from explicit statistics of Omega.
//
// The generator draws, for L layers and candidates c = 0..C-1 (e.g. 2, 4, 8 bits):
//   d_i(c)   = exp(log_mean[c] + g_i + e_ic) + diag_noise * z_ic
//              g_i ~ N(0, layer_sd^2) shared by a layer's candidates (some layers are fragile),
//              e_ic ~ N(0, candidate_sd^2); log_mean falling steeply with bits gives
//              2-bit >> 4-bit >> 8-bit ~ 0; diag_noise lets near-zero entries go negative,
//              as measured ones do.
//   cross_ij(c,c') = r * sqrt(|d_i(c) d_j(c')|),  r ~ N(cross_mean, cross_sd^2) * w(|i-j|),
//              w(k) = exp(-(k-1) / decay): neighbours interact most.
// and sets Omega[(i,c),(i,c)] = d_i(c), Omega[(i,c),(j,c')] = cross_ij(c,c') / 2.
// fit_omega_model estimates these parameters from a measured Omega, so benchmarks can be
// regenerated at the statistics of a real network. The defaults are assumptions, not a fit: no
// measured Omega was at hand. They follow the CLADO paper's picture (2-bit perturbations cost
// tenths of a nat, 4-bit hundredths, 8-bit ~1e-4 and noisy) with cross terms of up to half the
// geometric mean of the two single-layer terms; the result is indefinite, as measured ones are.
#pragma once
#include <cstdint>
#include <vector>

#include "search/iqp.h"

namespace mixq {

struct OmegaModel {
  std::vector<double> log_mean = {-1.2, -4.6, -9.2};  // ln d per candidate: 0.3, 0.01, 1e-4
  double layer_sd = 1.0;
  double candidate_sd = 0.3;
  double diag_noise = 1e-4;
  double cross_mean = 0.2;
  double cross_sd = 0.5;
  double decay = 4;
  uint64_t seed = 1;
};

// L x C candidates, Omega as above (symmetric, generally indefinite).
Eigen::MatrixXd synth_omega(int layers, const OmegaModel& model);

// Estimates an OmegaModel from a measured Omega with `candidates` per layer. log_mean, layer_sd
// and candidate_sd come from the positive diagonal entries (a two-way layout in ln d), the cross
// statistics from the ratios cross / sqrt(|d d'|) grouped by layer distance (decay by least
// squares on their root mean square); diag_noise from the negative diagonal entries.
OmegaModel fit_omega_model(const Eigen::MatrixXd& omega, int candidates);

// Weight counts of the searched layers: ResNet-20 (CIFAR-10, the 18 convolutions of the basic
// blocks) and ResNet-50 (ImageNet, the 52 convolutions of the bottlenecks and downsamples).
std::vector<int64_t> resnet20_weights();
std::vector<int64_t> resnet50_weights();

// The model-size problem: layer i at candidate c costs weights[i] * bits[c], budget avg_bits
// times the total weight count.
IqpProblem size_problem(const Eigen::MatrixXd& omega, const std::vector<int64_t>& weights,
                        const std::vector<int>& bits, double avg_bits);

}  // namespace mixq
