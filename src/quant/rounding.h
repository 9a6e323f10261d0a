// How quantized weights are rounded onto their grids: to the nearest level, or with the rounding
// error compensated across each row's inputs (quant/gptq.h). The rows' quantizers (scheme, bits,
// scale) are the same either way; compensated weights are stored in the model at their
// dequantized values, where nearest rounding with the same config reproduces them exactly.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "quant/calibrate.h"
#include "quant/config.h"
#include "quant/gptq.h"
#include "quant/learned_rounding.h"

namespace mixq {

enum class Rounding { nearest, gptq, adaround };

const char* rounding_name(Rounding r);
// "nearest", "gptq" or "adaround"; an error naming `where` otherwise.
Rounding parse_rounding(const std::string& text, const std::string& where);
// The names, comma-separated (for help texts and errors), and as a list (for option checks).
std::string rounding_names();
std::vector<std::string> rounding_choices();

// Rounded weights already computed, by layer, weight and quantizer: the allocations of a sweep
// share most of their layers' choices, and compensated rounding of a wide layer costs O(k^3).
struct RoundingCache {
  std::mutex mutex;
  std::map<std::string, Tensor> weights;
};

// A rounding method with what it needs: gptq and adaround read every quantized layer's input gram,
// collected on `samples` calibration samples drawn with `seed` (recorded so a later run can collect
// the same grams).
struct WeightRounding {
  Rounding method = Rounding::nearest;
  std::shared_ptr<const InputGrams> grams;
  size_t samples = 0;
  uint64_t seed = 0;
  GptqOptions gptq;
  LearnedRoundingOptions learned;
  std::shared_ptr<RoundingCache> cache = std::make_shared<RoundingCache>();
};

// Calibration samples the grams use at most: on ResNet-20 W3, 256 samples give the accuracy of
// 1,024 (77.18 vs 77.13 %) in a third of the time.
inline constexpr size_t kGramSamples = 256;

// The rounding `method` on g with its grams collected from `data` (at most kGramSamples of
// o.samples, o.seed); nothing is collected for nearest.
WeightRounding make_rounding(Rounding method, const Graph& g, const Dataset& data,
                             ObserveOptions o);
// {"method", "samples", "seed"}: what a sensitivity file records. Reading it back gives the
// method, samples and seed without grams: make_rounding(r.method, ...) with those collects them.
nlohmann::json rounding_to_json(const WeightRounding& r);
WeightRounding rounding_from_json(const nlohmann::json& j, const std::string& where);

// The quantized weight of layer `layer` (its name: the key of the grams, and errors name it).
Tensor round_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                    const WeightRounding& r, const std::string& layer);

// A copy of g whose quantized layers (those cfg gives weight rows) hold their rounded weights
// at the dequantized values. cfg's scales must come from g's weights (as calibration and the
// allocators choose them): apply_quant(round_weights(g, cfg, r), cfg) is then the model.
Graph round_weights(const Graph& g, const QuantConfig& cfg, const WeightRounding& r);

// round_weights for the model as it will run: layers are rounded one at a time in graph order,
// each on the inputs it receives with the layers before it rounded and activations quantized as
// cfg says, aiming at the output the float layer gives on the float model's inputs (the weights
// are first moved to W + (H_qq^-1 X_q^T (X_f - X_q) W^T)^T, the best float answer to the
// quantized inputs, then rounded with H_qq). Errors then no longer compound unseen from layer to
// layer. The inputs come from o.samples (at most kGramSamples) samples of data drawn with o.seed;
// each layer costs two passes over them; o.progress hears (layers done, layers). Nearest
// rounding returns g's weights unchanged.
Graph round_weights_sequential(const Graph& g, const QuantConfig& cfg, const WeightRounding& r,
                               const Dataset& data, ObserveOptions o);

}  // namespace mixq
