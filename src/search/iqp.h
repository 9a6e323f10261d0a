// The integer quadratic program of CLADO bit allocation, solved exactly.
//
// L layers, layer i has C_i candidates; x_(i,b) binary, exactly one candidate per layer.
//   minimise    x' Omega x
//   subject to  sum_(i,b) cost_k(i,b) x_(i,b) <= B_k     k = 0 .. K-1
// Omega is symmetric n x n (n = sum C_i) and may be indefinite; entries between two candidates of
// one layer never meet a one-hot x, so they are ignored. See ALGORITHMS.md section 1.
//
// solve_iqp is a depth-first branch and bound over layers. Its bound is the dual of the local
// polytope LP (the RLT-1 / Adams-Johnson linearisation of the pairs) with the budgets relaxed by
// Lagrange multipliers; it is raised by block-coordinate ascent (MPLP star updates plus exact 1-D
// multiplier steps), so every iterate is a valid bound whether or not it has converged. Omega is
// never convexified: the bound is exact on one-hot vectors. Greedy repair and 1-/2-layer local
// search give incumbents; the clock is checked inside every loop.
#pragma once
#include <cstdint>
#include <vector>

#include <eigen3/Eigen/Dense>  // Debian path; needs no extra include directory

namespace mixq {

struct IqpProblem {
  std::vector<int> candidates;             // C_i per layer, each >= 1
  Eigen::MatrixXd omega;                   // n x n symmetric, rows ordered (layer, candidate)
  std::vector<std::vector<double>> costs;  // K x n, finite and >= 0
  std::vector<double> budgets;             // K; +infinity means no limit
};

struct IqpOptions {
  double time_limit_s = 60;  // wall-clock limit of solve_iqp, including clipping
  double rel_gap = 0;        // stop once (objective - bound) <= rel_gap * |objective|
  bool clip_psd = false;     // solve with Omega projected onto the PSD cone (reference CLADO)
  double memory_mb = 512;    // for per-depth search states; deeper nodes are rebuilt (slower)
};

struct IqpResult {
  enum class Status { optimal, time_limit, infeasible };
  Status status = Status::infeasible;
  std::vector<int> choice;  // candidate per layer; empty when no feasible assignment is known
  double objective = 0;     // x' Omega x of choice (the clipped Omega when clip_psd); +inf if none
  double bound = 0;         // proven lower bound on the optimum
  double gap = 0;           // (objective - bound) / |objective|; 0 within rounding tolerance
  double seconds = 0;
  int64_t nodes = 0;  // branch-and-bound nodes processed
};

// Optimal means proven within rel_gap, and within 1e-10 of the objective's scale (the sum over
// layers and pairs of layers of their largest |term|) to absorb rounding.
// Throws Error("iqp", ...) on a malformed problem (sizes, non-finite or negative costs, NaN).
IqpResult solve_iqp(const IqpProblem& problem, const IqpOptions& options = {});

// Nearest PSD matrix in Frobenius norm: symmetrise, eigen-decompose, negative eigenvalues -> 0.
Eigen::MatrixXd clip_psd(const Eigen::MatrixXd& m);

// x' Omega x for the one-hot x of choice (choice[i] in [0, C_i)).
double objective(const IqpProblem& problem, const std::vector<int>& choice);

// True when choice meets every budget (within a relative 1e-12 of the budget).
bool feasible(const IqpProblem& problem, const std::vector<int>& choice);

const char* to_string(IqpResult::Status status);

}  // namespace mixq
