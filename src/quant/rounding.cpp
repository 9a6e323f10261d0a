#include "quant/rounding.h"

#include <algorithm>

#include "base/error.h"
#include "base/hash.h"
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

WeightRounding make_rounding(Rounding method, const Graph& g, const Dataset& data,
                             ObserveOptions o) {
  WeightRounding r;
  r.method = method;
  if (method == Rounding::nearest) return r;
  r.samples = o.samples = std::min({o.samples, kGramSamples, data.size()});
  r.seed = o.seed;
  r.grams = std::make_shared<const InputGrams>(collect_input_grams(g, data, o));
  return r;
}

nlohmann::json rounding_to_json(const WeightRounding& r) {
  return {{"method", rounding_name(r.method)}, {"samples", r.samples}, {"seed", r.seed}};
}

WeightRounding rounding_from_json(const nlohmann::json& j, const std::string& where) {
  check(j.is_object() && j.contains("method") && j["method"].is_string() && j.contains("samples") &&
            j["samples"].is_number_unsigned() && j.contains("seed") &&
            j["seed"].is_number_unsigned(),
        where, "'rounding' needs method, samples and seed");
  WeightRounding r;
  r.method = parse_rounding(j["method"].get<std::string>(), where);
  r.samples = j["samples"].get<size_t>();
  r.seed = j["seed"].get<uint64_t>();
  check(r.samples >= 1, where, "'rounding' samples must be positive");
  return r;
}

Tensor round_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                    const WeightRounding& r, const std::string& layer) {
  if (r.method == Rounding::nearest) return fake_quantize_weight(w, rows, row_axis);
  const InputGram* gram = nullptr;
  if (r.grams) {
    auto it = r.grams->find(layer);
    if (it != r.grams->end()) gram = &it->second;
  }
  check(gram != nullptr, layer, "no input gram for compensated rounding");
  Hasher h;
  h.add(layer).add(static_cast<uint64_t>(row_axis)).add(static_cast<uint64_t>(w.numel()));
  h.add(w.data<float>(), static_cast<size_t>(w.numel()) * sizeof(float));
  for (const RowQuant& q : rows)
    h.add(static_cast<uint64_t>(q.scheme))
        .add(static_cast<uint64_t>(q.bits))
        .add(&q.scale, sizeof q.scale);
  const std::string key = layer + "/" + h.hex();
  if (r.cache) {
    std::lock_guard<std::mutex> lock(r.cache->mutex);
    auto it = r.cache->weights.find(key);
    if (it != r.cache->weights.end()) return it->second;
  }
  Tensor q = gptq_quantize_weight(w, rows, row_axis, *gram, r.gptq);
  if (r.cache) {
    std::lock_guard<std::mutex> lock(r.cache->mutex);
    r.cache->weights.emplace(key, q);
  }
  return q;
}

Graph round_weights(const Graph& g, const QuantConfig& cfg, const WeightRounding& r) {
  Graph out = g;
  if (r.method == Rounding::nearest) return out;
  std::vector<int> uses(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int v : n.inputs)
      if (v >= 0) ++uses[v];
  for (const QuantLayer& l : find_quant_layers(g)) {
    const LayerConfig* lc = cfg.find(l.name);
    if (lc == nullptr || lc->rows.empty()) continue;
    Tensor q = round_weight(g.constant(l.weight), lc->rows, l.row_axis, r, l.name);
    if (uses[l.weight] == 1) {
      out.values[l.weight].constant = std::move(q);
    } else {  // a weight shared with another node keeps its float value there
      out.nodes[l.node].inputs[1] = out.add_constant(l.name + "/rounded_weight", std::move(q));
    }
  }
  return out;
}

}  // namespace mixq
