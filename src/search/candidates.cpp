#include "search/candidates.h"

#include <sstream>

#include "base/error.h"
#include "runtime/summary.h"

namespace mixq {

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
    try {
      size_t used = 0;
      c.bits = std::stoi(bits, &used);
      check(used == bits.size(), where, "bad bit-width in candidate '" + item + "'");
    } catch (const std::logic_error&) {
      throw Error(where, "bad bit-width in candidate '" + item + "'");
    }
    check(c.bits >= kMinBits && c.bits <= kMaxBits, where,
          "candidate '" + item + "': bits outside 2..8");
    if (dash != std::string::npos) c.scheme = parse_scheme(item.substr(dash + 1), where);
    for (const auto& o : out) check(o.name != c.name, where, "candidate '" + item + "' twice");
    out.push_back(c);
  }
  check(!out.empty(), where, "no candidates");
  return out;
}

double SearchSpace::size_bits(size_t s, size_t c) const {
  return static_cast<double>(all[searched[s]].weight_count) * candidates[c].bits;
}

double SearchSpace::bops(size_t s, size_t c) const {
  return static_cast<double>(macs[searched[s]]) * candidates[c].bits * abits;
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

QuantConfig assignment_config(const Graph& g, const SearchSpace& space,
                              const std::vector<int>& choice, const ActivationStats* stats,
                              ObserverKind observer) {
  check(choice.size() == space.num_searched(), "allocation", "one choice per searched layer");
  QuantConfig cfg;
  cfg.model = g.source;
  std::vector<int> of_layer(space.all.size(), -1);
  for (size_t s = 0; s < space.searched.size(); ++s) of_layer[space.searched[s]] = choice[s];
  for (size_t i = 0; i < space.all.size(); ++i) {
    const QuantLayer& l = space.all[i];
    LayerConfig lc;
    lc.name = l.name;
    Scheme scheme = Scheme::fixed;
    int bits = space.edge_bits;
    if (of_layer[i] >= 0) {
      const CandidateSpec& c = space.candidates.at(of_layer[i]);
      scheme = c.scheme;
      bits = c.bits;
    }
    lc.rows =
        choose_weight_quant(g.constant(l.weight), scheme, bits, ScaleMethod::mse, true, l.row_axis);
    if (stats && space.abits > 0) {
      const int abits = of_layer[i] >= 0 ? space.abits : std::max(space.abits, space.edge_bits);
      lc.input = input_quant(*stats, l.name, abits, observer, 99.99);
    }
    cfg.layers.push_back(std::move(lc));
  }
  return cfg;
}

}  // namespace mixq
