#include "cli/quant_args.h"

#include <iostream>

#include "cli/commands.h"

namespace mixq::cli {

void add_quant_options(CLI::App* cmd, QuantArgs& a) {
  cmd->add_option("--wbits", a.wbits, "Weight bits 2..8 (0: float weights)")
      ->check(CLI::IsMember({0, 2, 3, 4, 5, 6, 7, 8}));
  cmd->add_option("--abits", a.abits, "Activation bits 2..16 (0: float activations)")
      ->check(CLI::Range(0, 16));
  cmd->add_option("--scheme", a.scheme, "Weight scheme: fixed, pot, sp2")
      ->check(CLI::IsMember({"fixed", "pot", "sp2"}));
  cmd->add_option("--scale", a.scale, "Weight scales: mse or maxabs")
      ->check(CLI::IsMember({"mse", "maxabs"}));
  cmd->add_flag("--per-tensor", a.per_tensor, "One weight scale per layer instead of per row");
  cmd->add_option("--observer", a.observer, "Activation ranges: mse, minmax, percentile")
      ->check(CLI::IsMember({"mse", "minmax", "percentile"}));
  cmd->add_option("--percentile", a.percentile, "Percentile for --observer percentile")
      ->check(CLI::Range(50.0, 100.0));
  cmd->add_option("--edge-bits", a.edge_bits,
                  "Bits of the first and last layer (0: same as the rest)")
      ->check(CLI::IsMember({0, 2, 3, 4, 5, 6, 7, 8}));
  cmd->add_option("--calib-samples", a.calib_samples, "Calibration samples (seeded subset)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--seed", a.seed, "Seed of every random choice");
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

}  // namespace mixq::cli
