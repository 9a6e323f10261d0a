// Internal to the IQP solver: the problem in flat arrays, and the clock every loop checks.
#pragma once
#include <chrono>
#include <cstdint>
#include <vector>

#include "search/iqp.h"

namespace mixq::iqp {

using Clock = std::chrono::steady_clock;

struct Deadline {
  Clock::time_point end;
  bool passed() const { return Clock::now() >= end; }
};

// Energy E(x) = sum_i unary[x_i] + sum_{i<j} pair[x_i][x_j] over labels a = off[i] + b.
struct Model {
  int layers = 0;             // L
  int labels = 0;             // n
  int budgets = 0;            // K
  std::vector<int> off;       // L + 1 label offsets
  std::vector<int> layer_of;  // n
  std::vector<double> unary;  // n: Omega diagonal
  std::vector<double> pair;   // n x n row-major: 2 Omega between layers, 0 inside a layer
  std::vector<double> cost;   // K x n
  std::vector<double> limit;  // K budgets, relaxed by 1e-12 relative (rounding of sums)
  double scale = 0;           // sum of the largest |term| of each layer and pair of layers

  Model(const IqpProblem& p, const Eigen::MatrixXd& omega);
  int count(int i) const { return off[i + 1] - off[i]; }
  const double* row(int a) const { return pair.data() + static_cast<size_t>(a) * labels; }
  double c(int k, int a) const { return cost[static_cast<size_t>(k) * labels + a]; }
  // E(x) summed directly (x is a label per layer, not a candidate index).
  double energy(const std::vector<int>& x) const;
  bool fits(const std::vector<int>& x) const;
};

}  // namespace mixq::iqp
