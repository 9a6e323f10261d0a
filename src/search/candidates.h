// Candidate quantizers a bit allocator chooses among, one per searched layer, with their costs.
#pragma once
#include <string>
#include <vector>

#include "quant/calibrate.h"
#include "quant/config.h"
#include "quant/layers.h"
#include "quant/rows.h"

namespace mixq {

// One candidate: a weight quantizer (scheme and bits) applied to every row of a layer.
// An MSQ/RMSMP candidate mixes rows (quant/rows.h) at a fixed:shift ratio 1:ratio, the shift
// rows in `scheme`.
struct CandidateSpec {
  std::string name;  // "w4", "w4-sp2", "w4-msq1.5", "w4-rmsmp2", ...
  int bits = 4;
  Scheme scheme = Scheme::fixed;  // every row; with ratio > 0, the shift rows
  double ratio = 0;               // MSQ: fixed:shift rows = 1:ratio
  double high_share = 0;          // RMSMP: share of rows at 8-bit fixed point
  bool mixed() const { return ratio > 0 || high_share > 0; }
};
// The rows a candidate gives a weight (scales by MSE).
std::vector<RowQuant> candidate_rows(const Tensor& w, const CandidateSpec& c, int row_axis);
// Average bits of a layer with `rows` rows at candidate c (RMSMP's 8-bit rows raise it).
double candidate_bits(const CandidateSpec& c, int64_t rows);
// Share of a layer's rows on the shift (LUT) array and at 8-bit fixed point.
double candidate_shift_share(const CandidateSpec& c, int64_t rows);
double candidate_high_share(const CandidateSpec& c, int64_t rows);

// Parses a comma-separated list: "w2,w4,w8", "w4-sp2,w4-pot,w8", "w4-msq1.5" (MSQ with SP2 at
// fixed:SP2 = 1:1.5; "w4-msq" is 1:1.5), "w4-msqpot2" (PoT shift rows), "w4-rmsmp1.5" (MSQ plus
// 5 % of rows at 8 bits). Error naming `where` on bad text.
std::vector<CandidateSpec> parse_candidates(const std::string& text, const std::string& where);
// The candidates' names, comma-separated (what parse_candidates reads back).
std::string candidate_names(const std::vector<CandidateSpec>& candidates);

// What the user fixed of one layer (search/layer_rules.h): nothing, float weights and input, or
// one candidate. A fixed layer in the search is still measured, but no allocator chooses for
// it, and its cost is the same at every candidate in every budget.
struct LayerFix {
  enum class Kind { none, keep_float, pin };
  Kind kind = Kind::none;
  CandidateSpec candidate;  // pin
  std::string rule;         // the flag and text that fixed it, for messages
};

// The layers a search covers: every quantizable layer except (by default) the first and last.
struct SearchSpace {
  std::vector<QuantLayer> all;  // every quantizable layer of the model
  std::vector<int> searched;    // indices into `all`
  std::vector<CandidateSpec> candidates;
  std::vector<int64_t> macs;    // per layer of `all`, per sample
  int abits = 8;                // activation bits of every layer (for BOPs)
  int edge_bits = 8;            // bits of the layers left out of the search
  std::vector<LayerFix> fixes;  // per layer of `all`, or empty: none fixed

  // The fix of layer i of `all`.
  const LayerFix& fix(size_t i) const;
  bool fixed(size_t i) const { return fix(i).kind != LayerFix::Kind::none; }

  size_t num_searched() const { return searched.size(); }
  size_t num_candidates() const { return candidates.size(); }
  // Weight bits of searched layer s at candidate c (elements x bits).
  double size_bits(size_t s, size_t c) const;
  // Bit operations of searched layer s at candidate c per sample: MACs x b_w x b_a.
  double bops(size_t s, size_t c) const;
  // Total weight count of the searched layers.
  double searched_weights() const;
  // The searched layers that no fix holds: the layers a bits budget averages over.
  std::vector<QuantLayer> free_layers() const;
};

SearchSpace make_search_space(const Graph& g, std::vector<CandidateSpec> candidates,
                              bool include_edges, int abits);

// Activation quantizer of every layer's input: searched layers at `abits`, the others at
// max(abits, edge_bits).
using InputQuants = std::map<std::string, ActQuant>;
InputQuants input_quants(const SearchSpace& space, const ActivationStats& stats,
                         ObserverKind observer = ObserverKind::mse);
nlohmann::json input_quants_to_json(const InputQuants& q);
InputQuants input_quants_from_json(const nlohmann::json& j, const std::string& where);

// The config of an assignment: searched layer s gets candidate choice[s] (per-row MSE scales;
// -1 leaves its weights float), other layers `edge_bits` fixed; inputs quantized as given
// (float when inputs is null); then the space's fixes (apply_fix).
QuantConfig assignment_config(const Graph& g, const SearchSpace& space,
                              const std::vector<int>& choice, const InputQuants* inputs);

// A fix on one layer's config: keep_float drops its weight and input quantizers, pin sets its
// weights to the candidate (per-row MSE scales) and keeps its input quantizer.
void apply_fix(const Graph& g, const QuantLayer& l, const LayerFix& f, LayerConfig& lc);

// Rebuilds the search space recorded in a sensitivity file's header for this model.
SearchSpace search_space_from_header(const Graph& g, const nlohmann::json& header,
                                     const std::string& where);

}  // namespace mixq
