#include "search/iqp_model.h"

#include <algorithm>
#include <cmath>

namespace mixq::iqp {

Model::Model(const IqpProblem& p, const Eigen::MatrixXd& omega) {
  layers = static_cast<int>(p.candidates.size());
  budgets = static_cast<int>(p.budgets.size());
  off.assign(layers + 1, 0);
  for (int i = 0; i < layers; ++i) off[i + 1] = off[i] + p.candidates[i];
  labels = off[layers];
  layer_of.resize(labels);
  for (int i = 0; i < layers; ++i)
    std::fill(layer_of.begin() + off[i], layer_of.begin() + off[i + 1], i);
  unary.resize(labels);
  pair.assign(static_cast<size_t>(labels) * labels, 0.0);
  for (int a = 0; a < labels; ++a) {
    unary[a] = omega(a, a);
    for (int b = 0; b < labels; ++b) {
      // omega(a,b) + omega(b,a): the pair's whole contribution, symmetric even if omega is not.
      if (layer_of[a] != layer_of[b])
        pair[static_cast<size_t>(a) * labels + b] = omega(a, b) + omega(b, a);
    }
  }
  cost.resize(static_cast<size_t>(budgets) * labels);
  limit.resize(budgets);
  for (int k = 0; k < budgets; ++k) {
    std::copy(p.costs[k].begin(), p.costs[k].end(), cost.begin() + static_cast<size_t>(k) * labels);
    const double b = p.budgets[k];
    limit[k] = std::isfinite(b) ? b + 1e-12 * std::abs(b) : b;
  }
  scale = 0;
  for (int i = 0; i < layers; ++i) {
    double big = 0;
    for (int a = off[i]; a < off[i + 1]; ++a) big = std::max(big, std::abs(unary[a]));
    scale += big;
    for (int j = i + 1; j < layers; ++j) {
      double pbig = 0;
      for (int a = off[i]; a < off[i + 1]; ++a)
        for (int b = off[j]; b < off[j + 1]; ++b) pbig = std::max(pbig, std::abs(row(a)[b]));
      scale += pbig;
    }
  }
}

double Model::energy(const std::vector<int>& x) const {
  double e = 0;
  for (int i = 0; i < layers; ++i) {
    e += unary[x[i]];
    const double* r = row(x[i]);
    for (int j = i + 1; j < layers; ++j) e += r[x[j]];
  }
  return e;
}

bool Model::fits(const std::vector<int>& x) const {
  for (int k = 0; k < budgets; ++k) {
    double load = 0;
    for (int i = 0; i < layers; ++i) load += c(k, x[i]);
    if (load > limit[k]) return false;
  }
  return true;
}

}  // namespace mixq::iqp
