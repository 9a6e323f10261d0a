#include "search/allocate.h"

#include <cmath>
#include <limits>

#include "base/error.h"

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

IqpProblem make_problem(const AllocInputs& in, const std::vector<Budget>& budgets,
                        Eigen::MatrixXd omega) {
  IqpProblem p;
  p.candidates.assign(in.space->num_searched(), static_cast<int>(in.space->num_candidates()));
  p.omega = std::move(omega);
  for (const Budget& b : budgets) {
    LinearBudget lb = linearize(b, *in.graph, *in.space);
    p.costs.push_back(lb.costs);
    p.budgets.push_back(lb.bound);
  }
  return p;
}

// Greedy: every layer at its widest candidate, then while a budget is exceeded, the move to any
// cheaper candidate (in that budget) with the least single-layer loss increase per unit saved.
std::vector<int> greedy(const IqpProblem& p, const SensitivityData& d, const SearchSpace& space) {
  const size_t L = space.num_searched(), C = space.num_candidates();
  int widest = 0;
  for (size_t c = 1; c < C; ++c)
    if (space.candidates[c].bits > space.candidates[widest].bits) widest = static_cast<int>(c);
  std::vector<int> ch(L, widest);
  auto violated = [&]() -> int {
    for (size_t k = 0; k < p.budgets.size(); ++k) {
      double used = 0;
      for (size_t s = 0; s < L; ++s) used += p.costs[k][s * C + ch[s]];
      if (used > p.budgets[k] * (1 + 1e-12)) return static_cast<int>(k);
    }
    return -1;
  };
  // Each move lowers the violated budget's cost; with several budgets moves could undo each
  // other, so the number of moves is bounded.
  for (size_t moves = 0; moves <= 4 * L * C * std::max<size_t>(1, p.budgets.size()); ++moves) {
    const int k = violated();
    if (k < 0) return ch;
    double best = std::numeric_limits<double>::infinity();
    int best_s = -1, best_c = -1;
    for (size_t s = 0; s < L; ++s)
      for (size_t c = 0; c < C; ++c) {
        const double saved = p.costs[k][s * C + ch[s]] - p.costs[k][s * C + c];
        if (saved <= 0) continue;
        const double rate = (d.single_delta(s, c) - d.single_delta(s, ch[s])) / saved;
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
    for (size_t s = 0; s < choice.size(); ++s)
      sum += lb.costs[s * space.num_candidates() + choice[s]];
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
  IqpProblem full = make_problem(in, budgets, omega);
  switch (method) {
    case AllocMethod::uniform: {
      // The largest integer bit-width whose uniform assignment meets every budget.
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
          a.predicted = objective(full, a.choice);
        }
      if (a.feasible)
        a.budget_use = budget_use(*in.graph, uniform_space(*in.space, a.uniform_bits),
                                  std::vector<int>(in.space->num_searched(), 0), budgets);
      return a;
    }
    case AllocMethod::greedy:
      a.choice = greedy(full, d, *in.space);
      a.feasible = !a.choice.empty();
      break;
    case AllocMethod::diagonal:
    case AllocMethod::hawq: {
      check(method != AllocMethod::hawq || in.hawq_diag, "allocate", "hawq needs Hessian traces");
      Eigen::MatrixXd diag = Eigen::MatrixXd::Zero(omega.rows(), omega.cols());
      for (Eigen::Index i = 0; i < omega.rows(); ++i)
        diag(i, i) = method == AllocMethod::diagonal ? omega(i, i) : in.hawq_diag->at(i);
      a.solver = solve_iqp(make_problem(in, budgets, diag), options);
      a.choice = a.solver.choice;
      a.feasible = a.solver.status != IqpResult::Status::infeasible;
      break;
    }
    case AllocMethod::clado:
    case AllocMethod::clado_psd: {
      IqpOptions o = options;
      o.clip_psd = method == AllocMethod::clado_psd;
      a.solver = solve_iqp(full, o);
      a.choice = a.solver.choice;
      a.feasible = a.solver.status != IqpResult::Status::infeasible;
      break;
    }
  }
  a.predicted =
      a.choice.empty() ? std::numeric_limits<double>::quiet_NaN() : objective(full, a.choice);
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
  cfg.info["predicted_loss_increase"] =
      std::isnan(a.predicted) ? nlohmann::json() : nlohmann::json(a.predicted);
  return cfg;
}

}  // namespace mixq
