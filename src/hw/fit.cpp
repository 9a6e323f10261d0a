#include "hw/fit.h"

#include <fmt/format.h>

#include <cmath>

#include "base/error.h"
#include "hw/shapes.h"

namespace mixq::hw {

const std::vector<SeedFigures>& seed_figures() {
  static const std::vector<SeedFigures> figures = {
      {"XC7Z020", 52.8, 132, 0.45, 0.77, 1.5, 100.7, 47.1, 3.83},
      {"XC7Z045", 208, 624, 0.24, 0.72, 2.0, 25.1, 10.1, 4.48},
  };
  return figures;
}

SeedDesigns seed_designs(const Device& d) {
  const std::vector<LayerShape> layers = resnet18_layers();
  SeedDesigns s{fixed_design(d, 4), balanced_design(d, 4), fixed_design(d, 8)};
  s.fixed4_ms = network_cost(s.fixed4, layers, uniform_splits(layers, 4, 0, 8)).ms;
  s.msq4_ms = network_cost(s.msq4, layers, uniform_splits(layers, 4, s.msq4.ratio, 8)).ms;
  s.fixed8_ms = network_cost(s.fixed8, layers, uniform_splits(layers, 8, 0, 8)).ms;
  return s;
}

std::vector<FitRow> calibration_fit() {
  std::vector<FitRow> rows;
  for (const SeedFigures& f : seed_figures()) {
    const Device* d = find_device(f.device);
    check(d != nullptr, f.device, "not in the device table");
    const SeedDesigns s = seed_designs(*d);
    auto add = [&](const std::string& q, const std::string& unit, double model, double pub) {
      rows.push_back({f.device, q, unit, model, pub});
    };
    add("fixed-only 4-bit peak", "GOPS", s.fixed4.peak_gops(), f.fixed_peak_gops);
    add("MSQ peak", "GOPS", s.msq4.peak_gops(), f.msq_peak_gops);
    add("LUT use, fixed-only", "%", 100 * s.fixed4.lut_share(), 100 * f.fixed_lut_share);
    add("LUT use, MSQ", "%", 100 * s.msq4.lut_share(), 100 * f.msq_lut_share);
    add("fixed:SP2 ratio (1:x)", "", s.msq4.ratio, f.ratio);
    add("ResNet-18 latency, fixed-only", "ms", s.fixed4_ms, f.fixed_ms);
    add("ResNet-18 latency, MSQ", "ms", s.msq4_ms, f.msq_ms);
    add("speed-up of MSQ over 8-bit fixed", "x", s.fixed8_ms / s.msq4_ms, f.speedup_vs_fixed8);
  }
  return rows;
}

std::string format_fit(const std::vector<FitRow>& rows) {
  std::string out = fmt::format("{:<8} {:<34} {:>9} {:>9} {:>7}\n", "device", "figure", "model",
                                "published", "error");
  for (const FitRow& r : rows) {
    const std::string q = r.unit.empty() ? r.quantity : r.quantity + " (" + r.unit + ")";
    out += fmt::format("{:<8} {:<34} {:>9.2f} {:>9.2f} {:>+6.1f}%\n", r.device, q, r.model,
                       r.published, r.error_pct());
  }
  return out;
}

}  // namespace mixq::hw
