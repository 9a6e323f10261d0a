#include "search/iqp_synth.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "base/error.h"

namespace mixq {
namespace {
const char* kWhere = "iqp_synth";

struct Stats {
  double n = 0, sum = 0, sq = 0;
  void add(double v) { n += 1, sum += v, sq += v * v; }
  double mean() const { return n > 0 ? sum / n : 0; }
  double sd() const { return n > 1 ? std::sqrt(std::max(0.0, (sq - sum * sum / n) / (n - 1))) : 0; }
};
}  // namespace

Eigen::MatrixXd synth_omega(int layers, const OmegaModel& md) {
  check(layers >= 0, kWhere, "negative layer count");
  check(!md.log_mean.empty(), kWhere, "no candidates");
  check(md.decay > 0, kWhere, "decay must be > 0");
  const int c = static_cast<int>(md.log_mean.size());
  const int n = layers * c;
  std::mt19937_64 rng(md.seed);
  std::normal_distribution<double> z(0.0, 1.0);
  std::vector<double> d(n);
  for (int i = 0; i < layers; ++i) {
    const double g = md.layer_sd * z(rng);
    for (int b = 0; b < c; ++b)
      d[i * c + b] = std::exp(md.log_mean[b] + g + md.candidate_sd * z(rng));
  }
  for (int a = 0; a < n; ++a) d[a] += md.diag_noise * z(rng);
  Eigen::MatrixXd om = Eigen::MatrixXd::Zero(n, n);
  for (int a = 0; a < n; ++a) om(a, a) = d[a];
  for (int i = 0; i < layers; ++i) {
    for (int j = i + 1; j < layers; ++j) {
      const double w = std::exp(-(j - i - 1) / md.decay);
      for (int b = 0; b < c; ++b) {
        for (int e = 0; e < c; ++e) {
          const double r = (md.cross_mean + md.cross_sd * z(rng)) * w;
          const double cross = r * std::sqrt(std::abs(d[i * c + b] * d[j * c + e]));
          om(i * c + b, j * c + e) = om(j * c + e, i * c + b) = 0.5 * cross;
        }
      }
    }
  }
  return om;
}

OmegaModel fit_omega_model(const Eigen::MatrixXd& om, int c) {
  check(c >= 1 && om.rows() == om.cols() && om.rows() % c == 0, kWhere,
        "omega size is not a multiple of the candidate count");
  const int layers = static_cast<int>(om.rows()) / c;
  check(layers >= 2, kWhere, "need at least two layers to fit");
  OmegaModel md;
  md.log_mean.assign(c, 0.0);
  // Two-way layout ln d_ic = mu_c + g_i + e_ic over the positive entries.
  std::vector<Stats> col(c);
  Stats negative;
  for (int i = 0; i < layers; ++i)
    for (int b = 0; b < c; ++b) {
      const double v = om(i * c + b, i * c + b);
      if (v > 0)
        col[b].add(std::log(v));
      else
        negative.add(v);
    }
  for (int b = 0; b < c; ++b) md.log_mean[b] = col[b].mean();
  Stats layer, resid;
  std::vector<double> g(layers, 0.0);
  for (int i = 0; i < layers; ++i) {
    Stats s;
    for (int b = 0; b < c; ++b) {
      const double v = om(i * c + b, i * c + b);
      if (v > 0) s.add(std::log(v) - md.log_mean[b]);
    }
    g[i] = s.mean();
    if (s.n > 0) layer.add(g[i]);
  }
  for (int i = 0; i < layers; ++i)
    for (int b = 0; b < c; ++b) {
      const double v = om(i * c + b, i * c + b);
      if (v > 0) resid.add(std::log(v) - md.log_mean[b] - g[i]);
    }
  md.layer_sd = layer.sd();
  // Residuals of a two-way fit have (C-1)/C of the variance of e.
  md.candidate_sd = c > 1 ? resid.sd() * std::sqrt(static_cast<double>(c) / (c - 1)) : 0.0;
  md.diag_noise = negative.n > 0 ? std::sqrt(negative.sq / negative.n) : 0.0;
  // Cross ratios by layer distance, over pairs whose single terms both stand clear of the noise:
  // a cross term between near-zero (8-bit) entries is measurement noise, and dividing it by
  // sqrt(d d') would swamp the statistics of the terms that matter.
  const double floor = 3 * md.diag_noise;
  std::vector<Stats> by(layers);
  for (int i = 0; i < layers; ++i)
    for (int j = i + 1; j < layers; ++j)
      for (int b = 0; b < c; ++b)
        for (int e = 0; e < c; ++e) {
          const double di = om(i * c + b, i * c + b), dj = om(j * c + e, j * c + e);
          if (di <= floor || dj <= floor) continue;
          by[j - i].add((om(i * c + b, j * c + e) + om(j * c + e, i * c + b)) / std::sqrt(di * dj));
        }
  md.cross_mean = by[1].mean();
  md.cross_sd = by[1].sd();
  // ln rms(k) = ln rms(1) - (k-1)/decay, weighted by the number of pairs at distance k.
  const double rms1 = std::sqrt(by[1].sq / std::max(by[1].n, 1.0));
  double sxx = 0, sxy = 0;
  for (int k = 2; k < layers; ++k) {
    if (by[k].n < 1 || rms1 <= 0) continue;
    const double rms = std::sqrt(by[k].sq / by[k].n);
    if (rms <= 0) continue;
    const double x = k - 1, y = std::log(rms / rms1);
    sxx += by[k].n * x * x, sxy += by[k].n * x * y;
  }
  md.decay = sxy < 0 ? -sxx / sxy : 1e6;
  return md;
}

std::vector<int64_t> resnet20_weights() {
  std::vector<int64_t> w;
  int in = 16;
  for (int width : {16, 32, 64}) {
    for (int blk = 0; blk < 3; ++blk) {
      w.push_back(int64_t{9} * in * width);
      w.push_back(int64_t{9} * width * width);
      in = width;
    }
  }
  return w;
}

std::vector<int64_t> resnet50_weights() {
  std::vector<int64_t> w;
  int in = 64;
  const int widths[] = {64, 128, 256, 512}, blocks[] = {3, 4, 6, 3};
  for (int s = 0; s < 4; ++s) {
    const int width = widths[s], out = 4 * width;
    for (int blk = 0; blk < blocks[s]; ++blk) {
      w.push_back(int64_t{1} * in * width);
      w.push_back(int64_t{9} * width * width);
      w.push_back(int64_t{1} * width * out);
      if (blk == 0) w.push_back(int64_t{1} * in * out);
      in = out;
    }
  }
  return w;
}

IqpProblem size_problem(const Eigen::MatrixXd& omega, const std::vector<int64_t>& weights,
                        const std::vector<int>& bits, double avg_bits) {
  const int layers = static_cast<int>(weights.size()), c = static_cast<int>(bits.size());
  check(omega.rows() == int64_t{layers} * c, kWhere, "omega does not match layers x candidates");
  IqpProblem p;
  p.candidates.assign(layers, c);
  p.omega = omega;
  p.costs.assign(1, std::vector<double>(layers * c));
  double total = 0;
  for (int i = 0; i < layers; ++i) {
    total += static_cast<double>(weights[i]);
    for (int b = 0; b < c; ++b) p.costs[0][i * c + b] = static_cast<double>(weights[i]) * bits[b];
  }
  p.budgets = {avg_bits * total};
  return p;
}

}  // namespace mixq
