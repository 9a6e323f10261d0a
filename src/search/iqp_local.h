// Internal to the IQP solver: primal heuristics. Assignments are one global label per layer.
#pragma once
#include <vector>

#include "search/iqp_model.h"

namespace mixq::iqp {

class LocalSearch {
 public:
  explicit LocalSearch(const Model& m) : m_(m) {}

  // Moves x into the budgets greedily (cheapest loss increase per unit of overrun removed),
  // then improves it by single- and two-layer changes that stay within the budgets.
  // Returns false when repair finds no feasible assignment; value gets E(x) otherwise.
  bool run(std::vector<int>& x, double& value, const Deadline& deadline);

 private:
  void load(const std::vector<int>& x);
  void move(std::vector<int>& x, int i, int a);
  double overrun(const std::vector<double>& load) const;
  bool repair(std::vector<int>& x, const Deadline& deadline);
  bool best_single(std::vector<int>& x, double tol);
  bool best_double(std::vector<int>& x, double tol, const Deadline& deadline);
  bool fits_after(int a_out, int a_in) const;
  bool fits_after(int a_out, int a_in, int b_out, int b_in) const;

  const Model& m_;
  std::vector<double> field_;  // field_[a] = sum over other layers j of pair[a][x_j]
  std::vector<double> load_;   // K budget loads of x
};

}  // namespace mixq::iqp
