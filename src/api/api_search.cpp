// The public API's search steps: sensitivities, allocation under budgets, and the config that
// applies an allocation.
#include <filesystem>
#include <optional>

#include "api/impl.h"
#include "base/error.h"
#include "mixq/mixq.h"
#include "runtime/output_compare.h"
#include "search/layer_rules.h"

namespace mixq::api {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items) {
    if (!s.empty()) s += ',';
    s += i;
  }
  return s;
}

}  // namespace

// --- Sensitivities ---------------------------------------------------------------------------

std::vector<std::string> Sensitivities::layers() const {
  const Impl& s = get(*this, "sensitivities");
  std::vector<std::string> names;
  for (int i : s.space.searched) names.push_back(s.space.all[i].name);
  return names;
}

std::vector<std::string> Sensitivities::candidates() const {
  std::vector<std::string> names;
  for (const CandidateSpec& c : get(*this, "sensitivities").space.candidates)
    names.push_back(c.name);
  return names;
}

double Sensitivities::base_loss() const {
  return get(*this, "sensitivities").data.L0();
}

std::vector<double> Sensitivities::single() const {
  const SensitivityData& d = get(*this, "sensitivities").data;
  std::vector<double> out;
  for (size_t s = 0; s < d.layers; ++s)
    for (size_t c = 0; c < d.candidates; ++c) out.push_back(d.single_delta(s, c));
  return out;
}

std::vector<double> Sensitivities::omega() const {
  return get(*this, "sensitivities").data.omega();
}

Sensitivities measure_sensitivities(const Model& model, const Calibration& calibration,
                                    const Data& data, const SensitivityOptions& options) {
  const Calibration::Impl& cal = get(calibration, "calibration");
  check(cal.model.get() == &get(model, "model"), "calibration",
        "was made from another model than the one measured");
  check(cal.abits > 0, "calibration",
        "CLADO measures with activations quantized: calibrate with activation_bits 2..16");
  auto impl = std::make_shared<Sensitivities::Impl>();
  impl->calibration = calibration.impl;
  impl->space = make_search_space(
      cal.model->graph, parse_candidates(join(options.candidates), "candidates"), false, cal.abits);
  mixq::SensitivityOptions o;
  o.samples = options.samples;
  o.seed = options.seed;
  if (!options.loss.empty()) o.loss = parse_loss(options.loss, "loss");
  o.checkpoint = options.checkpoint;
  o.resume = !o.checkpoint.empty() && std::filesystem::exists(o.checkpoint);
  o.resume_advice = "remove it or choose another checkpoint";
  o.progress = options.progress;
  impl->data =
      measure_sensitivity(cal.model->graph, impl->space, cal.stats, *get(data, "data").dataset, o);
  Sensitivities s;
  s.impl = std::move(impl);
  return s;
}

// --- Allocation ------------------------------------------------------------------------------

std::string Allocation::method() const {
  return get(*this, "allocation").allocation.method;
}

std::vector<LayerChoice> Allocation::layers() const {
  const Impl& a = get(*this, "allocation");
  const SearchSpace& space = a.space;
  std::vector<int> of_layer(space.all.size(), -2);  // -2: neither searched nor fixed
  for (size_t s = 0; s < space.num_searched(); ++s)
    of_layer[space.searched[s]] = a.allocation.choice.empty() ? -3 : a.allocation.choice[s];
  std::vector<LayerChoice> out;
  for (size_t i = 0; i < space.all.size(); ++i) {
    const QuantLayer& l = space.all[i];
    const LayerFix& f = space.fix(i);
    if (f.kind == LayerFix::Kind::keep_float || of_layer[i] == -1) {
      out.push_back({l.name, "float", 32.0});
    } else if (f.kind == LayerFix::Kind::pin) {
      out.push_back({l.name, f.candidate.name, candidate_bits(f.candidate, l.rows)});
    } else if (of_layer[i] == -3) {  // uniform: one fixed-point width everywhere
      const int b = a.allocation.uniform_bits;
      out.push_back({l.name, std::string("w").append(std::to_string(b)), static_cast<double>(b)});
    } else if (of_layer[i] >= 0) {
      const CandidateSpec& c = space.candidates[of_layer[i]];
      out.push_back({l.name, c.name, candidate_bits(c, l.rows)});
    }
  }
  return out;
}

std::vector<BudgetUse> Allocation::budgets() const {
  const Impl& a = get(*this, "allocation");
  std::vector<BudgetUse> out;
  for (const mixq::BudgetUse& u : a.allocation.budget_use)
    out.push_back({u.budget.text, u.used, u.limit});
  return out;
}

double Allocation::predicted_loss_increase() const {
  return get(*this, "allocation").allocation.predicted;
}

Allocation allocate(const Sensitivities& sensitivities, const std::string& budgets,
                    const std::string& method) {
  AllocateOptions o;
  o.method = method;
  return allocate(sensitivities, budgets, o);
}

Allocation allocate(const Sensitivities& sensitivities, const std::string& budgets,
                    const AllocateOptions& options) {
  const Sensitivities::Impl& s = get(sensitivities, "sensitivities");
  auto impl = std::make_shared<Allocation::Impl>();
  impl->sensitivities = sensitivities.impl;
  impl->space = s.space;
  LayerRules rules;
  rules.keep_float = options.keep_float;
  rules.pins = options.pins;
  rules.keep_float_name = "keep_float";
  rules.pin_name = "pins";
  set_layer_rules(impl->space, rules);
  const Graph& g = s.calibration->model->graph;
  impl->budgets = parse_budgets(budgets, "budgets");
  for (const Budget& b : impl->budgets) check_budget_feasible(b, g, impl->space, "budgets");
  impl->allocation =
      mixq::allocate(impl->inputs(), parse_alloc_method(options.method, "method"), impl->budgets);
  check(impl->allocation.feasible, "budgets",
        "no assignment of the candidates meets '" + budgets + "'");
  Allocation a;
  a.impl = std::move(impl);
  return a;
}

QuantizedModel apply(const Model& model, const Calibration& calibration,
                     const Allocation& allocation) {
  const Allocation::Impl& a = get(allocation, "allocation");
  const Sensitivities::Impl& s = *a.sensitivities;
  check(s.calibration.get() == calibration.impl.get() &&
            s.calibration->model.get() == model.impl.get(),
        "allocation", "was measured on another model or calibration than the one applied");
  auto impl = std::make_shared<QuantizedModel::Impl>();
  impl->model = s.calibration->model;
  impl->config = allocation_config(a.inputs(), a.allocation);
  QuantizedModel q;
  q.impl = std::move(impl);
  return q;
}

}  // namespace mixq::api
