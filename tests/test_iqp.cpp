#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include "base/error.h"
#include "search/iqp.h"
#include "search/iqp_synth.h"

#if defined(MIXQ_HAVE_CBC)
#include <coin/CbcModel.hpp>
#include <coin/CbcSolver.hpp>
#include <coin/CoinPackedMatrix.hpp>
#include <coin/OsiClpSolverInterface.hpp>
#endif

using namespace mixq;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

int total(const IqpProblem& p) {
  int n = 0;
  for (int c : p.candidates) n += c;
  return n;
}

// Sum of the largest |term| of each layer and pair of layers: the objective's scale.
double scale(const IqpProblem& p) {
  const int n = total(p);
  std::vector<int> layer(n);
  for (int i = 0, a = 0; i < static_cast<int>(p.candidates.size()); ++i)
    for (int b = 0; b < p.candidates[i]; ++b) layer[a++] = i;
  double s = 0;
  for (int a = 0; a < n; ++a)
    for (int b = a; b < n; ++b)
      if (a == b || layer[a] != layer[b]) s += std::abs(p.omega(a, b)) * (a == b ? 1 : 2);
  return s;
}

struct Brute {
  double best = kInf;
  std::vector<int> choice;
};

// Exhaustive search, accumulating the energy and loads layer by layer.
Brute brute_force(const IqpProblem& p) {
  const int L = static_cast<int>(p.candidates.size());
  const size_t K = p.budgets.size();
  std::vector<int> off(L + 1, 0), x(L, 0), label(L);
  for (int i = 0; i < L; ++i) off[i + 1] = off[i] + p.candidates[i];
  Brute out;
  std::vector<double> load(K, 0.0);
  auto rec = [&](auto&& self, int i, double e) -> void {
    if (i == L) {
      for (size_t k = 0; k < K; ++k)
        if (load[k] > p.budgets[k] + 1e-12 * std::abs(p.budgets[k])) return;
      if (e < out.best) out.best = e, out.choice = x;
      return;
    }
    for (int b = 0; b < p.candidates[i]; ++b) {
      const int a = off[i] + b;
      double de = p.omega(a, a);
      for (int j = 0; j < i; ++j) de += 2 * p.omega(a, label[j]);
      x[i] = b, label[i] = a;
      for (size_t k = 0; k < K; ++k) load[k] += p.costs[k][a];
      self(self, i + 1, e + de);
      for (size_t k = 0; k < K; ++k) load[k] -= p.costs[k][a];
    }
  };
  rec(rec, 0, 0.0);
  return out;
}

// Random problem: omega indefinite (symmetric Gaussian) or PSD (A A'), zero inside layers or
// not, one or two budgets placed between the cheapest and the dearest assignment, or below the
// cheapest (infeasible), or two budgets each feasible but not together.
IqpProblem random_problem(std::mt19937_64& rng, int layers, int max_cand, int kind) {
  std::uniform_int_distribution<int> cand(1, max_cand);
  std::normal_distribution<double> z(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  IqpProblem p;
  for (int i = 0; i < layers; ++i) p.candidates.push_back(max_cand == 3 ? 3 : cand(rng));
  const int n = total(p);
  Eigen::MatrixXd a(n, n);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) a(r, c) = z(rng);
  const bool psd = kind % 2 == 0;
  Eigen::MatrixXd om =
      psd ? Eigen::MatrixXd(a * a.transpose() / n) : Eigen::MatrixXd(0.5 * (a + a.transpose()));
  if (kind % 3 == 0) {
    for (int i = 0, o = 0; i < layers; o += p.candidates[i++])
      for (int b = 0; b < p.candidates[i]; ++b)
        for (int e = 0; e < p.candidates[i]; ++e)
          if (b != e) om(o + b, o + e) = 0;
  }
  p.omega = om;
  const int budgets = 1 + (kind / 2) % 2;
  const bool complementary = kind % 7 == 3;
  for (int k = 0; k < budgets; ++k) {
    std::vector<double> c(n);
    for (int r = 0; r < n; ++r) c[r] = std::floor(u(rng) * 10);
    if (complementary && k == 1)
      for (int r = 0; r < n; ++r) c[r] = 9 - p.costs[0][r];
    double lo = 0, hi = 0;
    for (int i = 0, o = 0; i < layers; o += p.candidates[i++]) {
      lo += *std::min_element(c.begin() + o, c.begin() + o + p.candidates[i]);
      hi += *std::max_element(c.begin() + o, c.begin() + o + p.candidates[i]);
    }
    const double f[] = {0.0, 0.15, 0.4, 0.7, 1.0};
    double budget = std::floor(lo + f[(kind + k) % 5] * (hi - lo));
    if (kind % 11 == 5) budget = lo - 1;                            // plainly infeasible
    if (complementary) budget = std::floor(lo + 0.45 * (hi - lo));  // maybe jointly infeasible
    p.costs.push_back(c);
    p.budgets.push_back(budget);
  }
  return p;
}

void expect_same_as_brute(const IqpProblem& p, const IqpOptions& o, const std::string& what) {
  const Brute want = brute_force(p);
  const IqpResult got = solve_iqp(p, o);
  const double tol = 1e-8 * (1 + scale(p));
  if (!std::isfinite(want.best)) {
    EXPECT_EQ(got.status, IqpResult::Status::infeasible) << what;
    EXPECT_TRUE(got.choice.empty()) << what;
    return;
  }
  ASSERT_EQ(got.status, IqpResult::Status::optimal) << what;
  ASSERT_EQ(got.choice.size(), p.candidates.size()) << what;
  EXPECT_TRUE(feasible(p, got.choice)) << what;
  EXPECT_NEAR(got.objective, want.best, tol) << what;
  EXPECT_NEAR(objective(p, got.choice), got.objective, tol) << what;
  EXPECT_LE(got.bound, got.objective + tol) << what;
  EXPECT_GE(got.bound, want.best - tol) << what;
  EXPECT_LE(got.gap, 1e-8) << what;
}

}  // namespace

TEST(IqpBruteForce, HundredsOfRandomInstances) {
  std::mt19937_64 rng(7);
  int infeasible = 0, solved = 0;
  for (int t = 0; t < 400; ++t) {
    const int layers = 1 + t % 10;
    const int max_cand = t % 4 == 0 ? 4 : 3;
    IqpProblem p = random_problem(rng, layers, max_cand, t);
    const Brute want = brute_force(p);
    (std::isfinite(want.best) ? solved : infeasible)++;
    expect_same_as_brute(p, {}, "instance " + std::to_string(t));
  }
  // The generator must exercise both outcomes.
  EXPECT_GT(infeasible, 20);
  EXPECT_GT(solved, 300);
}

TEST(IqpBruteForce, ClippedOmegaAndSyntheticClado) {
  std::mt19937_64 rng(11);
  for (int t = 0; t < 60; ++t) {
    OmegaModel md;
    md.seed = 100 + t;
    md.cross_mean = 0.3, md.cross_sd = 0.8, md.diag_noise = 1e-3;
    const int layers = 4 + t % 7;
    std::vector<int64_t> w(layers);
    for (auto& v : w) v = 1 + rng() % 1000;
    IqpProblem p = size_problem(synth_omega(layers, md), w, {2, 4, 8}, 2.5 + 0.1 * (t % 40));
    IqpOptions o;
    o.clip_psd = t % 2 == 1;
    if (o.clip_psd) {
      IqpProblem q = p;
      q.omega = clip_psd(p.omega);
      const IqpResult r = solve_iqp(p, o);
      const Brute want = brute_force(q);
      ASSERT_EQ(r.status, IqpResult::Status::optimal);
      EXPECT_NEAR(r.objective, want.best, 1e-8 * (1 + scale(q))) << t;
      EXPECT_NEAR(objective(q, r.choice), r.objective, 1e-8 * (1 + scale(q))) << t;
    } else {
      expect_same_as_brute(p, o, "synthetic " + std::to_string(t));
    }
  }
}

TEST(IqpBruteForce, SameAnswerWithoutStoredSearchStates) {
  // With no memory for per-depth states every node is rebuilt from the root: slower, same answer.
  std::mt19937_64 rng(3);
  IqpOptions o;
  o.memory_mb = 0;
  for (int t = 0; t < 60; ++t) {
    IqpProblem p = random_problem(rng, 6 + t % 5, 3, t);
    expect_same_as_brute(p, o, "rebuilt " + std::to_string(t));
  }
}

TEST(IqpBruteForce, RelativeGapIsHonoured) {
  std::mt19937_64 rng(5);
  IqpOptions o;
  o.rel_gap = 0.05;
  for (int t = 0; t < 60; ++t) {
    IqpProblem p = random_problem(rng, 8 + t % 3, 3, 2 * t);  // PSD: positive optimum
    const Brute want = brute_force(p);
    if (!std::isfinite(want.best)) continue;
    const IqpResult r = solve_iqp(p, o);
    ASSERT_EQ(r.status, IqpResult::Status::optimal);
    const double tol = 1e-8 * (1 + scale(p));
    EXPECT_LE(r.bound, want.best + tol);
    EXPECT_GE(r.objective, want.best - tol);
    EXPECT_LE(r.objective - r.bound, 0.05 * std::abs(r.objective) + tol);
    EXPECT_NEAR(r.gap, (r.objective - r.bound) / std::abs(r.objective), 1e-9);
  }
}

TEST(IqpEdges, TrivialShapes) {
  IqpProblem empty;
  empty.omega.resize(0, 0);
  IqpResult r = solve_iqp(empty);
  EXPECT_EQ(r.status, IqpResult::Status::optimal);
  EXPECT_TRUE(r.choice.empty());
  EXPECT_EQ(r.objective, 0);

  IqpProblem one;
  one.candidates = {1, 1};
  one.omega = Eigen::MatrixXd{{1.0, -3.0}, {-3.0, 2.0}};
  r = solve_iqp(one);
  EXPECT_EQ(r.status, IqpResult::Status::optimal);
  EXPECT_EQ(r.choice, (std::vector<int>{0, 0}));
  EXPECT_DOUBLE_EQ(r.objective, -3.0);

  // No budget: pairs decide. Layer 0 alone prefers candidate 0, but candidate 1 pairs better.
  IqpProblem two;
  two.candidates = {2, 2};
  two.omega = Eigen::MatrixXd{{0, 0, 5, 5}, {0, 1, -5, 5}, {5, -5, 0, 0}, {5, 5, 0, 0}};
  r = solve_iqp(two);
  EXPECT_EQ(r.choice, (std::vector<int>{1, 0}));
  EXPECT_DOUBLE_EQ(r.objective, 1 - 10);

  // An infinite budget never binds; a budget below every assignment is infeasible.
  two.costs = {{1, 2, 1, 2}};
  two.budgets = {kInf};
  EXPECT_DOUBLE_EQ(solve_iqp(two).objective, -9);
  two.budgets = {1.5};
  r = solve_iqp(two);
  EXPECT_EQ(r.status, IqpResult::Status::infeasible);
  EXPECT_TRUE(r.choice.empty());
  two.budgets = {3};
  r = solve_iqp(two);
  EXPECT_EQ(r.status, IqpResult::Status::optimal);
  EXPECT_DOUBLE_EQ(r.objective, -9);
  two.budgets = {2};
  EXPECT_DOUBLE_EQ(solve_iqp(two).objective, 10);

  // All-zero Omega: objective 0, and the gap relative to 0 is still reported as closed.
  two.omega.setZero();
  r = solve_iqp(two);
  EXPECT_EQ(r.status, IqpResult::Status::optimal);
  EXPECT_EQ(r.objective, 0);
  EXPECT_EQ(r.gap, 0);
}

TEST(IqpEdges, MalformedProblemsThrow) {
  IqpProblem p;
  p.candidates = {2, 2};
  p.omega = Eigen::MatrixXd::Identity(4, 4);
  EXPECT_NO_THROW(solve_iqp(p));
  IqpProblem q = p;
  q.omega = Eigen::MatrixXd::Identity(3, 3);
  EXPECT_THROW(solve_iqp(q), Error);
  q = p;
  q.candidates = {2, 0, 2};
  EXPECT_THROW(solve_iqp(q), Error);
  q = p;
  q.omega(1, 2) = std::nan("");
  EXPECT_THROW(solve_iqp(q), Error);
  q = p;
  q.costs = {{1, 1, 1}};
  q.budgets = {2};
  EXPECT_THROW(solve_iqp(q), Error);
  q.costs = {{1, 1, -1, 1}};
  EXPECT_THROW(solve_iqp(q), Error);
  q.costs = {{1, 1, 1, 1}};
  q.budgets = {};
  EXPECT_THROW(solve_iqp(q), Error);
  IqpOptions o;
  o.time_limit_s = -1;
  EXPECT_THROW(solve_iqp(p, o), Error);
  EXPECT_THROW(objective(p, {0, 2}), Error);
  EXPECT_THROW(objective(p, {0}), Error);
}

TEST(IqpEdges, ObjectiveIsTheQuadraticForm) {
  std::mt19937_64 rng(9);
  IqpProblem p = random_problem(rng, 5, 4, 1);
  std::vector<int> choice(5);
  for (int t = 0; t < 20; ++t) {
    Eigen::VectorXd x = Eigen::VectorXd::Zero(total(p));
    for (int i = 0, o = 0; i < 5; o += p.candidates[i++]) {
      choice[i] = static_cast<int>(rng() % p.candidates[i]);
      x(o + choice[i]) = 1;
    }
    EXPECT_NEAR(objective(p, choice), x.dot(p.omega * x), 1e-12 * (1 + scale(p)));
  }
}

TEST(IqpEdges, Deterministic) {
  OmegaModel md;
  md.seed = 4;
  const auto r50 = resnet50_weights();
  const std::vector<int64_t> w(r50.begin(), r50.begin() + 30);
  const IqpProblem p = size_problem(synth_omega(30, md), w, {2, 4, 8}, 3.5);
  const IqpResult a = solve_iqp(p), b = solve_iqp(p);
  EXPECT_EQ(a.choice, b.choice);
  EXPECT_EQ(a.nodes, b.nodes);
  EXPECT_EQ(a.objective, b.objective);
  EXPECT_EQ(a.bound, b.bound);
}

TEST(IqpClipPsd, IsTheNearestPsdMatrix) {
  std::mt19937_64 rng(2);
  std::normal_distribution<double> z(0.0, 1.0);
  for (int n : {1, 5, 30}) {
    Eigen::MatrixXd a(n, n);
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < n; ++c) a(r, c) = z(rng);
    const Eigen::MatrixXd m = 0.5 * (a + a.transpose());
    const Eigen::MatrixXd c = clip_psd(m);
    const double eps = 1e-10 * (1 + m.norm());
    EXPECT_LT((c - c.transpose()).norm(), eps);
    // Optimality conditions of the projection onto the PSD cone: C >= 0, C - M >= 0, <C, C-M> = 0.
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ec(c), er(c - m);
    EXPECT_GE(ec.eigenvalues().minCoeff(), -eps);
    EXPECT_GE(er.eigenvalues().minCoeff(), -eps);
    EXPECT_NEAR((c.cwiseProduct(c - m)).sum(), 0.0, eps);
    // And no PSD matrix from a few families is nearer.
    const double d = (c - m).norm();
    for (int t = 0; t < 50; ++t) {
      Eigen::MatrixXd b(n, n);
      for (int r = 0; r < n; ++r)
        for (int col = 0; col < n; ++col) b(r, col) = 0.3 * z(rng);
      const Eigen::MatrixXd psd = (c + b * b.transpose()) * (0.5 + 0.02 * t);
      EXPECT_LE(d, (psd - m).norm() + eps);
    }
    const double shift =
        std::max(0.0, -Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd>(m).eigenvalues().minCoeff());
    EXPECT_LE(d, (m + shift * Eigen::MatrixXd::Identity(n, n) - m).norm() + eps);
    // A PSD matrix is its own projection; projecting twice changes nothing.
    EXPECT_LT((clip_psd(c) - c).norm(), eps);
    const Eigen::MatrixXd g = a * a.transpose();
    EXPECT_LT((clip_psd(g) - g).norm(), 1e-10 * (1 + g.norm()));
  }
}

TEST(IqpTimeLimit, HardInstanceStopsInTimeWithAGap) {
  // Dense Gaussian couplings, 70 layers x 4: far beyond what the bound closes in a second.
  std::mt19937_64 rng(13);
  std::normal_distribution<double> z(0.0, 1.0);
  IqpProblem p;
  p.candidates.assign(70, 4);
  const int n = 280;
  Eigen::MatrixXd a(n, n);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) a(r, c) = z(rng);
  p.omega = 0.5 * (a + a.transpose());
  std::vector<double> c(n);
  for (int r = 0; r < n; ++r) c[r] = r % 4;
  p.costs = {c};
  p.budgets = {1.5 * 70};
  for (double limit : {0.0, 0.3, 1.0}) {
    IqpOptions o;
    o.time_limit_s = limit;
    const auto t0 = std::chrono::steady_clock::now();
    const IqpResult r = solve_iqp(p, o);
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(r.status, IqpResult::Status::time_limit) << limit;
    EXPECT_LT(took, limit + 0.3) << limit;
    EXPECT_LE(r.seconds, took);
    if (limit > 0) {
      ASSERT_EQ(r.choice.size(), 70u);
      EXPECT_TRUE(feasible(p, r.choice));
      EXPECT_NEAR(objective(p, r.choice), r.objective, 1e-9 * std::abs(r.objective));
      EXPECT_LT(r.bound, r.objective);
      EXPECT_GT(r.gap, 0);
      EXPECT_TRUE(std::isfinite(r.gap));
    }
  }
}

TEST(IqpSynth, LayerShapesAndFit) {
  const auto r20 = resnet20_weights(), r50 = resnet50_weights();
  ASSERT_EQ(r20.size(), 18u);
  ASSERT_EQ(r50.size(), 52u);
  int64_t s20 = 0, s50 = 0;
  for (auto w : r20) s20 += w;
  for (auto w : r50) s50 += w;
  EXPECT_EQ(s20, 267264);  // ResNet-20 without its first conv and classifier
  // ResNet-50: 25,557,032 parameters minus conv1 (9,408), fc (2,049,000) and batch norms (53,120).
  EXPECT_EQ(s50, 23445504);
  OmegaModel md;
  md.log_mean = {0.0, -3.0, -7.0};
  md.layer_sd = 0.8, md.candidate_sd = 0.25, md.cross_mean = 0.2, md.cross_sd = 0.3, md.decay = 3;
  md.seed = 21, md.diag_noise = 0;
  const OmegaModel fit = fit_omega_model(synth_omega(200, md), 3);
  for (int b = 0; b < 3; ++b) EXPECT_NEAR(fit.log_mean[b], md.log_mean[b], 0.2);
  EXPECT_NEAR(fit.layer_sd, md.layer_sd, 0.15);
  EXPECT_NEAR(fit.candidate_sd, md.candidate_sd, 0.05);
  EXPECT_NEAR(fit.cross_mean, md.cross_mean, 0.05);
  EXPECT_NEAR(fit.cross_sd, md.cross_sd, 0.05);
  EXPECT_NEAR(fit.decay, md.decay, 0.6);
  EXPECT_EQ(fit.diag_noise, 0);
  // With noisy near-zero entries (8-bit at the noise level, as measured), the cross statistics
  // still come from the terms that stand clear of the noise.
  md.diag_noise = 1e-3;
  const OmegaModel noisy = fit_omega_model(synth_omega(200, md), 3);
  EXPECT_NEAR(noisy.cross_mean, md.cross_mean, 0.1);
  EXPECT_NEAR(noisy.cross_sd, md.cross_sd, 0.1);
  EXPECT_GT(noisy.diag_noise, 0);
  // Steep by construction: for most layers 2 bits hurt more than 4, and 4 more than 8.
  const Eigen::MatrixXd om = synth_omega(52, OmegaModel{});
  int ordered = 0;
  for (int i = 0; i < 52; ++i)
    ordered += om(3 * i, 3 * i) > om(3 * i + 1, 3 * i + 1) &&
               om(3 * i + 1, 3 * i + 1) > om(3 * i + 2, 3 * i + 2);
  EXPECT_GE(ordered, 50);
}

#if defined(MIXQ_HAVE_CBC)
namespace {

// The linearised IQP (Adams-Johnson): y_(a,a') for labels of two layers i < j with
// sum_a' y = x_a and sum_a y = x_a'; exact for binary x, solved by CBC.
struct CbcAnswer {
  bool optimal = false, infeasible = false;
  double objective = kInf;
};

CbcAnswer solve_with_cbc(const IqpProblem& p) {
  const int L = static_cast<int>(p.candidates.size()), n = total(p);
  std::vector<int> off(L + 1, 0);
  for (int i = 0; i < L; ++i) off[i + 1] = off[i] + p.candidates[i];
  std::vector<double> obj, lo, hi;
  for (int a = 0; a < n; ++a) obj.push_back(p.omega(a, a)), lo.push_back(0), hi.push_back(1);
  CoinPackedMatrix rows(false, 0, 0);
  std::vector<double> rlo, rhi;
  auto add_row = [&](const std::vector<int>& idx, const std::vector<double>& val, double l,
                     double h) {
    rows.appendRow(static_cast<int>(idx.size()), idx.data(), val.data());
    rlo.push_back(l), rhi.push_back(h);
  };
  for (int i = 0; i < L; ++i) {
    std::vector<int> idx;
    for (int a = off[i]; a < off[i + 1]; ++a) idx.push_back(a);
    add_row(idx, std::vector<double>(idx.size(), 1.0), 1, 1);
  }
  for (size_t k = 0; k < p.budgets.size(); ++k) {
    std::vector<int> idx;
    for (int a = 0; a < n; ++a) idx.push_back(a);
    add_row(idx, p.costs[k], -COIN_DBL_MAX, p.budgets[k]);
  }
  for (int i = 0; i < L; ++i)
    for (int j = i + 1; j < L; ++j) {
      const int ci = p.candidates[i], cj = p.candidates[j], first = static_cast<int>(obj.size());
      for (int a = 0; a < ci; ++a)
        for (int b = 0; b < cj; ++b) {
          obj.push_back(p.omega(off[i] + a, off[j] + b) + p.omega(off[j] + b, off[i] + a));
          lo.push_back(0), hi.push_back(1);
        }
      for (int a = 0; a < ci; ++a) {
        std::vector<int> idx = {off[i] + a};
        std::vector<double> val = {-1};
        for (int b = 0; b < cj; ++b) idx.push_back(first + a * cj + b), val.push_back(1);
        add_row(idx, val, 0, 0);
      }
      for (int b = 0; b < cj; ++b) {
        std::vector<int> idx = {off[j] + b};
        std::vector<double> val = {-1};
        for (int a = 0; a < ci; ++a) idx.push_back(first + a * cj + b), val.push_back(1);
        add_row(idx, val, 0, 0);
      }
    }
  OsiClpSolverInterface solver;
  solver.loadProblem(rows, lo.data(), hi.data(), obj.data(), rlo.data(), rhi.data());
  for (int a = 0; a < n; ++a) solver.setInteger(a);
  solver.messageHandler()->setLogLevel(0);
  CbcModel model(solver);
  CbcMain0(model);
  const char* argv[] = {"iqp",  "-log",  "0",   "-ratioGap", "0",    "-allowableGap",
                        "1e-9", "-cuts", "off", "-solve",    "-quit"};
  CbcMain1(11, argv, model);
  CbcAnswer out;
  out.optimal = model.isProvenOptimal() && model.bestSolution() != nullptr;
  out.infeasible = model.isProvenInfeasible();
  if (out.optimal) out.objective = model.getObjValue();
  return out;
}

}  // namespace

TEST(IqpCbc, MediumInstancesMatchCbc) {
  std::mt19937_64 rng(17);
  const int sizes[] = {15, 20, 18, 15, 20, 17, 16};
  for (int t = 0; t < 7; ++t) {
    const int layers = sizes[t];
    IqpProblem p;
    if (t % 2 == 0) {
      OmegaModel md;
      md.seed = 300 + t;
      md.cross_mean = 0.3, md.cross_sd = 0.8, md.diag_noise = 1e-3;
      std::vector<int64_t> w(layers);
      for (auto& v : w) v = 1 + rng() % 5000;
      p = size_problem(synth_omega(layers, md), w, {2, 4, 8}, 3.0 + 0.5 * t);
    } else {
      p = random_problem(rng, layers, 3, 4 * t + 2);
      p.omega *= 0.3;
      for (int a = 0; a < total(p); ++a) p.omega(a, a) *= 10;
    }
    const CbcAnswer want = solve_with_cbc(p);
    const IqpResult got = solve_iqp(p);
    if (want.infeasible) {
      EXPECT_EQ(got.status, IqpResult::Status::infeasible) << t;
      continue;
    }
    ASSERT_TRUE(want.optimal) << t;
    ASSERT_EQ(got.status, IqpResult::Status::optimal) << t;
    EXPECT_TRUE(feasible(p, got.choice)) << t;
    EXPECT_NEAR(got.objective, want.objective, 1e-7 * (1 + scale(p))) << t;
  }
}
#else
TEST(IqpCbc, MediumInstancesMatchCbc) {
  GTEST_SKIP() << "built without CBC (MIXQ_HAVE_CBC)";
}
#endif
