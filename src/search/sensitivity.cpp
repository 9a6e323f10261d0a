#include "search/sensitivity.h"

#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include <filesystem>

#include "base/error.h"
#include "base/file_io.h"
#include "base/json_int.h"
#include "base/memory.h"
#include "data/batch_iterator.h"
#include "data/model_inputs.h"
#include "quant/apply.h"
#include "runtime/executor.h"
#include "runtime/finite.h"
#include "runtime/summary.h"

namespace mixq {
namespace {

using clock_type = std::chrono::steady_clock;

// Base config: activation quantization everywhere, searched layers' weights float, the other
// layers' weights at the edge bits.
QuantConfig base_config(const Graph& g, const SearchSpace& space, const InputQuants& inputs) {
  // The measurement does not depend on --pin / --keep-float: one file serves any of them.
  check(space.fixes.empty(), "sensitivity", "measured on a space with fixed layers");
  return assignment_config(g, space, std::vector<int>(space.num_searched(), -1), &inputs);
}

// Nodes reachable from node n (n included), in topological order.
std::vector<int> descendants(const Graph& g, int n) {
  std::vector<bool> hit(g.nodes.size(), false);
  std::vector<bool> value_hit(g.values.size(), false);
  hit[n] = true;
  for (int o : g.nodes[n].outputs)
    if (o >= 0) value_hit[o] = true;
  for (size_t i = n + 1; i < g.nodes.size(); ++i) {
    for (int v : g.nodes[i].inputs)
      if (v >= 0 && value_hit[v]) hit[i] = true;
    if (hit[i])
      for (int o : g.nodes[i].outputs)
        if (o >= 0) value_hit[o] = true;
  }
  std::vector<int> out;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (hit[i]) out.push_back(static_cast<int>(i));
  return out;
}

// An environment layered over a parent: the values the run nodes write live in buffers kept
// across runs (so steady state allocates nothing); everything else is shared with the parent.
struct ScratchEnv {
  std::vector<Tensor> env, own;
  void prepare(const std::vector<Tensor>& parent, const std::vector<int>& written) {
    env = parent;
    if (own.size() != env.size()) own.resize(env.size());
    for (int v : written) env[v] = std::move(own[v]);
  }
  void finish(const std::vector<int>& written) {
    for (int v : written) own[v] = std::move(env[v]);
    env.clear();
  }
};

std::vector<int> written_values(const Graph& g, const std::vector<int>& nodes) {
  std::vector<int> w;
  for (int n : nodes)
    for (int o : g.nodes[n].outputs)
      if (o >= 0) w.push_back(o);
  return w;
}

void run_nodes(Executor& ex, std::vector<Tensor>& env, const std::vector<int>& nodes) {
  for (int n : nodes) ex.run_range(env, n, n + 1);
}

// A resume compares headers by content: the model's and the data's hashes and the settings,
// never the paths they came from. Returns what differs, "" when nothing does.
std::string header_difference(nlohmann::json have, nlohmann::json want) {
  have.erase("model");
  want.erase("model");
  if (have.value("model_hash", "") != want.value("model_hash", ""))
    return "a different model (its content differs)";
  if (have.value("data_hash", "") != want.value("data_hash", ""))
    return "different data (the selected samples differ)";
  for (const auto& [key, v] : want.items())
    if (!have.contains(key) || have[key] != v) return "other settings ('" + key + "' differs)";
  for (const auto& [key, v] : have.items())
    if (!want.contains(key)) return "other settings ('" + key + "' differs)";
  return "";
}

nlohmann::json make_header(const Graph& g, const SearchSpace& space, const SensitivityOptions& o,
                           OutputLoss loss, const std::vector<size_t>& chunk_sizes,
                           const InputQuants& inputs, const std::string& data_digest) {
  const nlohmann::json acts = input_quants_to_json(inputs);
  nlohmann::json layers = nlohmann::json::array(), cands = nlohmann::json::array();
  for (int i : space.searched) layers.push_back(space.all[i].name);
  for (const auto& c : space.candidates) cands.push_back(c.name);
  nlohmann::json h = {{"format", "mixq-sensitivity"},
                      {"version", SensitivityData::kVersion},
                      {"model", g.source},
                      {"model_hash", g.content_hash()},
                      {"data_hash", data_digest},
                      {"layers", layers},
                      {"candidates", cands},
                      {"abits", space.abits},
                      {"edge_bits", space.edge_bits},
                      {"samples", o.samples},
                      {"chunks", chunk_sizes},
                      {"seed", o.seed},
                      {"loss", loss_name(loss)},
                      {"pairs", o.pairs},
                      {"pair_window", o.pair_window},
                      {"activations", acts}};
  // Written only when not the default, so files measured before it existed still resume.
  if (o.rounding.method != Rounding::nearest) h["rounding"] = rounding_to_json(o.rounding);
  return h;
}

}  // namespace

bool SensitivityData::complete() const {
  for (const auto& d : done)
    for (uint8_t x : d)
      if (!x) return false;
  return !done.empty();
}

double SensitivityData::L0() const {
  double s = 0;
  for (double b : base) s += b;
  return s / static_cast<double>(samples);
}

double SensitivityData::single_delta(size_t s, size_t c) const {
  double sum = 0;
  for (size_t k = 0; k < chunks; ++k) sum += single[k][s * candidates + c];
  return sum / static_cast<double>(samples) - L0();
}

bool SensitivityData::pair_measured(size_t s, size_t t) const {
  if (s == t || !header.value("pairs", true)) return false;
  const int w = header.value("pair_window", 0);
  return w <= 0 || static_cast<int>(s > t ? s - t : t - s) <= w;
}

double SensitivityData::pair_delta(size_t s, size_t c, size_t t, size_t d) const {
  if (s > t) std::swap(s, t), std::swap(c, d);
  const size_t a = s * candidates + c, b = t * candidates + d;
  double sum = 0;
  for (size_t k = 0; k < chunks; ++k) sum += pair[k][a * n() + b];
  return sum / static_cast<double>(samples) - L0();
}

std::vector<double> SensitivityData::omega() const {
  const size_t N = n();
  std::vector<double> om(N * N, 0.0);
  for (size_t s = 0; s < layers; ++s)
    for (size_t c = 0; c < candidates; ++c) {
      const size_t a = s * candidates + c;
      om[a * N + a] = single_delta(s, c);
      for (size_t t = s + 1; t < layers; ++t) {
        if (!pair_measured(s, t)) continue;
        for (size_t d = 0; d < candidates; ++d) {
          const size_t b = t * candidates + d;
          const double cross = pair_delta(s, c, t, d) - single_delta(s, c) - single_delta(t, d);
          om[a * N + b] = om[b * N + a] = cross / 2;
        }
      }
    }
  return om;
}

SensitivityData measure_sensitivity(const Graph& graph, const SearchSpace& space,
                                    const ActivationStats& stats, const Dataset& data,
                                    const SensitivityOptions& o) {
  check(data.size() > 0, data.description(), "dataset is empty");
  check(!graph.inputs.empty() && !graph.outputs.empty(), graph.source,
        "sensitivity needs a model with inputs and an output");
  const size_t samples = std::min(o.samples, data.size());
  std::vector<size_t> subset = random_subset(data.size(), samples, o.seed);

  // The quantized base model and the layers inside the executor's (optimised) graph.
  const InputQuants inputs = input_quants(space, stats);
  const QuantConfig base = base_config(graph, space, inputs);
  Graph qgraph = apply_quant(round_weights(graph, base, o.rounding), base);
  Executor ex(qgraph, Impl::fast, true);
  const Graph& eg = ex.graph();
  const size_t L = space.num_searched(), C = space.num_candidates();
  std::vector<int> node_of(L, -1), weight_of(L, -1);
  std::vector<std::vector<Tensor>> wq(L);
  for (size_t s = 0; s < L; ++s) {
    const QuantLayer& l = space.all[space.searched[s]];
    for (size_t n = 0; n < eg.nodes.size(); ++n)
      if (eg.nodes[n].name == l.name) node_of[s] = static_cast<int>(n);
    check(node_of[s] >= 0, graph.source, "layer '" + l.name + "' not found after optimisation");
    weight_of[s] = eg.nodes[node_of[s]].inputs[1];
    const Tensor& w = graph.constant(l.weight);
    for (const auto& c : space.candidates)
      wq[s].push_back(
          round_weight(w, candidate_rows(w, c, l.row_axis), l.row_axis, o.rounding, l.name));
  }
  // Process layers in graph order so a pair (s, t) runs the smaller descendant set of t.
  for (size_t s = 1; s < L; ++s)
    check(node_of[s] > node_of[s - 1], graph.source, "searched layers out of graph order");
  std::vector<std::vector<int>> desc(L), desc_written(L);
  for (size_t s = 0; s < L; ++s) {
    desc[s] = descendants(eg, node_of[s]);
    desc_written[s] = written_values(eg, desc[s]);
  }

  // Chunks: bounded by the memory limit (three layers of cached activations per sample).
  size_t chunk = o.chunk;
  if (chunk == 0) {
    ModelSummary sum = summarize(qgraph);
    double per_sample = 0;
    for (const auto& n : sum.nodes)
      per_sample += 4.0 * static_cast<double>(shape_numel(n.output_shape));
    // A fixed default (not the machine's memory) keeps the chunks, and so the sums, the same
    // on every machine with enough memory.
    const double cache =
        o.mem_limit > 0 ? o.mem_limit : std::min(4e9, static_cast<double>(mem_limit()) / 2);
    chunk = static_cast<size_t>(std::max(1.0, cache / (3.0 * std::max(per_sample, 1.0))));
    chunk = std::min<size_t>(chunk, 512);
  }
  std::vector<size_t> chunk_sizes;
  for (size_t first = 0; first < samples; first += chunk)
    chunk_sizes.push_back(std::min(chunk, samples - first));

  // MACs per sample of every node, from a one-sample run: they weigh the units for sharding
  // and count the work done.
  std::vector<double> node_macs_per_sample(eg.nodes.size(), 0);
  double full_macs = 0;
  OutputLoss loss = OutputLoss::cross_entropy;
  {
    const std::vector<Tensor> in = model_inputs(data.get({subset[0]}), graph, data);
    try {
      for (size_t i = 0; i < in.size(); ++i) ex.check_input(i, in[i]);
    } catch (const Error& e) {
      throw Error(data.description(), "does not fit the model: " + std::string(e.what()));
    }
    auto env = ex.environment();
    for (size_t i = 0; i < in.size(); ++i) env[eg.inputs[i]] = in[i];
    ex.run_range(env);
    loss = o.loss.value_or(default_loss(data.labelled(), env[eg.outputs[0]]));
    if (loss == OutputLoss::cross_entropy) require_labels(data, "the cross-entropy loss");
    for (size_t n = 0; n < eg.nodes.size(); ++n) {
      std::vector<Shape> in_shapes;
      for (int v : eg.nodes[n].inputs) in_shapes.push_back(v >= 0 ? env[v].shape() : Shape{});
      node_macs_per_sample[n] = static_cast<double>(
          node_macs(eg.nodes[n], in_shapes, env[eg.nodes[n].outputs[0]].shape()));
      full_macs += node_macs_per_sample[n];
    }
  }
  auto macs_of = [&](const std::vector<int>& nodes) {
    double m = 0;
    for (int n : nodes) m += node_macs_per_sample[n];
    return m;
  };
  // Unit (chunk k, layer s): its singles and its pairs with later layers. Shards balance
  // these MAC costs over the ranks; every rank computes the same plan.
  std::vector<double> unit_cost(chunk_sizes.size() * L, 0);
  for (size_t k = 0; k < chunk_sizes.size(); ++k)
    for (size_t s = 0; s < L; ++s) {
      double m = macs_of(desc[s]);
      for (size_t t = s + 1; o.pairs && t < L; ++t) {
        if (o.pair_window > 0 && static_cast<int>(t - s) > o.pair_window) break;
        m += static_cast<double>(C) * macs_of(desc[t]);
      }
      unit_cost[k * L + s] = static_cast<double>(C) * m * static_cast<double>(chunk_sizes[k]);
    }
  check(o.ranks >= 1 && o.rank >= 0 && o.rank < o.ranks, "sensitivity", "bad shard rank");
  const std::vector<int> owner = assign_shards(unit_cost, o.ranks);

  SensitivityData d;
  d.header = make_header(graph, space, o, loss, chunk_sizes, inputs, hash_samples(data, subset));
  if (o.resume && !o.checkpoint.empty() && std::filesystem::exists(o.checkpoint)) {
    const nlohmann::json want = d.header;
    d = load_sensitivity(o.checkpoint);
    const std::string differs = header_difference(d.header, want);
    check(differs.empty(), o.checkpoint, "was measured on " + differs + "; " + o.resume_advice);
    d.header = want;  // the paths of this run
  } else {
    d.layers = L;
    d.candidates = C;
    d.chunks = chunk_sizes.size();
    d.samples = samples;
    d.chunk_sizes = chunk_sizes;
    d.base.assign(d.chunks, 0);
    d.single.assign(d.chunks, std::vector<double>(L * C, 0));
    d.pair.assign(d.chunks, std::vector<double>(L * C * L * C, 0));
    d.done.assign(d.chunks, std::vector<uint8_t>(L, 0));
  }

  std::unique_ptr<Executor> fp;
  if (loss != OutputLoss::cross_entropy) fp = std::make_unique<Executor>(graph, Impl::fast);
  // A shard reports only its own units, even when it resumed from a file holding more.
  for (size_t k = 0; k < d.chunks; ++k)
    for (size_t s = 0; s < L; ++s)
      if (owner[k * L + s] != o.rank) d.done[k][s] = 0;
  ScratchEnv lvl1, lvl2;
  size_t first = 0;
  for (size_t k = 0; k < d.chunks; first += chunk_sizes[k], ++k) {
    bool all_done = true;
    for (size_t s = 0; s < L; ++s)
      all_done = all_done && (d.done[k][s] || owner[k * L + s] != o.rank);
    if (all_done) continue;
    std::vector<size_t> idx(subset.begin() + first, subset.begin() + first + chunk_sizes[k]);
    const Batch batch = data.get(idx);
    const std::vector<Tensor> in = model_inputs(batch, graph, data);
    try {
      for (size_t i = 0; i < in.size(); ++i) ex.check_input(i, in[i]);
    } catch (const Error& e) {
      throw Error(data.description(), "does not fit the model: " + std::string(e.what()));
    }
    Tensor reference;
    if (fp) reference = fp->run(in)[0].clone();
    auto base = ex.environment();
    for (size_t i = 0; i < in.size(); ++i) base[eg.inputs[i]] = in[i];
    ex.run_range(base);
    const int out = eg.outputs[0];
    const double n_k = static_cast<double>(chunk_sizes[k]);
    if (loss == OutputLoss::cross_entropy && base[out].dim(0) > 0)
      check_labels(data, batch.labels, base[out].numel() / base[out].dim(0), eg.source);
    d.base[k] = loss_sum(base[out], batch.labels, fp ? &reference : nullptr, loss);
    if (!std::isfinite(d.base[k])) {
      const NonFinite f = first_non_finite(eg, base);
      const std::string during = "measuring the base model's loss on " + data.description();
      if (f.found) throw non_finite_error(f, during);
      throw Error(graph.source, "the loss is not finite while " + during);
    }
    // A perturbed loss that is not finite would enter Omega as NaN: stop at the first one.
    auto check_loss = [&](double loss, size_t layer, size_t cand) {
      check(std::isfinite(loss), space.all[space.searched[layer]].name,
            "the loss with this layer at " + space.candidates[cand].name +
                " is not finite (its quantized weights or the activations they produce)");
    };
    for (size_t s = 0; s < L; ++s) {
      if (d.done[k][s] || owner[k * L + s] != o.rank) continue;
      const auto t0 = clock_type::now();
      double evals = 0;
      for (size_t c = 0; c < C; ++c) {
        lvl1.prepare(base, desc_written[s]);
        lvl1.env[weight_of[s]] = wq[s][c];
        run_nodes(ex, lvl1.env, desc[s]);
        d.single[k][s * C + c] =
            loss_sum(lvl1.env[out], batch.labels, fp ? &reference : nullptr, loss);
        check_loss(d.single[k][s * C + c], s, c);
        d.executed_macs += macs_of(desc[s]) * n_k;
        evals += 1;
        for (size_t t = s + 1; o.pairs && t < L; ++t) {
          if (o.pair_window > 0 && static_cast<int>(t - s) > o.pair_window) break;
          for (size_t c2 = 0; c2 < C; ++c2) {
            lvl2.prepare(lvl1.env, desc_written[t]);
            lvl2.env[weight_of[t]] = wq[t][c2];
            run_nodes(ex, lvl2.env, desc[t]);
            const size_t a = s * C + c, b = t * C + c2;
            d.pair[k][a * L * C + b] =
                loss_sum(lvl2.env[out], batch.labels, fp ? &reference : nullptr, loss);
            check_loss(d.pair[k][a * L * C + b], t, c2);
            lvl2.finish(desc_written[t]);
            d.executed_macs += macs_of(desc[t]) * n_k;
            evals += 1;
          }
        }
        lvl1.finish(desc_written[s]);
      }
      d.evaluations += evals;
      d.naive_macs += evals * full_macs * n_k;
      d.done[k][s] = 1;
      const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
      d.seconds += secs;
      if (!o.checkpoint.empty()) save_sensitivity(d, o.checkpoint);
      if (o.progress)
        o.progress(fmt::format("chunk {}/{} layer {}/{} ({}): {} evaluations, {:.1f} evals/s",
                               k + 1, d.chunks, s + 1, L, space.all[space.searched[s]].name, evals,
                               evals / std::max(secs, 1e-9)));
    }
  }
  return d;
}

// File layout (little-endian): 8-byte magic "MIXQOMG1", u64 header length, header JSON (with
// layers, candidates, chunk sizes), u64 counters length + counters JSON, then per chunk:
// f64 base, f64[L*C] single, f64[(L*C)^2] pair, u8[L] done.
std::string sensitivity_bytes(const SensitivityData& d) {
  std::string out = "MIXQOMG1";
  auto put_u64 = [&](uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); };
  auto put_f64s = [&](const double* p, size_t n) {
    out.append(reinterpret_cast<const char*>(p), n * sizeof(double));
  };
  const std::string header = d.header.dump();
  put_u64(header.size());
  out += header;
  const std::string counters = nlohmann::json{
      {"executed_macs", d.executed_macs},
      {"naive_macs", d.naive_macs},
      {"evaluations", d.evaluations},
      {"seconds", d.seconds}}.dump();
  put_u64(counters.size());
  out += counters;
  for (size_t k = 0; k < d.chunks; ++k) {
    put_f64s(&d.base[k], 1);
    put_f64s(d.single[k].data(), d.single[k].size());
    put_f64s(d.pair[k].data(), d.pair[k].size());
    out.append(reinterpret_cast<const char*>(d.done[k].data()), d.done[k].size());
  }
  return out;
}

void save_sensitivity(const SensitivityData& d, const std::string& path) {
  write_file_atomic(path, sensitivity_bytes(d));
}

SensitivityData load_sensitivity(const std::string& path) {
  return parse_sensitivity(read_file(path), path);
}

SensitivityData parse_sensitivity(const std::string& bytes, const std::string& path) {
  size_t pos = 0;
  // n <= size - pos, not pos + n <= size: a corrupt length near 2^64 would wrap the sum.
  auto need = [&](size_t n) { check(n <= bytes.size() - pos, path, "truncated sensitivity file"); };
  need(8);
  check(bytes.compare(0, 8, "MIXQOMG1") == 0, path, "not a mixq sensitivity file (bad magic)");
  pos = 8;
  auto get_u64 = [&]() {
    need(8);
    uint64_t v;
    std::memcpy(&v, bytes.data() + pos, 8);
    pos += 8;
    return v;
  };
  auto get_json = [&]() {
    const uint64_t n = get_u64();
    need(n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(bytes.substr(pos, n));
    } catch (const nlohmann::json::exception&) {
      throw Error(path, "corrupt sensitivity file header");
    }
    pos += n;
    return j;
  };
  SensitivityData d;
  d.header = get_json();
  // value() with a JSON default: a field of another type compares unequal instead of throwing.
  const nlohmann::json none;
  check(d.header.is_object() && d.header.value("format", none) == "mixq-sensitivity", path,
        "not a mixq sensitivity file");
  // Version 1 headers lack the content hashes: readable, but never resumed.
  check(d.header.value("version", none) == SensitivityData::kVersion ||
            d.header.value("version", none) == 1,
        path, "unsupported sensitivity file version");
  nlohmann::json counters = get_json();
  try {
    d.layers = d.header.at("layers").size();
    d.candidates = d.header.at("candidates").size();
    check(json_int_fits<std::vector<size_t>>(d.header.at("chunks")), path,
          "corrupt sensitivity file header");
    d.chunk_sizes = d.header.at("chunks").get<std::vector<size_t>>();
    d.executed_macs = counters.at("executed_macs");
    d.naive_macs = counters.at("naive_macs");
    d.evaluations = counters.at("evaluations");
    d.seconds = counters.at("seconds");
  } catch (const nlohmann::json::exception&) {
    throw Error(path, "corrupt sensitivity file header");
  }
  check(d.layers > 0 && d.candidates > 0 && d.layers * d.candidates < 100000, path,
        "absurd layer or candidate count");
  d.chunks = d.chunk_sizes.size();
  d.samples = 0;
  for (size_t c : d.chunk_sizes) d.samples += c;
  check(d.samples > 0, path, "no samples");
  const size_t n = d.n();
  for (size_t k = 0; k < d.chunks; ++k) {
    need(8 * (1 + n + n * n) + d.layers);
    d.base.push_back(0);
    std::memcpy(&d.base.back(), bytes.data() + pos, 8);
    pos += 8;
    d.single.emplace_back(n);
    std::memcpy(d.single.back().data(), bytes.data() + pos, 8 * n);
    pos += 8 * n;
    d.pair.emplace_back(n * n);
    std::memcpy(d.pair.back().data(), bytes.data() + pos, 8 * n * n);
    pos += 8 * n * n;
    d.done.emplace_back(bytes.begin() + pos, bytes.begin() + pos + d.layers);
    pos += d.layers;
  }
  check(pos == bytes.size(), path, "trailing bytes after the data");
  return d;
}

std::vector<int> assign_shards(const std::vector<double>& cost, int ranks) {
  // Longest processing time first: the costliest unit goes to the least-loaded rank. Ties
  // break by unit and rank index so every rank derives the same plan.
  std::vector<size_t> order(cost.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  std::vector<double> load(std::max(ranks, 1), 0.0);
  std::vector<int> owner(cost.size(), 0);
  for (size_t u : order) {
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[u] = r;
    load[r] += cost[u];
  }
  return owner;
}

SensitivityData merge_shards(const std::vector<SensitivityData>& shards) {
  check(!shards.empty(), "sensitivity", "no shards to merge");
  SensitivityData m = shards[0];
  const size_t L = m.layers, C = m.candidates, n = m.n();
  m.executed_macs = m.naive_macs = m.evaluations = m.seconds = 0;
  for (size_t k = 0; k < m.chunks; ++k) std::fill(m.done[k].begin(), m.done[k].end(), 0);
  for (size_t r = 0; r < shards.size(); ++r) {
    const SensitivityData& d = shards[r];
    const std::string who = "shard " + std::to_string(r);
    const std::string differs = header_difference(d.header, m.header);
    check(differs.empty(), who, "was measured on " + differs + " than shard 0");
    for (size_t k = 0; k < m.chunks; ++k) {
      bool any = false;
      for (size_t s = 0; s < L; ++s) {
        if (!d.done[k][s]) continue;
        check(!m.done[k][s], who, "repeats a unit another shard measured");
        m.done[k][s] = 1;
        any = true;
        for (size_t a = s * C; a < (s + 1) * C; ++a) {
          m.single[k][a] = d.single[k][a];
          std::copy(d.pair[k].begin() + a * n, d.pair[k].begin() + (a + 1) * n,
                    m.pair[k].begin() + a * n);
        }
      }
      if (any) m.base[k] = d.base[k];
    }
    m.executed_macs += d.executed_macs;
    m.naive_macs += d.naive_macs;
    m.evaluations += d.evaluations;
    // The shards ran side by side: the job measured for as long as its slowest shard.
    m.seconds = std::max(m.seconds, d.seconds);
  }
  return m;
}

nlohmann::json sensitivity_to_json(const SensitivityData& d) {
  nlohmann::json j = d.header;
  j["complete"] = d.complete();
  if (d.complete()) j["L0"] = d.L0();
  j["executed_macs"] = d.executed_macs;
  j["naive_macs"] = d.naive_macs;
  j["evaluations"] = d.evaluations;
  j["seconds"] = d.seconds;
  if (!d.complete()) return j;
  nlohmann::json single = nlohmann::json::array();
  for (size_t s = 0; s < d.layers; ++s) {
    nlohmann::json row = nlohmann::json::array();
    for (size_t c = 0; c < d.candidates; ++c) row.push_back(d.single_delta(s, c));
    single.push_back(row);
  }
  j["single_delta"] = single;
  const auto om = d.omega();
  const size_t n = d.n();
  nlohmann::json omega = nlohmann::json::array();
  for (size_t a = 0; a < n; ++a)
    omega.push_back(std::vector<double>(om.begin() + a * n, om.begin() + (a + 1) * n));
  j["omega"] = omega;
  return j;
}

}  // namespace mixq
