// The published seed figures the FPGA model is calibrated on (ALGORITHMS.md section 2, from
// Mix and Match, HPCA 2021), and the model's figures beside them.
#pragma once
#include <string>
#include <vector>

#include "hw/fpga.h"

namespace mixq::hw {

struct SeedFigures {
  std::string device;
  double fixed_peak_gops, msq_peak_gops;  // 4-bit
  double fixed_lut_share, msq_lut_share;  // of the device's LUTs
  double ratio;                           // fixed:SP2 = 1:ratio
  double fixed_ms, msq_ms;                // ResNet-18, 4-bit fixed-only vs MSQ
  double speedup_vs_fixed8;               // 8-bit fixed-only latency / MSQ latency
};
const std::vector<SeedFigures>& seed_figures();

// The designs the figures describe, as the model builds them: ResNet-18 (224x224), first and
// last layer at 8-bit fixed point, the rest 4-bit fixed-only, 4-bit MSQ at the balanced ratio,
// or 8-bit fixed-only.
struct SeedDesigns {
  Design fixed4, msq4, fixed8;
  double fixed4_ms = 0, msq4_ms = 0, fixed8_ms = 0;
};
SeedDesigns seed_designs(const Device& d);

struct FitRow {
  std::string device, quantity, unit;
  double model = 0, published = 0;
  double error_pct() const { return 100 * (model - published) / published; }
};
// Every published figure with the model's value, in table order.
std::vector<FitRow> calibration_fit();
// The fit as a text table (what `mixq hw --fit` prints).
std::string format_fit(const std::vector<FitRow>& rows);

}  // namespace mixq::hw
