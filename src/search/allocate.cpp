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

std::vector<int> greedy(const IqpProblem& p, const SensitivityData& d, const SearchSpace& space) {
  const size_t L = space.num_searched(), C = space.num_candidates();
  // Candidates ordered from most to fewest bits.
  std::vector<int> order(C);
  for (size_t c = 0; c < C; ++c) order[c] = static_cast<int>(c);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return space.candidates[a].bits > space.candidates[b].bits; });
  std::vector<size_t> pos(L, 0);
  auto choice = [&] {
    std::vector<int> ch(L);
    for (size_t s = 0; s < L; ++s) ch[s] = order[pos[s]];
    return ch;
  };
  auto violated = [&](const std::vector<int>& ch) -> int {
    for (size_t k = 0; k < p.budgets.size(); ++k) {
      double used = 0;
      for (size_t s = 0; s < L; ++s) used += p.costs[k][s * C + ch[s]];
      if (used > p.budgets[k] * (1 + 1e-12)) return static_cast<int>(k);
    }
    return -1;
  };
  for (;;) {
    std::vector<int> ch = choice();
    const int k = violated(ch);
    if (k < 0) return ch;
    double best = std::numeric_limits<double>::infinity();
    int best_s = -1;
    for (size_t s = 0; s < L; ++s) {
      if (pos[s] + 1 >= C) continue;
      const int cur = order[pos[s]], nxt = order[pos[s] + 1];
      const double saved = p.costs[k][s * C + cur] - p.costs[k][s * C + nxt];
      if (saved <= 0) continue;
      const double rate = (d.single_delta(s, nxt) - d.single_delta(s, cur)) / saved;
      if (rate < best) best = rate, best_s = static_cast<int>(s);
    }
    if (best_s < 0) return {};  // nothing left to lower: infeasible
    ++pos[best_s];
  }
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
        SearchSpace one = *in.space;
        one.candidates = {
            CandidateSpec{std::string("w").append(std::to_string(bits)), bits, Scheme::fixed}};
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
  return a;
}

QuantConfig allocation_config(const AllocInputs& in, const Allocation& a) {
  check(a.feasible, "allocate", "no assignment meets the budget");
  const InputQuants inputs =
      input_quants_from_json(in.sens->header.at("activations"), "sensitivity file");
  QuantConfig cfg;
  if (a.method == "uniform" && a.choice.empty()) {
    SearchSpace one = *in.space;
    one.candidates = {CandidateSpec{std::string("w").append(std::to_string(a.uniform_bits)),
                                    a.uniform_bits, Scheme::fixed}};
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
