// Rank correlation, for checking how well a predicted loss orders assignments.
#pragma once
#include <vector>

namespace mixq {

// Ranks with ties sharing their average rank (1-based).
std::vector<double> ranks(const std::vector<double>& x);
// Spearman's rho: Pearson correlation of the ranks. NaN for fewer than two points or a constant.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace mixq
