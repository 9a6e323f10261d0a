// Options of commands that build a uniform quantization config.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "cli/data_args.h"
#include "quant/calibrate.h"
#include "quant/rounding.h"

namespace mixq::cli {

struct QuantArgs {
  int wbits = 4, abits = 8, edge_bits = 8;
  std::string scheme = "fixed", scale = "mse", observer = "mse";
  double percentile = 99.99;
  bool per_tensor = false;
  // Weight rounding (quant/rounding.h); a command sets its own default before the options.
  std::string rounding = "nearest";
  size_t calib_samples = 1024;
  uint64_t seed = 0;
  // MSQ / RMSMP rows (quant/rows.h): fixed:shift ratio, or the device's balanced ratio.
  std::string ratio, device, shift_scheme = "sp2";
  double high_share = 0;
  int high_bits = 8;
};

void add_quant_options(CLI::App* cmd, QuantArgs& a);
UniformOptions uniform_options(const QuantArgs& a);
ObserveOptions observe_options(const QuantArgs& a, const DataArgs& d);
// --rounding with what it needs (input grams on the calibration data, timed and reported).
WeightRounding weight_rounding(const QuantArgs& a, const DataArgs& d, const Graph& g,
                               const Dataset& calib);
// The final model's weights: cfg's layers rounded by r's method one at a time on the inputs of
// the model rounded so far (round_weights_sequential), timed and reported; g itself for nearest.
Graph round_final_weights(const QuantArgs& a, const DataArgs& d, const Graph& g,
                          const QuantConfig& cfg, const WeightRounding& r, const Dataset& calib);

}  // namespace mixq::cli
