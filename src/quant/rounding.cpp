#include "quant/rounding.h"

#include "base/error.h"
#include "quant/layers.h"

namespace mixq {

namespace {
constexpr Rounding kRoundings[] = {Rounding::nearest, Rounding::gptq};
}

const char* rounding_name(Rounding r) {
  return r == Rounding::gptq ? "gptq" : "nearest";
}

std::string rounding_names() {
  std::string s;
  for (Rounding r : kRoundings) s += (s.empty() ? "" : ", ") + std::string(rounding_name(r));
  return s;
}

Rounding parse_rounding(const std::string& text, const std::string& where) {
  for (Rounding r : kRoundings)
    if (text == rounding_name(r)) return r;
  throw Error(where, "unknown rounding '" + text + "' (expected one of " + rounding_names() + ")");
}

Tensor round_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                    Rounding rounding, const InputGram* gram, const GptqOptions& o) {
  if (rounding == Rounding::nearest) return fake_quantize_weight(w, rows, row_axis);
  check(gram != nullptr, "gptq", "compensated rounding needs the layer's input gram");
  return gptq_quantize_weight(w, rows, row_axis, *gram, o);
}

Graph round_weights(const Graph& g, const QuantConfig& cfg, Rounding rounding,
                    const InputGrams& grams, const GptqOptions& o) {
  Graph out = g;
  if (rounding == Rounding::nearest) return out;
  const auto layers = find_quant_layers(g);
  std::vector<int> uses(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int v : n.inputs)
      if (v >= 0) ++uses[v];
  for (const QuantLayer& l : layers) {
    const LayerConfig* lc = cfg.find(l.name);
    if (lc == nullptr || lc->rows.empty()) continue;
    auto it = grams.find(l.name);
    check(it != grams.end(), l.name, "no input gram for compensated rounding");
    Tensor q = round_weight(g.constant(l.weight), lc->rows, l.row_axis, rounding, &it->second, o);
    if (uses[l.weight] == 1) {
      out.values[l.weight].constant = std::move(q);
    } else {  // a weight shared with another node keeps its float value there
      out.nodes[l.node].inputs[1] = out.add_constant(l.name + "/rounded_weight", std::move(q));
    }
  }
  return out;
}

}  // namespace mixq
