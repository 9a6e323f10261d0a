#include "search/iqp_dual.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mixq::iqp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// mu . cost for every label.
std::vector<double> priced(const Model& m, const DualState& s) {
  std::vector<double> out(m.labels, 0.0);
  for (int k = 0; k < m.budgets; ++k) {
    if (s.mu[k] == 0) continue;
    for (int a = 0; a < m.labels; ++a) out[a] += s.mu[k] * m.c(k, a);
  }
  return out;
}

// min over enabled b' of T_ij(a, b') + M[a][j] (the part that depends on b'), for a in layer i.
inline double pair_min(const Model& m, const DualState& s, int a, int i, int j) {
  const double* r = m.row(a);
  const size_t L = m.layers;
  double best = kInf;
  for (int b = m.off[j]; b < m.off[j + 1]; ++b) {
    if (!s.enabled[b]) continue;
    best = std::min(best, r[b] - s.msg[b * L + i]);
  }
  return best;
}

}  // namespace

void DualState::reset(const Model& m) {
  constant = 0;
  base = m.unary;
  theta = m.unary;
  msg.assign(static_cast<size_t>(m.labels) * m.layers, 0.0);
  enabled.assign(m.labels, 1);
  fixed.assign(m.layers, -1);
  mu.assign(m.budgets, 0.0);
  remaining = m.limit;
  free_layers = m.layers;
}

void fix_layer(const Model& m, DualState& s, int i, int a) {
  const size_t L = m.layers;
  s.constant += s.theta[a];
  const double* r = m.row(a);
  for (int j = 0; j < m.layers; ++j) {
    if (j == i || !s.is_free(j)) continue;
    const double ma = s.msg[a * L + j];
    for (int b = m.off[j]; b < m.off[j + 1]; ++b) {
      s.base[b] += r[b] - ma;
      s.theta[b] += r[b] - ma - s.msg[b * L + i];
    }
  }
  for (int k = 0; k < m.budgets; ++k) s.remaining[k] -= m.c(k, a);
  s.fixed[i] = a;
  --s.free_layers;
}

bool propagate_budgets(const Model& m, DualState& s, std::vector<std::pair<int, int>>* fixes) {
  for (bool changed = true; changed;) {
    changed = false;
    for (int k = 0; k < m.budgets; ++k) {
      if (!std::isfinite(s.remaining[k])) continue;
      double least = 0;
      for (int i = 0; i < m.layers; ++i) {
        if (!s.is_free(i)) continue;
        double lo = kInf;
        for (int a = m.off[i]; a < m.off[i + 1]; ++a)
          if (s.enabled[a]) lo = std::min(lo, m.c(k, a));
        least += lo;
      }
      if (!(least <= s.remaining[k])) return false;
      for (int i = 0; i < m.layers; ++i) {
        if (!s.is_free(i)) continue;
        double lo = kInf;
        for (int a = m.off[i]; a < m.off[i + 1]; ++a)
          if (s.enabled[a]) lo = std::min(lo, m.c(k, a));
        for (int a = m.off[i]; a < m.off[i + 1]; ++a) {
          if (s.enabled[a] && m.c(k, a) - lo + least > s.remaining[k]) {
            s.enabled[a] = 0;
            changed = true;
          }
        }
      }
    }
    for (int i = 0; i < m.layers; ++i) {
      if (!s.is_free(i)) continue;
      int count = 0, last = -1;
      for (int a = m.off[i]; a < m.off[i + 1]; ++a)
        if (s.enabled[a]) ++count, last = a;
      if (count == 0) return false;
      if (count == 1) {
        fix_layer(m, s, i, last);
        if (fixes) fixes->emplace_back(i, last);
        changed = true;
      }
    }
  }
  return true;
}

double dual_value(const Model& m, const DualState& s) {
  const std::vector<double> mc = priced(m, s);
  const size_t L = m.layers;
  double d = s.constant;
  for (int k = 0; k < m.budgets; ++k)
    if (s.mu[k] != 0) d -= s.mu[k] * s.remaining[k];
  for (int i = 0; i < m.layers; ++i) {
    if (!s.is_free(i)) continue;
    double lo = kInf;
    for (int a = m.off[i]; a < m.off[i + 1]; ++a)
      if (s.enabled[a]) lo = std::min(lo, s.theta[a] + mc[a]);
    d += lo;
    for (int j = i + 1; j < m.layers; ++j) {
      if (!s.is_free(j)) continue;
      double pl = kInf;
      for (int a = m.off[i]; a < m.off[i + 1]; ++a)
        if (s.enabled[a]) pl = std::min(pl, pair_min(m, s, a, i, j) - s.msg[a * L + j]);
      d += pl;
    }
  }
  return d;
}

void update_multipliers(const Model& m, DualState& s) {
  std::vector<double> alpha(m.labels);
  std::vector<double> points;
  for (int k = 0; k < m.budgets; ++k) {
    if (!std::isfinite(s.remaining[k])) {
      s.mu[k] = 0;
      continue;
    }
    // Lines alpha + mu_k * cost_k per label; D along mu_k is their per-layer minimum, summed,
    // minus mu_k * remaining: concave, piecewise linear, maximal at 0 or at a breakpoint.
    const double old = s.mu[k];
    s.mu[k] = 0;
    const std::vector<double> mc = priced(m, s);
    for (int a = 0; a < m.labels; ++a) alpha[a] = s.theta[a] + mc[a];
    points.clear();
    for (int i = 0; i < m.layers; ++i) {
      if (!s.is_free(i)) continue;
      for (int a = m.off[i]; a < m.off[i + 1]; ++a) {
        if (!s.enabled[a]) continue;
        for (int b = a + 1; b < m.off[i + 1]; ++b) {
          if (!s.enabled[b] || m.c(k, a) == m.c(k, b)) continue;
          const double t = (alpha[a] - alpha[b]) / (m.c(k, b) - m.c(k, a));
          if (t > 0 && std::isfinite(t)) points.push_back(t);
        }
      }
    }
    std::sort(points.begin(), points.end());
    points.erase(std::unique(points.begin(), points.end()), points.end());
    // Slope of D on the interval starting at points[j] (j = -1: the interval from 0).
    auto slope = [&](int j) {
      const double lo = j < 0 ? 0.0 : points[j];
      const bool last = j + 1 >= static_cast<int>(points.size());
      const double mid = last ? (lo > 0 ? 2 * lo : 1.0) : 0.5 * (lo + points[j + 1]);
      double g = -s.remaining[k];
      for (int i = 0; i < m.layers; ++i) {
        if (!s.is_free(i)) continue;
        double best = kInf, used = 0;
        for (int a = m.off[i]; a < m.off[i + 1]; ++a) {
          if (!s.enabled[a]) continue;
          double v = alpha[a] + mid * m.c(k, a);
          if (v < best || (v == best && m.c(k, a) < used)) best = v, used = m.c(k, a);
        }
        g += used;
      }
      return g;
    };
    // First interval whose slope is <= 0; the maximum sits at its left end.
    int lo = -1, hi = static_cast<int>(points.size()) - 1;
    if (slope(hi) > 0) {
      // Still rising past the last breakpoint: the budget cannot be met (propagation rules that
      // out); keep the old value rather than run off to infinity.
      s.mu[k] = old;
      continue;
    }
    while (lo < hi) {
      const int mid = lo + (hi - lo) / 2;  // lo <= mid < hi
      if (slope(mid) <= 0)
        hi = mid;
      else
        lo = mid + 1;
    }
    s.mu[k] = lo < 0 ? 0.0 : points[lo];
  }
}

void sweep(const Model& m, DualState& s, bool reverse) {
  const std::vector<double> mc = priced(m, s);
  const size_t L = m.layers;
  std::vector<int> free;
  for (int i = 0; i < m.layers; ++i)
    if (s.is_free(i)) free.push_back(i);
  if (reverse) std::reverse(free.begin(), free.end());
  const int deg = static_cast<int>(free.size()) - 1;
  if (deg <= 0) return;
  std::vector<double> part(L);
  for (int i : free) {
    for (int a = m.off[i]; a < m.off[i + 1]; ++a) {
      if (!s.enabled[a]) continue;
      // Pull every pair's minimum over the other layer into the label, then hand the total
      // back in equal shares to the label and to each pair (any non-negative split is an exact
      // block update; equal shares reached the LP optimum more often than TRW-S-like ones).
      double h = s.theta[a] + mc[a];
      double* ma = s.msg.data() + a * L;
      for (int j : free) {
        if (j == i) continue;
        part[j] = pair_min(m, s, a, i, j) - ma[j];
        h += part[j];
      }
      const double share = h / (deg + 1);
      double t = s.base[a];
      for (int j : free) {
        if (j == i) continue;
        ma[j] += part[j] - share;
        t += ma[j];
      }
      s.theta[a] = t;
    }
  }
}

void star_values(const Model& m, const DualState& s, std::vector<double>& h,
                 std::vector<double>& star) {
  const std::vector<double> mc = priced(m, s);
  const size_t L = m.layers;
  h.assign(m.labels, kInf);
  star.assign(m.layers, 0.0);
  std::vector<double> pl(m.layers);
  for (int i = 0; i < m.layers; ++i) {
    if (!s.is_free(i)) continue;
    double lo = kInf;
    std::fill(pl.begin(), pl.end(), kInf);
    for (int a = m.off[i]; a < m.off[i + 1]; ++a) {
      if (!s.enabled[a]) continue;
      lo = std::min(lo, s.theta[a] + mc[a]);
      double v = s.theta[a] + mc[a];
      for (int j = 0; j < m.layers; ++j) {
        if (j == i || !s.is_free(j)) continue;
        const double t = pair_min(m, s, a, i, j) - s.msg[a * L + j];
        v += t;
        pl[j] = std::min(pl[j], t);
      }
      h[a] = v;
    }
    double st = lo;
    for (int j = 0; j < m.layers; ++j)
      if (j != i && s.is_free(j)) st += pl[j];
    star[i] = st;
  }
}

}  // namespace mixq::iqp
