#include "cli/quant_args.h"

#include <fmt/format.h>

#include <chrono>
#include <iostream>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/hw_args.h"
#include "cli/validators.h"
#include "hw/fpga.h"
#include "quant/scheme.h"

namespace mixq::cli {

void add_quant_options(CLI::App* cmd, QuantArgs& a) {
  cmd->add_option("--wbits", a.wbits, "Weight bits " + bits_range() + " (0: float weights)")
      ->check(CLI::IsMember(weight_bits_choices(true)));
  cmd->add_option("--abits", a.abits, "Activation bits 2..16 (0: float activations)")
      ->check(CLI::Range(0, 16));
  cmd->add_option("--scheme", a.scheme, "Weight scheme: " + join(scheme_choices(a.scheme), ", "))
      ->check(CLI::IsMember(scheme_choices(a.scheme)));
  cmd->add_option("--scale", a.scale, "Weight scales: mse or maxabs")
      ->check(CLI::IsMember({"mse", "maxabs"}));
  cmd->add_flag("--per-tensor", a.per_tensor, "One weight scale per layer instead of per row");
  cmd->add_option("--observer", a.observer, "Activation ranges: mse, minmax, percentile")
      ->check(CLI::IsMember({"mse", "minmax", "percentile"}));
  cmd->add_option("--percentile", a.percentile, "Percentile for --observer percentile")
      ->check(CLI::Range(50.0, 100.0));
  cmd->add_option("--edge-bits", a.edge_bits,
                  "Bits of the first and last layer (0: same as the rest)")
      ->check(CLI::IsMember(weight_bits_choices(true)));
  cmd->add_option("--rounding", a.rounding,
                  "Weight rounding: nearest; gptq (each layer's rounding error compensated on "
                  "the calibration data); adaround (gptq's, then each weight's rounding learned "
                  "to lower the layer's output error; best at 2-3 bits)")
      ->check(CLI::IsMember(rounding_choices()))
      ->capture_default_str();
  cmd->add_option("--calib-samples", a.calib_samples, "Calibration samples (seeded subset)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--seed", a.seed, "Seed of every random choice");
  auto* ratio =
      cmd->add_option("--ratio", a.ratio, "MSQ rows fixed:shift per layer, e.g. 1:1.5 (0: none)")
          ->check(ratio_validator());
  cmd->add_option("--device", a.device, "MSQ rows at the FPGA's balanced ratio (mixq hw)")
      ->check(device_validator())
      ->excludes(ratio);
  const std::vector<std::string> shift = scheme_choices(a.shift_scheme, true);
  cmd->add_option("--shift-scheme", a.shift_scheme,
                  "Scheme of the MSQ shift rows: " + join(shift, " or "))
      ->check(CLI::IsMember(shift));
  cmd->add_option("--high-precision-share", a.high_share,
                  "RMSMP: share of rows (largest error) at --high-bits fixed, e.g. 0.05")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--high-bits", a.high_bits, "Bits of the RMSMP rows (fixed-point)")
      ->check(CLI::Range(kMinBits, kMaxBits));
  cmd->parse_complete_callback([&a] {
    const bool ratio0 = a.ratio.empty() || hw::parse_ratio(a.ratio, "--ratio") == 0;
    if (ratio0 && a.device.empty() && a.high_share == 0) return;
    const std::string flag = !a.ratio.empty()    ? "--ratio"
                             : !a.device.empty() ? "--device"
                                                 : "--high-precision-share";
    if (a.wbits == 0) throw CLI::ValidationError(flag, "mixed rows need --wbits " + bits_range());
    if (a.scheme != scheme_name(Scheme::fixed))
      throw CLI::ValidationError(
          flag, "mixed rows are fixed-point and --shift-scheme; drop --scheme " + a.scheme);
    if (a.per_tensor) throw CLI::ValidationError(flag, "mixed rows need per-row scales");
  });
}

UniformOptions uniform_options(const QuantArgs& a) {
  UniformOptions o;
  o.wbits = a.wbits;
  o.abits = a.abits;
  o.scheme = parse_scheme(a.scheme, "--scheme");
  o.scale = a.scale == "maxabs" ? ScaleMethod::maxabs : ScaleMethod::mse;
  o.per_row = !a.per_tensor;
  o.observer = parse_observer(a.observer, "--observer");
  o.percentile = a.percentile;
  o.edge_bits = a.edge_bits;
  if (!a.ratio.empty()) o.msq.ratio = hw::parse_ratio(a.ratio, "--ratio");
  if (!a.device.empty()) o.msq.ratio = hw::balanced_ratio(*hw::find_device(a.device), a.wbits);
  o.msq.shift = parse_scheme(a.shift_scheme, "--shift-scheme");
  o.msq.high_share = a.high_share;
  o.msq.high_bits = a.high_bits;
  return o;
}

ObserveOptions observe_options(const QuantArgs& a, const DataArgs& d) {
  ObserveOptions o;
  o.samples = a.calib_samples;
  o.batch = d.batch;
  o.seed = a.seed;
  if (stderr_is_tty())
    o.progress = [](size_t done, size_t total) {
      std::cerr << "\rcalibrate " << done << "/" << total << (done == total ? "\n" : "")
                << std::flush;
    };
  return o;
}

WeightRounding weight_rounding(const QuantArgs& a, const DataArgs& d, const Graph& g,
                               const Dataset& calib) {
  const Rounding method = parse_rounding(a.rounding, "--rounding");
  if (method == Rounding::nearest) return {};
  const auto start = std::chrono::steady_clock::now();
  ObserveOptions o = observe_options(a, d);
  if (o.progress)
    o.progress = [](size_t done, size_t total) {
      std::cerr << "\rinput grams " << done << "/" << total << (done == total ? "\n" : "")
                << std::flush;
    };
  WeightRounding r = make_rounding(method, g, calib, o);
  std::cout << fmt::format(
      "rounding: {} (input grams of {} layers on {} samples, {:.1f} s)\n", a.rounding,
      r.grams->size(), r.samples,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return r;
}

Graph round_final_weights(const QuantArgs& a, const DataArgs& d, const Graph& g,
                          const QuantConfig& cfg, const WeightRounding& r, const Dataset& calib) {
  if (r.method == Rounding::nearest) return g;
  const auto start = std::chrono::steady_clock::now();
  ObserveOptions o = observe_options(a, d);
  if (o.progress)
    o.progress = [](size_t done, size_t total) {
      std::cerr << "\rrounding layer " << done << "/" << total << (done == total ? "\n" : "")
                << std::flush;
    };
  Graph out = round_weights_sequential(g, cfg, r, calib, o);
  std::cout << fmt::format(
      "rounded the weights by {}, layer by layer on the quantized model's inputs ({:.1f} s)\n",
      rounding_name(r.method),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return out;
}

}  // namespace mixq::cli
