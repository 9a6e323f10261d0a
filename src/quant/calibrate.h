// Calibration: activation statistics from a few hundred training samples, and configs built
// from them (uniform bit-widths and schemes; the allocators build mixed ones).
#pragma once
#include <functional>
#include <map>
#include <memory>

#include "data/dataset.h"
#include "quant/config.h"
#include "quant/input_gram.h"
#include "quant/layers.h"
#include "quant/rows.h"

namespace mixq {

// One observer per quantizable layer's data input, filled by running the float model.
struct ActivationStats {
  std::map<std::string, std::shared_ptr<Observer>> by_layer;  // layer name -> its input
  size_t samples = 0;
};

struct ObserveOptions {
  size_t samples = 1024;  // a seeded random subset of the dataset
  size_t batch = 256;
  uint64_t seed = 0;
  std::function<void(size_t, size_t)> progress;
};

// Runs the float model over the seeded calibration subset, handing fn each batch's values (by
// value id of g) and its sample count; refuses non-finite inputs to quantizable layers.
void for_each_calibration_batch(const Graph& g, const Dataset& data, const ObserveOptions& o,
                                const std::function<void(const std::vector<Tensor>&, size_t)>& fn);

ActivationStats observe_activations(const Graph& g, const Dataset& data, const ObserveOptions& o);

// The input gram of every quantizable layer (quant/input_gram.h), from the float model.
InputGrams collect_input_grams(const Graph& g, const Dataset& data, const ObserveOptions& o);

struct UniformOptions {
  int wbits = 4;  // 0: weights stay float
  int abits = 8;  // 0: activations stay float
  Scheme scheme = Scheme::fixed;
  ScaleMethod scale = ScaleMethod::mse;
  bool per_row = true;
  ObserverKind observer = ObserverKind::mse;
  double percentile = 99.99;
  // First and last quantizable layers: 8-bit fixed weights and 8-bit inputs (0: same as rest).
  int edge_bits = 8;
  // MSQ / RMSMP rows (quant/rows.h) in every layer but the edges; needs per_row, and `scheme`
  // is then the scheme of no row (the rows are fixed-point or msq.shift).
  MsqOptions msq;
};

// The same quantizer for every layer (edges aside). stats may be null when abits == 0.
QuantConfig uniform_config(const Graph& g, const ActivationStats* stats, const UniformOptions& o);

// The activation quantizer of one layer's input from its observer.
ActQuant input_quant(const ActivationStats& stats, const std::string& layer, int bits,
                     ObserverKind kind, double percentile);

}  // namespace mixq
