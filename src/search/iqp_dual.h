// Internal to the IQP solver: the Lagrangian dual of one branch-and-bound node.
//
// The node's subproblem (some layers fixed, some labels ruled out) is kept as a reparametrisation
// of its energy: unary theta_i(b) and pairwise T_ij(b,b') = pair - M[(i,b)][j] - M[(j,b')][i],
// where M holds the messages the pairs have passed to their labels. For every assignment of the
// free layers, E = constant + sum_i theta_i + sum_{i<j} T_ij exactly, so
//   D(mu) = constant - mu.remaining + sum_i min_b (theta_i(b) + mu.cost(i,b))
//                                   + sum_{i<j} min_{b,b'} T_ij(b,b')
// is a lower bound on the node for any messages and any mu >= 0 (the budgets are relaxed into the
// objective). Ascent only makes it tighter; no step needs to converge for the bound to hold.
#pragma once
#include <cstdint>
#include <vector>

#include "search/iqp_model.h"

namespace mixq::iqp {

struct DualState {
  double constant = 0;            // energy of the fixed layers, pairs among them included
  std::vector<double> base;       // n: unary with the fixed layers folded in
  std::vector<double> theta;      // n: base + messages from the free layers (a cache)
  std::vector<double> msg;        // n x L: M[a][j], message of pair (layer(a), j) to label a
  std::vector<uint8_t> enabled;   // n: label still allowed
  std::vector<int> fixed;         // L: fixed label, or -1 for a free layer
  std::vector<double> mu;         // K multipliers >= 0
  std::vector<double> remaining;  // K budgets left for the free layers
  int free_layers = 0;

  void reset(const Model& m);  // the root: nothing fixed, zero messages, mu = 0
  bool is_free(int i) const { return fixed[i] < 0; }
};

// Fixes free layer i to label a, folding its unary and pairs into the constant and the others.
void fix_layer(const Model& m, DualState& s, int i, int a);

// Rules out labels that cannot fit the remaining budgets and fixes layers left with one label.
// Appends the fixes to *fixes when given. Returns false when the node has no feasible assignment.
bool propagate_budgets(const Model& m, DualState& s, std::vector<std::pair<int, int>>* fixes);

// Value of the dual bound D at the current messages and multipliers.
double dual_value(const Model& m, const DualState& s);

// Sets each multiplier to the exact maximiser of D along its coordinate.
void update_multipliers(const Model& m, DualState& s);

// One pass of MPLP star updates over the free layers: each makes D as large as possible over the
// messages of its layer's pairs. D never decreases.
void sweep(const Model& m, DualState& s, bool reverse);

// Per free layer i: h[a] for its enabled labels (the bound contribution of i's star when i is
// fixed to a) and star[i] (the contribution now). Fixing i to a gives a node whose bound is at
// least D - star[i] + h[a]. Disabled labels get +inf.
void star_values(const Model& m, const DualState& s, std::vector<double>& h,
                 std::vector<double>& star);

}  // namespace mixq::iqp
