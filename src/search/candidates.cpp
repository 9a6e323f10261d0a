#include "search/candidates.h"

#include <cmath>
#include <sstream>

#include "base/error.h"
#include "base/json_int.h"
#include "base/parse.h"
#include "runtime/summary.h"

namespace mixq {

namespace {

// The part after "wB-": a scheme name, or msq / msqpot / rmsmp with an optional ratio.
void parse_policy(const std::string& item, const std::string& policy, const std::string& where,
                  CandidateSpec& c) {
  for (const char* prefix : {"rmsmp", "msqpot", "msq"}) {
    const std::string p = prefix;
    if (policy.compare(0, p.size(), p) != 0) continue;
    const std::string num = policy.substr(p.size());
    const std::optional<double> ratio = num.empty() ? 1.5 : parse_number(num);
    check(ratio.has_value(), where, "bad ratio in candidate '" + item + "'");
    c.ratio = *ratio;
    check(c.ratio > 0 && c.ratio <= 100, where,
          "candidate '" + item + "': ratio must be in (0, 100]");
    c.scheme = p == "msqpot" ? Scheme::pot : Scheme::sp2;
    c.high_share = p == "rmsmp" ? 0.05 : 0.0;
    return;
  }
  c.scheme = parse_scheme(policy, where);
}

MsqOptions msq_options(const CandidateSpec& c) {
  MsqOptions o;
  o.ratio = c.ratio;
  o.shift = c.scheme;
  o.high_share = c.high_share;
  return o;
}

}  // namespace

std::vector<RowQuant> candidate_rows(const Tensor& w, const CandidateSpec& c, int row_axis) {
  if (c.mixed()) return msq_rows(w, c.bits, msq_options(c), ScaleMethod::mse, row_axis);
  return choose_weight_quant(w, c.scheme, c.bits, ScaleMethod::mse, true, row_axis);
}

double candidate_high_share(const CandidateSpec& c, int64_t rows) {
  return rows > 0 ? static_cast<double>(high_row_count(rows, c.high_share)) / rows : 0.0;
}

double candidate_shift_share(const CandidateSpec& c, int64_t rows) {
  if (rows <= 0) return 0;
  if (!c.mixed()) return scheme_traits(c.scheme).multiplier_free ? 1.0 : 0.0;
  const int64_t rest = rows - high_row_count(rows, c.high_share);
  return static_cast<double>(shift_row_count(rest, c.ratio)) / static_cast<double>(rows);
}

double candidate_bits(const CandidateSpec& c, int64_t rows) {
  const double high = candidate_high_share(c, rows);
  return (1 - high) * c.bits + high * MsqOptions{}.high_bits;
}

std::vector<CandidateSpec> parse_candidates(const std::string& text, const std::string& where) {
  std::vector<CandidateSpec> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    check(item.size() >= 2 && item[0] == 'w', where,
          "candidate '" + item + "' is not of the form wBITS[-SCHEME] (w4, w4-sp2)");
    CandidateSpec c;
    c.name = item;
    const size_t dash = item.find('-');
    const std::string bits =
        item.substr(1, dash == std::string::npos ? std::string::npos : dash - 1);
    const std::optional<double> b = parse_number(bits);
    check(b && *b == std::floor(*b), where, "bad bit-width in candidate '" + item + "'");
    check(*b >= kMinBits && *b <= kMaxBits, where, "candidate '" + item + "': bits outside 2..8");
    c.bits = static_cast<int>(*b);
    if (dash != std::string::npos) parse_policy(item, item.substr(dash + 1), where, c);
    for (const auto& o : out) check(o.name != c.name, where, "candidate '" + item + "' twice");
    out.push_back(c);
  }
  check(!out.empty(), where, "no candidates");
  return out;
}

std::string candidate_names(const std::vector<CandidateSpec>& candidates) {
  std::string out;
  for (const CandidateSpec& c : candidates) out += (out.empty() ? "" : ",") + c.name;
  return out;
}

double SearchSpace::size_bits(size_t s, size_t c) const {
  const QuantLayer& l = all[searched[s]];
  return static_cast<double>(l.weight_count) * candidate_bits(candidates[c], l.rows);
}

double SearchSpace::bops(size_t s, size_t c) const {
  const QuantLayer& l = all[searched[s]];
  return static_cast<double>(macs[searched[s]]) * candidate_bits(candidates[c], l.rows) * abits;
}

const LayerFix& SearchSpace::fix(size_t i) const {
  static const LayerFix none;
  return fixes.empty() ? none : fixes.at(i);
}

std::vector<QuantLayer> SearchSpace::free_layers() const {
  std::vector<QuantLayer> out;
  for (int i : searched)
    if (!fixed(i)) out.push_back(all[i]);
  return out;
}

double SearchSpace::searched_weights() const {
  double n = 0;
  for (int i : searched) n += static_cast<double>(all[i].weight_count);
  return n;
}

SearchSpace make_search_space(const Graph& g, std::vector<CandidateSpec> candidates,
                              bool include_edges, int abits) {
  SearchSpace sp;
  sp.all = find_quant_layers(g);
  check(!sp.all.empty(), g.source, "model has no quantizable layers (Conv/Gemm/MatMul)");
  sp.candidates = std::move(candidates);
  sp.abits = abits;
  for (size_t i = 0; i < sp.all.size(); ++i) {
    const bool edge = i == 0 || i + 1 == sp.all.size();
    if (include_edges || !edge) sp.searched.push_back(static_cast<int>(i));
  }
  check(!sp.searched.empty(), g.source,
        "no layers left to search once the first and last are excluded");
  ModelSummary summary = summarize(g);
  sp.macs.assign(sp.all.size(), 0);
  for (size_t i = 0; i < sp.all.size(); ++i) sp.macs[i] = summary.nodes[sp.all[i].node].macs;
  return sp;
}

InputQuants input_quants(const SearchSpace& space, const ActivationStats& stats,
                         ObserverKind observer) {
  InputQuants q;
  std::vector<bool> searched(space.all.size(), false);
  for (int i : space.searched) searched[i] = true;
  for (size_t i = 0; i < space.all.size(); ++i) {
    const int bits = searched[i] ? space.abits : std::max(space.abits, space.edge_bits);
    q[space.all[i].name] = input_quant(stats, space.all[i].name, bits, observer, 99.99);
  }
  return q;
}

nlohmann::json input_quants_to_json(const InputQuants& q) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, a] : q) j[name] = act_quant_to_json(a);
  return j;
}

InputQuants input_quants_from_json(const nlohmann::json& j, const std::string& where) {
  check(j.is_object(), where, "activation quantizers missing");
  InputQuants q;
  for (auto it = j.begin(); it != j.end(); ++it)
    q[it.key()] = act_quant_from_json(it.value(), where + ": activation of '" + it.key() + "'");
  return q;
}

QuantConfig assignment_config(const Graph& g, const SearchSpace& space,
                              const std::vector<int>& choice, const InputQuants* inputs) {
  check(choice.size() == space.num_searched(), "allocation", "one choice per searched layer");
  QuantConfig cfg;
  cfg.model = g.source;
  std::vector<int> of_layer(space.all.size(), -2);  // -2: not searched
  for (size_t s = 0; s < space.searched.size(); ++s) of_layer[space.searched[s]] = choice[s];
  for (size_t i = 0; i < space.all.size(); ++i) {
    const QuantLayer& l = space.all[i];
    LayerConfig lc;
    lc.name = l.name;
    if (of_layer[i] >= 0) {
      lc.rows = candidate_rows(g.constant(l.weight), space.candidates.at(of_layer[i]), l.row_axis);
    } else if (of_layer[i] == -2) {  // outside the search: edge bits, fixed point
      lc.rows = choose_weight_quant(g.constant(l.weight), Scheme::fixed, space.edge_bits,
                                    ScaleMethod::mse, true, l.row_axis);
    }
    if (inputs) {
      auto it = inputs->find(l.name);
      check(it != inputs->end(), "allocation", "no activation quantizer for '" + l.name + "'");
      lc.input = it->second;
    }
    apply_fix(g, l, space.fix(i), lc);
    cfg.layers.push_back(std::move(lc));
  }
  return cfg;
}

void apply_fix(const Graph& g, const QuantLayer& l, const LayerFix& f, LayerConfig& lc) {
  if (f.kind == LayerFix::Kind::keep_float) {
    lc.rows.clear();
    lc.input.reset();
  } else if (f.kind == LayerFix::Kind::pin) {
    lc.rows = candidate_rows(g.constant(l.weight), f.candidate, l.row_axis);
  }
}

SearchSpace search_space_from_header(const Graph& g, const nlohmann::json& header,
                                     const std::string& where) {
  std::vector<std::string> layers, cands;
  try {
    layers = header.at("layers").get<std::vector<std::string>>();
    cands = header.at("candidates").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where, "header lacks layers or candidates");
  }
  // Bit-widths as a quantizer takes them; absent: mixq's defaults.
  auto bits = [&](const char* key, int lo, int hi) {
    if (!header.contains(key)) return 8;
    const nlohmann::json& v = header[key];
    check(json_int_fits<int>(v) && v.get<int>() >= lo && v.get<int>() <= hi, where,
          std::string("'") + key + "' must be an integer in " + std::to_string(lo) + ".." +
              std::to_string(hi));
    return v.get<int>();
  };
  std::string list;
  for (const auto& c : cands) list += (list.empty() ? "" : ",") + c;
  SearchSpace sp = make_search_space(g, parse_candidates(list, where), true, bits("abits", 2, 16));
  sp.edge_bits = bits("edge_bits", kMinBits, kMaxBits);
  sp.searched.clear();
  for (const auto& name : layers) {
    int found = -1;
    for (size_t i = 0; i < sp.all.size(); ++i)
      if (sp.all[i].name == name) found = static_cast<int>(i);
    check(found >= 0, where, "layer '" + name + "' is not a quantizable layer of " + g.source);
    sp.searched.push_back(found);
  }
  return sp;
}

}  // namespace mixq
