// CLADO sensitivity measurement: the loss change of quantizing each searched layer alone at
// each candidate, and of each pair of layers, on a sensitivity set, with forward passes only.
// Only what a perturbation can change is recomputed: the base activations are cached per chunk,
// a single (i,b) runs the descendants of layer i, and a pair runs the descendants of layer j on
// top of the (i,b) state. Work is checkpointed per (chunk, layer) so a killed run resumes.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "quant/rounding.h"
#include "runtime/output_compare.h"
#include "search/candidates.h"

namespace mixq {

struct SensitivityOptions {
  size_t samples = 1024;  // seeded random subset of the data
  size_t chunk = 0;       // samples per chunk; 0: from mem_limit
  double mem_limit = 0;   // bytes of cached activations; 0: 4 GB or half the run's limit
  uint64_t seed = 0;
  // Empty: default_loss (cross-entropy with labels; KL or MSE to the float model without).
  std::optional<OutputLoss> loss;
  // How each candidate's weights are rounded (gptq: as the quantized model will hold them).
  WeightRounding rounding;
  bool pairs = true;
  int pair_window = 0;      // > 0: only pairs of searched layers at most this far apart
  std::string checkpoint;   // file written after every unit of work; empty: none
  int rank = 0, ranks = 1;  // measure only this rank's shard of the units (see assign_shards)
  bool resume = false;      // continue from the checkpoint
  // What a refused resume tells the user to do.
  std::string resume_advice = "remove it or run without --resume";
  std::function<void(const std::string&)> progress;  // one status line per unit
};

// Everything measured, in sums over samples so chunks add up in a fixed order.
struct SensitivityData {
  static constexpr int kVersion = 2;  // 2: model_hash and data_hash in the header
  nlohmann::json header;              // model, candidates, layers, options: must match on resume
  size_t layers = 0, candidates = 0, chunks = 0, samples = 0;
  std::vector<size_t> chunk_sizes;
  // Per chunk: base loss sum, single loss sums [layers*candidates], pair loss sums
  // [(layers*candidates)^2, only s<t filled], and which layers are done.
  std::vector<double> base;
  std::vector<std::vector<double>> single, pair;
  std::vector<std::vector<uint8_t>> done;
  // Counters (not needed for the result; reported).
  double executed_macs = 0, naive_macs = 0, evaluations = 0, seconds = 0;

  size_t n() const { return layers * candidates; }
  bool complete() const;
  double L0() const;                                                // mean base loss
  double single_delta(size_t s, size_t c) const;                    // d_i(b)
  double pair_delta(size_t s, size_t c, size_t t, size_t d) const;  // d_ij(b,b'), s != t
  bool pair_measured(size_t s, size_t t) const;
  // Omega (n x n, row-major): diagonal d_i(b), off-diagonal cross/2 for measured pairs.
  std::vector<double> omega() const;
};

// Runs (or resumes) the measurement. `graph` is the float model; activation quantizers come
// from stats (the base model has activation quantization on and float weights; layers outside
// the search at their edge bits).
SensitivityData measure_sensitivity(const Graph& graph, const SearchSpace& space,
                                    const ActivationStats& stats, const Dataset& data,
                                    const SensitivityOptions& o);

// Sharding: the units of work are (chunk, layer) pairs, each with its singles and its pairs
// with later layers. Returns the rank of each unit, balancing the given costs (MACs).
std::vector<int> assign_shards(const std::vector<double>& cost, int ranks);
// One measurement from shards that each did their own units; refuses overlaps and mismatched
// settings. Counters add up, except seconds: the longest shard's.
SensitivityData merge_shards(const std::vector<SensitivityData>& shards);

// Versioned binary file (docs/omega-format.md): "MIXQOMG1", header JSON length + JSON, then per
// chunk the arrays.
void save_sensitivity(const SensitivityData& d, const std::string& path);
SensitivityData load_sensitivity(const std::string& path);
std::string sensitivity_bytes(const SensitivityData& d);
// `name` (a path or a rank) names the bytes in errors.
SensitivityData parse_sensitivity(const std::string& bytes, const std::string& name);
nlohmann::json sensitivity_to_json(const SensitivityData& d);

}  // namespace mixq
