#include "quant/rounding.h"

#include <algorithm>

#include "base/error.h"
#include "base/hash.h"
#include "data/parallel.h"
#include "quant/apply.h"
#include "quant/layers.h"
#include "quant/weight_groups.h"

namespace mixq {

namespace {
constexpr Rounding kRoundings[] = {Rounding::nearest, Rounding::gptq, Rounding::adaround};
}

const char* rounding_name(Rounding r) {
  switch (r) {
    case Rounding::gptq:
      return "gptq";
    case Rounding::adaround:
      return "adaround";
    default:
      return "nearest";
  }
}

std::string rounding_names() {
  std::string s;
  for (Rounding r : kRoundings) s += (s.empty() ? "" : ", ") + std::string(rounding_name(r));
  return s;
}

std::vector<std::string> rounding_choices() {
  std::vector<std::string> v;
  for (Rounding r : kRoundings) v.push_back(rounding_name(r));
  return v;
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
  h.add(static_cast<uint64_t>(r.method));
  const std::string key = layer + "/" + h.hex();
  if (r.cache) {
    std::lock_guard<std::mutex> lock(r.cache->mutex);
    auto it = r.cache->weights.find(key);
    if (it != r.cache->weights.end()) return it->second;
  }
  Tensor q = r.method == Rounding::adaround
                 ? learned_quantize_weight(w, rows, row_axis, *gram, r.gptq, r.learned)
                 : gptq_quantize_weight(w, rows, row_axis, *gram, r.gptq);
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
  std::vector<QuantLayer> layers;
  std::vector<const LayerConfig*> configs;
  for (const QuantLayer& l : find_quant_layers(g)) {
    const LayerConfig* lc = cfg.find(l.name);
    if (lc == nullptr || lc->rows.empty()) continue;
    layers.push_back(l);
    configs.push_back(lc);
  }
  // Layers round independently: learned rounding takes seconds per wide layer.
  std::vector<Tensor> rounded(layers.size());
  parallel_for_samples(layers.size(), [&](size_t i) {
    const QuantLayer& l = layers[i];
    rounded[i] = round_weight(g.constant(l.weight), configs[i]->rows, l.row_axis, r, l.name);
  });
  for (size_t i = 0; i < layers.size(); ++i) {
    const QuantLayer& l = layers[i];
    if (uses[l.weight] == 1) {
      out.values[l.weight].constant = std::move(rounded[i]);
    } else {  // a weight shared with another node keeps its float value there
      out.nodes[l.node].inputs[1] =
          out.add_constant(l.name + "/rounded_weight", std::move(rounded[i]));
    }
  }
  return out;
}

namespace {

// The weight that best answers quantized inputs: per group, W + (H_qq^-1 (H_qf - H_qq) W^T)^T,
// H_qq damped as compensated rounding damps it. Equal to W when the inputs are the same.
Tensor retarget_weight(const Tensor& w, int row_axis, const InputGram& qq, const InputGram& qf,
                       double damp) {
  Tensor out = w.clone();
  const int64_t k = qq.k;
  for (int64_t grp = 0; grp < qq.groups; ++grp) {
    Eigen::MatrixXd h = Eigen::Map<const Eigen::MatrixXd>(qq.group(grp), k, k);
    const Eigen::MatrixXd shift = Eigen::Map<const Eigen::MatrixXd>(qf.group(grp), k, k) - h;
    for (int64_t j = 0; j < k; ++j)
      if (!(h(j, j) > 0)) h.row(j).setZero(), h.col(j).setZero(), h(j, j) = 1;
    h.diagonal().array() += damp * h.diagonal().mean();
    // The grams are stored row-major; H_qq is symmetric, the cross gram is read transposed.
    const Eigen::MatrixXd W = group_rows<double>(w, row_axis, qq, grp);
    const Eigen::LLT<Eigen::MatrixXd> llt(h);
    check(llt.info() == Eigen::Success, "rounding", "input gram is not positive definite");
    const Eigen::MatrixXd moved = W + llt.solve(shift.transpose() * W.transpose()).transpose();
    store_rows(moved, row_axis, qq, grp, out);
  }
  return out;
}

}  // namespace

Graph round_weights_sequential(const Graph& g, const QuantConfig& cfg, const WeightRounding& r,
                               const Dataset& data, ObserveOptions o) {
  if (r.method == Rounding::nearest) return g;
  o.samples = std::min({o.samples, kGramSamples, data.size()});
  const auto progress = std::move(o.progress);
  o.progress = nullptr;
  std::vector<QuantLayer> layers;
  for (const QuantLayer& l : find_quant_layers(g)) {
    const LayerConfig* lc = cfg.find(l.name);
    if (lc != nullptr && !lc->rows.empty()) layers.push_back(l);
  }
  Graph out = g;
  for (size_t i = 0; i < layers.size(); ++i) {
    const QuantLayer& l = layers[i];
    const LayerConfig* lc = cfg.find(l.name);
    // The float layer's inputs, then the same samples through the model rounded so far.
    std::vector<Tensor> float_inputs;
    for_each_calibration_batch(g, data, o, [&](const std::vector<Tensor>& env, size_t) {
      float_inputs.push_back(env[l.data_input].clone());
    });
    const Graph q = apply_quant(out, cfg);
    const auto q_layers = find_quant_layers(q);
    const auto ql = std::find_if(q_layers.begin(), q_layers.end(),
                                 [&](const QuantLayer& x) { return x.name == l.name; });
    check(ql != q_layers.end(), l.name, "layer lost by quantization");
    InputGram qq = make_input_gram(q, *ql), qf = qq;
    size_t batch = 0;
    for_each_calibration_batch(q, data, o, [&](const std::vector<Tensor>& env, size_t) {
      check(batch < float_inputs.size(), l.name, "calibration batches differ between passes");
      accumulate_cross_gram(q, *ql, env[ql->data_input], float_inputs[batch++], qq, qf);
    });
    WeightRounding layer_r = r;
    layer_r.grams = std::make_shared<const InputGrams>(InputGrams{{l.name, qq}});
    layer_r.cache = nullptr;
    const Tensor target = retarget_weight(g.constant(l.weight), l.row_axis, qq, qf, r.gptq.damp);
    Tensor rounded = round_weight(target, lc->rows, l.row_axis, layer_r, l.name);
    if (out.nodes[l.node].inputs[1] == l.weight &&
        std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) {
          return std::count(n.inputs.begin(), n.inputs.end(), l.weight) > 0;
        }) == 1) {
      out.values[l.weight].constant = std::move(rounded);
    } else {  // a weight shared with another node keeps its float value there
      out.nodes[l.node].inputs[1] =
          out.add_constant(l.name + "/rounded_weight", std::move(rounded));
    }
    if (progress) progress(i + 1, layers.size());
  }
  return out;
}

}  // namespace mixq
