#include "search/iqp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "base/error.h"
#include "search/iqp_dual.h"
#include "search/iqp_local.h"
#include "search/iqp_model.h"

namespace mixq {
namespace {

using iqp::Clock;
using iqp::Deadline;
using iqp::DualState;
using iqp::Model;
constexpr double kInf = std::numeric_limits<double>::infinity();
const char* kWhere = "iqp";

void validate(const IqpProblem& p) {
  int64_t n = 0;
  for (size_t i = 0; i < p.candidates.size(); ++i) {
    check(p.candidates[i] >= 1, kWhere, "layer " + std::to_string(i) + " has no candidate");
    n += p.candidates[i];
  }
  // Dense n x n pair tables and one search level per layer: keep both within reason.
  check(n <= 16384, kWhere, "more than 16384 candidates in total");
  check(p.omega.rows() == n && p.omega.cols() == n, kWhere,
        "omega is " + std::to_string(p.omega.rows()) + " x " + std::to_string(p.omega.cols()) +
            ", expected " + std::to_string(n) + " x " + std::to_string(n));
  check(p.omega.allFinite(), kWhere, "omega has a NaN or infinite entry");
  check(p.costs.size() == p.budgets.size(), kWhere,
        std::to_string(p.costs.size()) + " cost rows for " + std::to_string(p.budgets.size()) +
            " budgets");
  for (size_t k = 0; k < p.costs.size(); ++k) {
    const std::string name = "budget " + std::to_string(k);
    check(static_cast<int64_t>(p.costs[k].size()) == n, kWhere,
          name + " has " + std::to_string(p.costs[k].size()) + " costs, expected " +
              std::to_string(n));
    for (double c : p.costs[k])
      check(std::isfinite(c) && c >= 0, kWhere,
            name + " has a cost that is negative or not finite");
    check(!std::isnan(p.budgets[k]), kWhere, name + " is NaN");
  }
}

class Solver {
 public:
  Solver(const Model& m, const IqpOptions& o, Deadline dl) : m_(m), opt_(o), dl_(dl), ls_(m) {
    abs_tol_ = 1e-10 * std::max(m.scale, 1e-300);
    const double bytes = 8.0 * (static_cast<double>(m.labels) * (m.layers + 3) + m.layers) + 64;
    const double budget = std::max(0.0, o.memory_mb) * (1 << 20);
    slots_.resize(static_cast<size_t>(std::clamp(budget / bytes, 1.0, m.layers + 1.0)));
    fixes_.resize(m.layers + 1);
  }

  IqpResult run();

 private:
  double threshold() const {
    if (!std::isfinite(ub_)) return kInf;
    return ub_ - std::max(opt_.rel_gap * std::abs(ub_), abs_tol_);
  }
  void offer(std::vector<int> x);
  void heuristic(std::vector<int> x);
  void explore(int depth, DualState& s, double est);
  bool tighten(int depth, DualState& s, double& d, double& at, std::vector<double>& h,
               std::vector<double>& star);
  DualState* child_state(int depth, const DualState& parent, int layer, int label);

  const Model& m_;
  IqpOptions opt_;
  Deadline dl_;
  iqp::LocalSearch ls_;
  double abs_tol_ = 0;
  std::vector<DualState> slots_;  // slots_[d]: the node at depth d on the current path
  DualState scratch_;             // nodes deeper than the slots, rebuilt from the last slot
  std::vector<std::vector<std::pair<int, int>>> fixes_;  // layers fixed on entering depth d
  std::vector<int> best_;
  bool found_ = false;
  double ub_ = kInf;
  double pruned_ = kInf;  // least bound of a subtree closed by its bound
  double open_ = kInf;    // least bound of a subtree left open by the time limit
  int64_t nodes_ = 0;
  bool stopped_ = false;
};

void Solver::offer(std::vector<int> x) {
  if (!m_.fits(x)) return;
  const double v = m_.energy(x);
  if (!found_ || v < ub_) ub_ = v, best_ = std::move(x), found_ = true;
}

void Solver::heuristic(std::vector<int> x) {
  double v = 0;
  if (ls_.run(x, v, dl_)) offer(std::move(x));
}

// Ascent on the node's dual, then reduced-cost filtering: a label whose child bound reaches the
// threshold is ruled out. Returns false when the node is closed (pruned or infeasible).
// d is the node's best bound so far; h and star come from the final state, whose own bound is
// at (child bounds at - star[i] + h[a] hold for that state only).
bool Solver::tighten(int depth, DualState& s, double& d, double& at, std::vector<double>& h,
                     std::vector<double>& star) {
  const int max_sweeps = depth == 0 ? 400 : 40;
  for (int round = 0; round < 8; ++round) {
    for (int it = 0; it < max_sweeps && s.free_layers > 1; ++it) {
      if (d >= threshold()) break;
      iqp::update_multipliers(m_, s);
      iqp::sweep(m_, s, it % 2 == 1);
      const double nd = iqp::dual_value(m_, s);
      if (dl_.passed()) {
        stopped_ = true;
        open_ = std::min(open_, std::max(d, nd));
        return false;
      }
      const double gain = nd - d;
      d = std::max(d, nd);
      const double room = std::isfinite(threshold()) ? threshold() - d : std::abs(d) + m_.scale;
      if (gain <= 1e-3 * room) break;
    }
    if (d >= threshold()) {
      pruned_ = std::min(pruned_, d);
      return false;
    }
    at = iqp::dual_value(m_, s);
    iqp::star_values(m_, s, h, star);
    bool cut = false;
    const double thr = threshold();
    for (int i = 0; i < m_.layers; ++i) {
      if (!s.is_free(i)) continue;
      int left = 0;
      for (int a = m_.off[i]; a < m_.off[i + 1]; ++a) {
        if (!s.enabled[a]) continue;
        const double e = at - star[i] + h[a];
        if (e >= thr) {
          s.enabled[a] = 0;
          pruned_ = std::min(pruned_, e);
          cut = true;
        } else {
          ++left;
        }
      }
      if (left == 0) return false;
    }
    if (!cut) return true;
    if (!iqp::propagate_budgets(m_, s, &fixes_[depth])) return false;
    d = std::max(d, iqp::dual_value(m_, s));
    if (s.free_layers == 0) return true;
  }
  at = iqp::dual_value(m_, s);
  iqp::star_values(m_, s, h, star);
  return true;
}

DualState* Solver::child_state(int depth, const DualState& parent, int layer, int label) {
  const int cd = depth + 1;
  fixes_[cd].clear();
  fixes_[cd].emplace_back(layer, label);
  DualState* c;
  if (cd < static_cast<int>(slots_.size())) {
    c = &slots_[cd];
    *c = parent;
    iqp::fix_layer(m_, *c, layer, label);
  } else {
    // Out of slots: replay the path's fixes on the deepest stored node (a weaker warm start).
    c = &scratch_;
    const int top = static_cast<int>(slots_.size()) - 1;
    *c = slots_[top];
    for (int d = top + 1; d <= cd; ++d)
      for (auto [i, a] : fixes_[d])
        if (c->is_free(i)) iqp::fix_layer(m_, *c, i, a);
  }
  if (!iqp::propagate_budgets(m_, *c, &fixes_[cd])) return nullptr;
  return c;
}

void Solver::explore(int depth, DualState& s, double est) {
  if (stopped_ || dl_.passed()) {
    stopped_ = true;
    open_ = std::min(open_, est);
    return;
  }
  ++nodes_;
  if (s.free_layers == 0) {
    offer(s.fixed);
    return;
  }
  double d = std::max(est, iqp::dual_value(m_, s));
  std::vector<double> h, star;
  double at = d;
  if (!tighten(depth, s, d, at, h, star)) return;
  if (s.free_layers == 0) {
    offer(s.fixed);
    return;
  }
  if (depth <= 2 || nodes_ % 16 == 0) {
    std::vector<int> x = s.fixed;
    for (int i = 0; i < m_.layers; ++i) {
      if (!s.is_free(i)) continue;
      for (int a = m_.off[i]; a < m_.off[i + 1]; ++a)
        if (s.enabled[a] && (x[i] < 0 || h[a] < h[x[i]])) x[i] = a;
    }
    heuristic(std::move(x));
  }
  // Branch on the layer whose best child is pushed up the most: every child of it starts
  // above this node's bound (10x fewer nodes than favouring the second-best child, which
  // mostly prunes the other children at once but leaves the best one where it was).
  int bi = -1;
  double best_first = -1, best_second = -1;
  for (int i = 0; i < m_.layers; ++i) {
    if (!s.is_free(i)) continue;
    double first = kInf, second = kInf;
    for (int a = m_.off[i]; a < m_.off[i + 1]; ++a) {
      if (!s.enabled[a]) continue;
      const double r = h[a] - star[i];
      if (r < first)
        second = first, first = r;
      else if (r < second)
        second = r;
    }
    if (first > best_first || (first == best_first && second > best_second))
      bi = i, best_first = first, best_second = second;
  }
  std::vector<std::pair<double, int>> kids;
  for (int a = m_.off[bi]; a < m_.off[bi + 1]; ++a)
    if (s.enabled[a]) kids.emplace_back(std::max(d, at - star[bi] + h[a]), a);
  std::sort(kids.begin(), kids.end());
  for (auto [e, a] : kids) {
    if (stopped_ || dl_.passed()) {
      stopped_ = true;
      open_ = std::min(open_, e);
      continue;
    }
    if (e >= threshold()) {
      pruned_ = std::min(pruned_, e);
      continue;
    }
    DualState* c = child_state(depth, s, bi, a);
    if (c) explore(depth + 1, *c, e);
  }
}

IqpResult Solver::run() {
  IqpResult r;
  DualState& root = slots_[0];
  root.reset(m_);
  fixes_[0].clear();
  if (!iqp::propagate_budgets(m_, root, &fixes_[0])) {
    r.status = IqpResult::Status::infeasible;
    r.objective = kInf;
    r.bound = kInf;
    return r;
  }
  // Two cheap starts: the least single-layer losses, and the cheapest layers.
  std::vector<int> lossy(m_.layers), cheap(m_.layers);
  for (int i = 0; i < m_.layers; ++i) {
    lossy[i] = cheap[i] = m_.off[i];
    for (int a = m_.off[i]; a < m_.off[i + 1]; ++a) {
      if (m_.unary[a] < m_.unary[lossy[i]]) lossy[i] = a;
      double ca = 0, cb = 0;
      for (int k = 0; k < m_.budgets; ++k)
        ca += m_.c(k, a) / std::max(m_.limit[k], 1.0),
            cb += m_.c(k, cheap[i]) / std::max(m_.limit[k], 1.0);
      if (ca < cb) cheap[i] = a;
    }
  }
  heuristic(lossy);
  heuristic(cheap);
  explore(0, root, -kInf);

  r.nodes = nodes_;
  if (!found_) {
    r.status = stopped_ ? IqpResult::Status::time_limit : IqpResult::Status::infeasible;
    r.objective = kInf;
    r.bound = stopped_ ? std::min(open_, pruned_) : kInf;
    r.gap = stopped_ ? kInf : 0;
    return r;
  }
  r.status = stopped_ ? IqpResult::Status::time_limit : IqpResult::Status::optimal;
  r.choice.resize(m_.layers);
  for (int i = 0; i < m_.layers; ++i) r.choice[i] = best_[i] - m_.off[i];
  r.objective = ub_;
  r.bound = std::min({ub_, pruned_, open_});
  // Within the solver's rounding tolerance the gap is closed, even at an objective near 0.
  const double diff = ub_ - r.bound;
  r.gap = diff <= abs_tol_ ? 0.0 : diff / std::max(std::abs(ub_), 1e-300);
  return r;
}

}  // namespace

const char* to_string(IqpResult::Status status) {
  switch (status) {
    case IqpResult::Status::optimal:
      return "optimal";
    case IqpResult::Status::time_limit:
      return "time_limit";
    case IqpResult::Status::infeasible:
      return "infeasible";
  }
  return "?";
}

Eigen::MatrixXd clip_psd(const Eigen::MatrixXd& m) {
  check(m.rows() == m.cols(), kWhere, "clip_psd needs a square matrix");
  check(m.allFinite(), kWhere, "clip_psd: matrix has a NaN or infinite entry");
  const Eigen::MatrixXd sym = 0.5 * (m + m.transpose());
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(sym);
  check(es.info() == Eigen::Success, kWhere, "eigendecomposition did not converge");
  const Eigen::VectorXd kept = es.eigenvalues().cwiseMax(0.0);
  Eigen::MatrixXd out = es.eigenvectors() * kept.asDiagonal() * es.eigenvectors().transpose();
  return 0.5 * (out + out.transpose());
}

double objective(const IqpProblem& p, const std::vector<int>& choice) {
  check(choice.size() == p.candidates.size(), kWhere, "choice has the wrong number of layers");
  std::vector<int> x(choice.size());
  int off = 0;
  for (size_t i = 0; i < choice.size(); ++i) {
    check(choice[i] >= 0 && choice[i] < p.candidates[i], kWhere,
          "choice of layer " + std::to_string(i) + " is out of range");
    x[i] = off + choice[i];
    off += p.candidates[i];
  }
  check(p.omega.rows() == off && p.omega.cols() == off, kWhere, "omega has the wrong size");
  double e = 0;
  for (int a : x)
    for (int b : x) e += p.omega(a, b);
  return e;
}

bool feasible(const IqpProblem& p, const std::vector<int>& choice) {
  check(choice.size() == p.candidates.size(), kWhere, "choice has the wrong number of layers");
  for (size_t k = 0; k < p.budgets.size(); ++k) {
    double load = 0;
    int off = 0;
    for (size_t i = 0; i < choice.size(); ++i) {
      load += p.costs[k].at(off + choice[i]);
      off += p.candidates[i];
    }
    const double b = p.budgets[k];
    if (load > b + (std::isfinite(b) ? 1e-12 * std::abs(b) : 0.0)) return false;
  }
  return true;
}

IqpResult solve_iqp(const IqpProblem& problem, const IqpOptions& options) {
  const auto start = Clock::now();
  validate(problem);
  check(options.time_limit_s >= 0, kWhere, "time limit must be >= 0");
  check(options.rel_gap >= 0, kWhere, "rel_gap must be >= 0");
  check(!std::isnan(options.memory_mb), kWhere, "memory_mb is NaN");
  const double limit = std::min(options.time_limit_s, 1e9);
  const Deadline dl{
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limit))};
  const Eigen::MatrixXd omega = options.clip_psd ? clip_psd(problem.omega) : problem.omega;
  const Model m(problem, omega);
  Solver solver(m, options, dl);
  IqpResult r = solver.run();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace mixq
