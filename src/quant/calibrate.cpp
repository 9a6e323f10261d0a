#include "quant/calibrate.h"

#include "base/error.h"
#include "data/batch_iterator.h"
#include "data/model_inputs.h"
#include "runtime/executor.h"
#include "runtime/finite.h"

namespace mixq {

void for_each_calibration_batch(const Graph& g, const Dataset& data, const ObserveOptions& o,
                                const std::function<void(const std::vector<Tensor>&, size_t)>& fn) {
  check(data.size() > 0, data.description(), "dataset is empty");
  check(!g.inputs.empty(), g.source, "calibration needs a model with a runtime input");
  Executor ex(g, Impl::fast);
  IterOptions it_opts;
  it_opts.batch_size = o.batch;
  it_opts.limit = std::min(o.samples, data.size());
  it_opts.random_subset = true;
  it_opts.seed = o.seed;
  BatchIterator it(data, it_opts);
  Batch batch;
  auto env = ex.environment();
  size_t done = 0;
  while (it.next(batch)) {
    const std::vector<Tensor> in = model_inputs(batch, g, data);
    try {
      for (size_t i = 0; i < in.size(); ++i) ex.check_input(i, in[i]);
    } catch (const Error& e) {
      throw Error(data.description(), "does not fit the model: " + std::string(e.what()));
    }
    for (size_t i = 0; i < in.size(); ++i) env[g.inputs[i]] = in[i];
    ex.run_range(env);
    for (const auto& l : find_quant_layers(g))
      if (!all_finite(env[l.data_input]))
        throw non_finite_error(first_non_finite(g, env), "calibrating on " + data.description());
    fn(env, batch.size());
    done += batch.size();
    if (o.progress) o.progress(done, it.num_samples());
  }
}

ActivationStats observe_activations(const Graph& g, const Dataset& data, const ObserveOptions& o) {
  ActivationStats stats;
  std::map<int, std::shared_ptr<Observer>> by_value;
  uint64_t k = 0;
  for (const auto& l : find_quant_layers(g)) {
    auto& obs = by_value[l.data_input];
    if (!obs) obs = std::make_shared<Observer>(o.seed * 1000003 + k++);
    stats.by_layer[l.name] = obs;
  }
  for_each_calibration_batch(g, data, o, [&](const std::vector<Tensor>& env, size_t n) {
    for (auto& [v, obs] : by_value) obs->observe(env[v]);
    stats.samples += n;
  });
  return stats;
}

InputGrams collect_input_grams(const Graph& g, const Dataset& data, const ObserveOptions& o) {
  const auto layers = find_quant_layers(g);
  InputGrams grams;
  for (const auto& l : layers) grams[l.name] = make_input_gram(g, l);
  for_each_calibration_batch(g, data, o, [&](const std::vector<Tensor>& env, size_t) {
    for (const auto& l : layers) accumulate_input_gram(g, l, env[l.data_input], grams[l.name]);
  });
  return grams;
}

ActQuant input_quant(const ActivationStats& stats, const std::string& layer, int bits,
                     ObserverKind kind, double percentile) {
  auto it = stats.by_layer.find(layer);
  check(it != stats.by_layer.end(), "calibration", "no statistics for layer '" + layer + "'");
  return it->second->compute(bits, kind, percentile);
}

QuantConfig uniform_config(const Graph& g, const ActivationStats* stats, const UniformOptions& o) {
  auto layers = find_quant_layers(g);
  QuantConfig cfg;
  cfg.model = g.source;
  cfg.info = {{"method", "uniform"},
              {"wbits", o.wbits},
              {"abits", o.abits},
              {"scheme", scheme_name(o.scheme)},
              {"scale", o.scale == ScaleMethod::mse ? "mse" : "maxabs"},
              {"per_row", o.per_row},
              {"edge_bits", o.edge_bits}};
  if (o.msq.active()) {
    check(o.per_row, "calibration", "mixed row schemes need per-row scales");
    cfg.info["method"] = o.msq.high_share > 0 ? "rmsmp" : "msq";
    cfg.info["msq"] = {{"ratio", o.msq.ratio},
                       {"shift_scheme", scheme_name(o.msq.shift)},
                       {"high_share", o.msq.high_share},
                       {"high_bits", o.msq.high_bits}};
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const QuantLayer& l = layers[i];
    const bool edge = o.edge_bits > 0 && (i == 0 || i + 1 == layers.size());
    LayerConfig lc;
    lc.name = l.name;
    if (o.wbits > 0) {
      const int bits = edge ? o.edge_bits : o.wbits;
      const Scheme scheme = edge ? Scheme::fixed : o.scheme;
      const Tensor& w = g.constant(l.weight);
      lc.rows = !edge && o.msq.active()
                    ? msq_rows(w, bits, o.msq, o.scale, l.row_axis)
                    : choose_weight_quant(w, scheme, bits, o.scale, o.per_row, l.row_axis);
    }
    if (o.abits > 0) {
      check(stats != nullptr, "calibration", "activation quantization needs calibration data");
      const int bits = edge ? std::max(o.edge_bits, o.abits) : o.abits;
      lc.input = input_quant(*stats, l.name, bits, o.observer, o.percentile);
    }
    cfg.layers.push_back(std::move(lc));
  }
  return cfg;
}

}  // namespace mixq
