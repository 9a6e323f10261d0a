#include "search/iqp_local.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mixq::iqp {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}

void LocalSearch::load(const std::vector<int>& x) {
  field_.assign(m_.labels, 0.0);
  for (int j = 0; j < m_.layers; ++j) {
    const double* r = m_.row(x[j]);  // symmetric: column x_j == row x_j
    for (int a = 0; a < m_.labels; ++a) field_[a] += r[a];
  }
  load_.assign(m_.budgets, 0.0);
  for (int k = 0; k < m_.budgets; ++k)
    for (int i = 0; i < m_.layers; ++i) load_[k] += m_.c(k, x[i]);
}

void LocalSearch::move(std::vector<int>& x, int i, int a) {
  const int old = x[i];
  const double* ro = m_.row(old);
  const double* rn = m_.row(a);
  for (int b = 0; b < m_.labels; ++b) field_[b] += rn[b] - ro[b];
  for (int k = 0; k < m_.budgets; ++k) load_[k] += m_.c(k, a) - m_.c(k, old);
  x[i] = a;
}

double LocalSearch::overrun(const std::vector<double>& load) const {
  double v = 0;
  for (int k = 0; k < m_.budgets; ++k) {
    if (load[k] > m_.limit[k]) v += (load[k] - m_.limit[k]) / std::max(std::abs(m_.limit[k]), 1.0);
  }
  return v;
}

bool LocalSearch::fits_after(int a_out, int a_in) const {
  for (int k = 0; k < m_.budgets; ++k)
    if (load_[k] - m_.c(k, a_out) + m_.c(k, a_in) > m_.limit[k]) return false;
  return true;
}

bool LocalSearch::fits_after(int a_out, int a_in, int b_out, int b_in) const {
  for (int k = 0; k < m_.budgets; ++k) {
    const double l = load_[k] - m_.c(k, a_out) + m_.c(k, a_in) - m_.c(k, b_out) + m_.c(k, b_in);
    if (l > m_.limit[k]) return false;
  }
  return true;
}

bool LocalSearch::repair(std::vector<int>& x, const Deadline& deadline) {
  std::vector<double> trial(m_.budgets);
  double v = overrun(load_);
  while (v > 0) {
    if (deadline.passed()) return false;
    // Smallest energy change per unit of overrun removed; energy-lowering moves rank first.
    double best = kInf, best_cut = 0;
    int bi = -1, ba = -1;
    for (int i = 0; i < m_.layers; ++i) {
      const int o = x[i];
      for (int a = m_.off[i]; a < m_.off[i + 1]; ++a) {
        if (a == o) continue;
        for (int k = 0; k < m_.budgets; ++k) trial[k] = load_[k] - m_.c(k, o) + m_.c(k, a);
        const double cut = v - overrun(trial);
        if (cut <= 0) continue;
        const double de = m_.unary[a] - m_.unary[o] + field_[a] - field_[o];
        const double score = de / cut;
        if (score < best || (score == best && cut > best_cut))
          best = score, best_cut = cut, bi = i, ba = a;
      }
    }
    if (bi < 0) return false;
    move(x, bi, ba);
    v = overrun(load_);
  }
  return true;
}

bool LocalSearch::best_single(std::vector<int>& x, double tol) {
  double best = -tol;
  int bi = -1, ba = -1;
  for (int i = 0; i < m_.layers; ++i) {
    const int o = x[i];
    for (int a = m_.off[i]; a < m_.off[i + 1]; ++a) {
      if (a == o) continue;
      const double de = m_.unary[a] - m_.unary[o] + field_[a] - field_[o];
      if (de < best && fits_after(o, a)) best = de, bi = i, ba = a;
    }
  }
  if (bi < 0) return false;
  move(x, bi, ba);
  return true;
}

bool LocalSearch::best_double(std::vector<int>& x, double tol, const Deadline& deadline) {
  double best = -tol;
  int bi = -1, ba = -1, bj = -1, bb = -1;
  for (int i = 0; i < m_.layers; ++i) {
    if (deadline.passed()) return false;
    const int o = x[i];
    for (int a = m_.off[i]; a < m_.off[i + 1]; ++a) {
      if (a == o) continue;
      const double di = m_.unary[a] - m_.unary[o] + field_[a] - field_[o];
      const double* ra = m_.row(a);
      const double* ro = m_.row(o);
      for (int j = i + 1; j < m_.layers; ++j) {
        const int p = x[j];
        for (int b = m_.off[j]; b < m_.off[j + 1]; ++b) {
          if (b == p) continue;
          const double de = di + m_.unary[b] - m_.unary[p] + field_[b] - field_[p] + ra[b] - ra[p] -
                            ro[b] + ro[p];
          if (de < best && fits_after(o, a, p, b)) best = de, bi = i, ba = a, bj = j, bb = b;
        }
      }
    }
  }
  if (bi < 0) return false;
  move(x, bi, ba);
  move(x, bj, bb);
  return true;
}

bool LocalSearch::run(std::vector<int>& x, double& value, const Deadline& deadline) {
  load(x);
  if (!repair(x, deadline)) return false;
  const double tol = 1e-12 * std::max(m_.scale, 1e-300);
  while (!deadline.passed()) {
    while (!deadline.passed() && best_single(x, tol)) {
    }
    if (!best_double(x, tol, deadline)) break;
  }
  value = m_.energy(x);
  return m_.fits(x);
}

}  // namespace mixq::iqp
