#include "search/layer_rules.h"

#include <regex>

#include "base/error.h"

namespace mixq {

namespace {

// One rule parsed: its regex and, for a pin, its candidate.
struct Rule {
  std::regex re;
  CandidateSpec candidate;
};

Rule parse_rule(const std::string& text, bool pin, const std::string& where) {
  Rule r;
  std::string re = text;
  if (pin) {
    const size_t eq = text.rfind('=');
    check(eq != std::string::npos && eq > 0 && eq + 1 < text.size(), where,
          "must be REGEX=CANDIDATE, like conv1=w8");
    const std::vector<CandidateSpec> c = parse_candidates(text.substr(eq + 1), where);
    check(c.size() == 1, where, "pins one candidate, not a list");
    r.candidate = c[0];
    re = text.substr(0, eq);
  }
  try {
    r.re = std::regex(re, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error(where, std::string("bad regular expression: ") + e.what());
  }
  return r;
}

// The layers `re` matches; none is an error naming the rule.
std::vector<size_t> matches(const std::vector<QuantLayer>& layers, const std::regex& re,
                            const std::string& where) {
  std::vector<size_t> out;
  for (size_t i = 0; i < layers.size(); ++i)
    if (std::regex_search(layers[i].name, re)) out.push_back(i);
  if (out.empty()) {
    std::string names;
    for (size_t i = 0; i < layers.size() && i < 8; ++i)
      names += (names.empty() ? "" : ", ") + layers[i].name;
    if (layers.size() > 8) names += ", ...";
    throw Error(where, "matches no quantizable layer (" + names + ")");
  }
  return out;
}

}  // namespace

void check_layer_rule(const std::string& text, bool pin, const std::string& where) {
  parse_rule(text, pin, where);
}

std::vector<LayerFix> resolve_layer_rules(const std::vector<QuantLayer>& layers,
                                          const LayerRules& rules) {
  std::vector<LayerFix> fixes(layers.size());
  for (const std::string& text : rules.keep_float) {
    const std::string where = rules.keep_float_name + " '" + text + "'";
    for (size_t i : matches(layers, parse_rule(text, false, where).re, where)) {
      fixes[i].kind = LayerFix::Kind::keep_float;
      fixes[i].rule = where;
    }
  }
  for (const std::string& text : rules.pins) {
    const std::string where = rules.pin_name + " '" + text + "'";
    const Rule pin = parse_rule(text, true, where);
    for (size_t i : matches(layers, pin.re, where)) {
      LayerFix& f = fixes[i];
      const std::string layer = "layer '" + layers[i].name + "'";
      check(f.kind != LayerFix::Kind::keep_float, where,
            layer + " is also kept float by " + f.rule);
      check(f.kind != LayerFix::Kind::pin || f.candidate.name == pin.candidate.name, where,
            layer + " is also pinned to " + f.candidate.name + " by " + f.rule);
      f.kind = LayerFix::Kind::pin;
      f.candidate = pin.candidate;
      if (f.rule.empty()) f.rule = where;
    }
  }
  return fixes;
}

void set_layer_rules(SearchSpace& space, const LayerRules& rules) {
  if (rules.empty()) return;
  space.fixes = resolve_layer_rules(space.all, rules);
  for (const LayerFix& f : space.fixes) {
    if (f.kind != LayerFix::Kind::pin) continue;
    bool known = false;
    for (const CandidateSpec& c : space.candidates) known = known || c.name == f.candidate.name;
    check(known, f.rule,
          f.candidate.name + " is not among the searched candidates " +
              candidate_names(space.candidates) + " (add it to --candidates)");
  }
}

void apply_layer_rules(const Graph& g, const LayerRules& rules, QuantConfig& cfg) {
  if (rules.empty()) return;
  const std::vector<QuantLayer> layers = find_quant_layers(g);
  const std::vector<LayerFix> fixes = resolve_layer_rules(layers, rules);
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerConfig* lc = cfg.find(layers[i].name);
    check(lc != nullptr, layers[i].name, "missing from the config");
    apply_fix(g, layers[i], fixes[i], *lc);
  }
  cfg.info["fixed_layers"] = fixes_json(layers, fixes);
}

nlohmann::json fixes_json(const std::vector<QuantLayer>& layers, const std::vector<LayerFix>& f) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < f.size() && i < layers.size(); ++i)
    if (f[i].kind != LayerFix::Kind::none)
      j[layers[i].name] = f[i].kind == LayerFix::Kind::keep_float ? "float" : f[i].candidate.name;
  return j;
}

}  // namespace mixq
