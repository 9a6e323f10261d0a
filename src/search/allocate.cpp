#include "search/allocate.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "search/layer_rules.h"

namespace mixq {

AllocMethod parse_alloc_method(const std::string& name, const std::string& where) {
  for (AllocMethod m : {AllocMethod::uniform, AllocMethod::greedy, AllocMethod::diagonal,
                        AllocMethod::clado, AllocMethod::clado_psd, AllocMethod::hawq})
    if (name == alloc_method_name(m)) return m;
  throw Error(where,
              "unknown method '" + name + "' (uniform, greedy, diagonal, clado, clado-psd, hawq)");
}

const char* alloc_method_name(AllocMethod m) {
  switch (m) {
    case AllocMethod::uniform:
      return "uniform";
    case AllocMethod::greedy:
      return "greedy";
    case AllocMethod::diagonal:
      return "diagonal";
    case AllocMethod::clado:
      return "clado";
    case AllocMethod::clado_psd:
      return "clado-psd";
    case AllocMethod::hawq:
      return "hawq";
  }
  return "?";
}

Eigen::MatrixXd omega_matrix(const SensitivityData& d) {
  const size_t n = d.n();
  const auto om = d.omega();
  Eigen::MatrixXd m(n, n);
  for (size_t a = 0; a < n; ++a)
    for (size_t b = 0; b < n; ++b) m(a, b) = om[a * n + b];
  return m;
}

namespace {

// Per searched layer, the candidates the IQP may give it: all, the pinned one, or float (-1).
using Labels = std::vector<std::vector<int>>;
Labels layer_labels(const SearchSpace& space) {
  Labels out(space.num_searched());
  for (size_t s = 0; s < out.size(); ++s) {
    const LayerFix& f = space.fix(space.searched[s]);
    if (f.kind == LayerFix::Kind::keep_float) {
      out[s] = {-1};
    } else if (f.kind == LayerFix::Kind::pin) {
      for (size_t c = 0; c < space.num_candidates(); ++c)
        if (space.candidates[c].name == f.candidate.name) out[s] = {static_cast<int>(c)};
      check(!out[s].empty(), f.rule, f.candidate.name + " is not a searched candidate");
    } else {
      for (size_t c = 0; c < space.num_candidates(); ++c) out[s].push_back(static_cast<int>(c));
    }
  }
  return out;
}

// The IQP over the labels: `omega` (n x n over every candidate) restricted to them; a float
// layer is unperturbed (zero row); a fixed layer's costs are the same at every candidate.
IqpProblem make_problem(const AllocInputs& in, const std::vector<Budget>& budgets,
                        const Eigen::MatrixXd& omega, const Labels& labels) {
  const size_t C = in.space->num_candidates();
  IqpProblem p;
  std::vector<std::pair<size_t, int>> var;  // (layer, candidate) of each label
  for (size_t s = 0; s < labels.size(); ++s) {
    p.candidates.push_back(static_cast<int>(labels[s].size()));
    for (int c : labels[s]) var.emplace_back(s, c);
  }
  const Eigen::Index n = static_cast<Eigen::Index>(var.size());
  p.omega = Eigen::MatrixXd::Zero(n, n);
  for (Eigen::Index x = 0; x < n; ++x)
    for (Eigen::Index y = 0; y < n; ++y)
      if (var[x].second >= 0 && var[y].second >= 0)
        p.omega(x, y) = omega(var[x].first * C + var[x].second, var[y].first * C + var[y].second);
  for (const Budget& b : budgets) {
    LinearBudget lb = linearize(b, *in.graph, *in.space);
    std::vector<double> costs;
    for (const auto& [s, c] : var) costs.push_back(lb.costs[s * C + std::max(c, 0)]);
    p.costs.push_back(std::move(costs));
    p.budgets.push_back(lb.bound);
  }
  return p;
}

// Labels (index into labels[s]) to candidates (-1: float), and back.
std::vector<int> to_choice(const Labels& labels, const std::vector<int>& x) {
  std::vector<int> choice;
  for (size_t s = 0; s < x.size(); ++s) choice.push_back(labels[s][x[s]]);
  return choice;
}
std::vector<int> to_labels(const Labels& labels, const std::vector<int>& choice) {
  std::vector<int> x;
  for (size_t s = 0; s < choice.size(); ++s) {
    const auto it = std::find(labels[s].begin(), labels[s].end(), choice[s]);
    x.push_back(it == labels[s].end() ? 0 : static_cast<int>(it - labels[s].begin()));
  }
  return x;
}

// Greedy: every layer at its widest label, then while a budget is exceeded, the move to any
// cheaper label (in that budget) with the least single-layer loss increase (Omega's diagonal)
// per unit saved.
std::vector<int> greedy(const IqpProblem& p, std::vector<int> ch) {
  const size_t L = p.candidates.size();
  std::vector<size_t> off(L + 1, 0);
  for (size_t s = 0; s < L; ++s) off[s + 1] = off[s] + p.candidates[s];
  auto violated = [&]() -> int {
    for (size_t k = 0; k < p.budgets.size(); ++k) {
      double used = 0;
      for (size_t s = 0; s < L; ++s) used += p.costs[k][off[s] + ch[s]];
      if (used > p.budgets[k] * (1 + 1e-12)) return static_cast<int>(k);
    }
    return -1;
  };
  // Each move lowers the violated budget's cost; with several budgets moves could undo each
  // other, so the number of moves is bounded.
  for (size_t moves = 0; moves <= 4 * off[L] * std::max<size_t>(1, p.budgets.size()); ++moves) {
    const int k = violated();
    if (k < 0) return ch;
    double best = std::numeric_limits<double>::infinity();
    int best_s = -1, best_c = -1;
    for (size_t s = 0; s < L; ++s)
      for (size_t c = 0; c < static_cast<size_t>(p.candidates[s]); ++c) {
        const size_t from = off[s] + ch[s], to = off[s] + c;
        const double saved = p.costs[k][from] - p.costs[k][to];
        if (saved <= 0) continue;
        const double rate = (p.omega(to, to) - p.omega(from, from)) / saved;
        if (rate < best) best = rate, best_s = static_cast<int>(s), best_c = static_cast<int>(c);
      }
    if (best_s < 0) return {};  // nothing left to lower: infeasible
    ch[best_s] = best_c;
  }
  return {};
}

// The single-candidate space of a uniform fixed-point allocation.
SearchSpace uniform_space(const SearchSpace& space, int bits) {
  SearchSpace one = space;
  one.candidates = {
      CandidateSpec{std::string("w").append(std::to_string(bits)), bits, Scheme::fixed}};
  return one;
}

// What each budget's linear cost gives for the chosen candidates.
std::vector<BudgetUse> budget_use(const Graph& g, const SearchSpace& space,
                                  const std::vector<int>& choice,
                                  const std::vector<Budget>& budgets) {
  std::vector<BudgetUse> out;
  for (const Budget& b : budgets) {
    const LinearBudget lb = linearize(b, g, space);
    double sum = 0;
    for (size_t s = 0; s < choice.size(); ++s)  // float (-1): a fixed layer, the same anywhere
      sum += lb.costs[s * space.num_candidates() + std::max(choice[s], 0)];
    out.push_back({b, lb.value_of(b, sum), b.value});
  }
  return out;
}

}  // namespace

Allocation allocate(const AllocInputs& in, AllocMethod method, const std::vector<Budget>& budgets,
                    const IqpOptions& options) {
  check(in.graph && in.space && in.sens, "allocate", "missing inputs");
  const SensitivityData& d = *in.sens;
  check(d.complete(), "allocate", "the sensitivity measurement is not complete (resume it)");
  check(d.layers == in.space->num_searched() && d.candidates == in.space->num_candidates(),
        "allocate", "sensitivity file and search space differ");
  Allocation a;
  a.method = alloc_method_name(method);
  const Eigen::MatrixXd omega = omega_matrix(d);
  const Labels labels = layer_labels(*in.space);
  const IqpProblem full = make_problem(in, budgets, omega, labels);
  std::vector<int> x;  // the allocation's labels
  switch (method) {
    case AllocMethod::uniform: {
      // The largest integer bit-width whose uniform assignment meets every budget (fixed
      // layers as they are fixed).
      a.feasible = false;
      for (int bits = kMaxBits; bits >= kMinBits && !a.feasible; --bits) {
        const SearchSpace one = uniform_space(*in.space, bits);
        bool ok = true;
        for (const Budget& b : budgets) {
          LinearBudget lb = linearize(b, *in.graph, one);
          double used = 0;
          for (double c : lb.costs) used += c;
          ok = ok && used <= lb.bound * (1 + 1e-12);
        }
        if (ok) a.uniform_bits = bits, a.feasible = true;
      }
      a.predicted = std::numeric_limits<double>::quiet_NaN();
      for (size_t c = 0; c < in.space->num_candidates(); ++c)
        if (in.space->candidates[c].bits == a.uniform_bits &&
            in.space->candidates[c].scheme == Scheme::fixed) {
          a.choice.assign(in.space->num_searched(), static_cast<int>(c));
          for (size_t s = 0; s < labels.size(); ++s)
            if (in.space->fixed(in.space->searched[s])) a.choice[s] = labels[s][0];
          a.predicted = objective(full, to_labels(labels, a.choice));
        }
      if (a.feasible)
        a.budget_use = budget_use(*in.graph, uniform_space(*in.space, a.uniform_bits),
                                  std::vector<int>(in.space->num_searched(), 0), budgets);
      return a;
    }
    case AllocMethod::greedy: {
      int widest = 0;
      for (size_t c = 1; c < in.space->num_candidates(); ++c)
        if (in.space->candidates[c].bits > in.space->candidates[widest].bits)
          widest = static_cast<int>(c);
      std::vector<int> start(labels.size(), widest);
      x = greedy(full, to_labels(labels, start));
      a.feasible = !x.empty();
      break;
    }
    case AllocMethod::diagonal:
    case AllocMethod::hawq: {
      check(method != AllocMethod::hawq || in.hawq_diag, "allocate", "hawq needs Hessian traces");
      Eigen::MatrixXd diag = Eigen::MatrixXd::Zero(omega.rows(), omega.cols());
      for (Eigen::Index i = 0; i < omega.rows(); ++i)
        diag(i, i) = method == AllocMethod::diagonal ? omega(i, i) : in.hawq_diag->at(i);
      a.solver = solve_iqp(make_problem(in, budgets, diag, labels), options);
      x = a.solver.choice;
      a.feasible = a.solver.status != IqpResult::Status::infeasible;
      break;
    }
    case AllocMethod::clado:
    case AllocMethod::clado_psd: {
      IqpOptions o = options;
      o.clip_psd = method == AllocMethod::clado_psd;
      a.solver = solve_iqp(full, o);
      x = a.solver.choice;
      a.feasible = a.solver.status != IqpResult::Status::infeasible;
      break;
    }
  }
  if (!x.empty()) a.choice = to_choice(labels, x);
  a.predicted = x.empty() ? std::numeric_limits<double>::quiet_NaN() : objective(full, x);
  if (a.feasible) a.budget_use = budget_use(*in.graph, *in.space, a.choice, budgets);
  return a;
}

QuantConfig allocation_config(const AllocInputs& in, const Allocation& a) {
  check(a.feasible, "allocate", "no assignment meets the budget");
  const InputQuants inputs = input_quants_from_json(
      in.sens->header.value("activations", nlohmann::json()), "sensitivity file");
  QuantConfig cfg;
  if (a.method == "uniform" && a.choice.empty()) {
    const SearchSpace one = uniform_space(*in.space, a.uniform_bits);
    cfg = assignment_config(*in.graph, one, std::vector<int>(one.num_searched(), 0), &inputs);
  } else {
    cfg = assignment_config(*in.graph, *in.space, a.choice, &inputs);
  }
  cfg.info["method"] = a.method;
  if (!in.space->fixes.empty())
    cfg.info["fixed_layers"] = fixes_json(in.space->all, in.space->fixes);
  cfg.info["predicted_loss_increase"] =
      std::isnan(a.predicted) ? nlohmann::json() : nlohmann::json(a.predicted);
  return cfg;
}

}  // namespace mixq
