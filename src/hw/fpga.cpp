#include "hw/fpga.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "base/error.h"
#include "base/parse.h"

namespace mixq::hw {

const std::vector<Device>& devices() {
  // Clocks: 100 MHz on the Zynq-7000 parts is the clock the fit assumes (docs/hw-model.md);
  // 200 MHz on the UltraScale+ parts is an assumption (no published MSQ figures to fit).
  static const std::vector<Device> table = {
      {"XC7Z020", "Zynq-7000", 220, 53200, 100},
      {"XC7Z045", "Zynq-7000", 900, 218600, 100},
      {"XCZU7EV", "Zynq UltraScale+", 1728, 230400, 200},
      {"XCZU9EG", "Zynq UltraScale+", 2520, 274080, 200},
  };
  return table;
}

namespace {
std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

const Device* find_device(const std::string& name) {
  const std::string n = upper(name);
  for (const Device& d : devices())
    if (n == d.name || "XC" + n == d.name) return &d;
  return nullptr;
}

std::string device_names() {
  std::string s;
  for (const Device& d : devices()) s += (s.empty() ? "" : ", ") + d.name;
  return s;
}

int dsp_macs_per_cycle(int bits) {
  return bits <= 4 ? 2 : 1;
}

double lut_per_shift_mac(int bits) {
  return kHw.lut_per_sp2_mac * std::max(bits, 2) / 4.0;
}

double Design::dsp_lanes() const {
  return static_cast<double>(device.dsp) * dsp_macs_per_cycle(bits);
}

double Design::sp2_lanes() const {
  return ratio * dsp_lanes();
}

double Design::lut_use() const {
  return kHw.base_lut + kHw.base_lut_per_dsp * static_cast<double>(device.dsp) +
         lut_per_shift_mac(bits) * sp2_lanes();
}

double Design::peak_gops() const {
  return 2 * device.clock_mhz * 1e-3 * kHw.pe_efficiency * (dsp_lanes() + sp2_lanes());
}

double balanced_ratio_raw(const Device& d, int bits) {
  const Design fixed = fixed_design(d, bits);
  const double budget = kHw.lut_limit * static_cast<double>(d.lut) - fixed.lut_use();
  return std::max(0.0, budget / (lut_per_shift_mac(bits) * fixed.dsp_lanes()));
}

double balanced_ratio(const Device& d, int bits) {
  // The small epsilon keeps a raw ratio that is a step exactly from falling a step short.
  return std::floor(balanced_ratio_raw(d, bits) / kHw.ratio_step + 1e-9) * kHw.ratio_step;
}

Design fixed_design(const Device& d, int bits) {
  return Design{d, bits, 0};
}

Design balanced_design(const Device& d, int bits) {
  return Design{d, bits, balanced_ratio(d, bits)};
}

RowSplit uniform_split(const LayerShape& l, int bits, double ratio) {
  RowSplit s;
  s.sp2 = ratio > 0 ? std::llround(static_cast<double>(l.cout) * ratio / (1 + ratio)) : 0;
  s.sp2_bits = bits;
  (bits <= 4 ? s.fixed : s.fixed8) = l.cout - s.sp2;
  return s;
}

std::vector<RowSplit> uniform_splits(const std::vector<LayerShape>& layers, int bits, double ratio,
                                     int edge_bits) {
  std::vector<RowSplit> splits;
  for (size_t i = 0; i < layers.size(); ++i) {
    const bool edge = edge_bits > 0 && (i == 0 || i + 1 == layers.size());
    splits.push_back(edge ? uniform_split(layers[i], edge_bits, 0)
                          : uniform_split(layers[i], bits, ratio));
  }
  return splits;
}

LayerCost layer_cost(const Design& d, const LayerShape& l, const RowSplit& s) {
  check(s.rows() == l.cout, "layer '" + l.name + "'",
        fmt::format("{} rows quantized, the layer has {}", s.rows(), l.cout));
  check(s.sp2 == 0 || d.ratio > 0, "layer '" + l.name + "'",
        fmt::format("{} SP2/PoT rows but the design has no LUT array (ratio 0)", s.sp2));
  LayerCost c;
  if (l.cout == 0 || l.macs == 0) return c;
  const double per_row = static_cast<double>(l.macs) / static_cast<double>(l.cout);
  const double eff = kHw.pe_efficiency * kHw.run_efficiency;
  const double dsp = static_cast<double>(d.device.dsp);
  c.dsp_cycles = per_row *
                 (static_cast<double>(s.fixed) / (dsp * dsp_macs_per_cycle(4)) +
                  static_cast<double>(s.fixed8) / (dsp * dsp_macs_per_cycle(8))) /
                 eff;
  if (s.sp2 > 0) {
    // Lanes built for d.bits take proportionally longer on wider SP2 rows.
    const double lane_cycles = std::max(1.0, static_cast<double>(s.sp2_bits) / d.bits);
    c.lut_cycles = per_row * static_cast<double>(s.sp2) * lane_cycles / d.sp2_lanes() / eff;
  }
  c.cycles = std::max(c.dsp_cycles, c.lut_cycles);
  c.ms = c.cycles / (d.device.clock_mhz * 1e3);
  return c;
}

double layer_latency_ms(const Design& d, const LayerShape& l, const RowSplit& s) {
  return layer_cost(d, l, s).ms;
}

double layer_latency_ms(const Device& d, const LayerShape& l, const RowSplit& s) {
  return layer_cost(balanced_design(d), l, s).ms;
}

NetworkCost network_cost(const Design& d, const std::vector<LayerShape>& layers,
                         const std::vector<RowSplit>& splits) {
  check(layers.size() == splits.size(), "network_cost", "one row split per layer needed");
  NetworkCost n;
  for (size_t i = 0; i < layers.size(); ++i) {
    n.layers.push_back(layer_cost(d, layers[i], splits[i]));
    n.macs += layers[i].macs;
    n.cycles += n.layers.back().cycles;
    n.ms += n.layers.back().ms;
  }
  n.gops = n.ms > 0 ? 2.0 * static_cast<double>(n.macs) / (n.ms * 1e6) : 0;
  return n;
}

double candidate_cycles(const Design& d, const LayerShape& l, int bits, double sp2_fraction,
                        double fixed8_fraction) {
  check(sp2_fraction >= 0 && fixed8_fraction >= 0 && sp2_fraction + fixed8_fraction <= 1 + 1e-9,
        "candidate_cycles", "row fractions must be in [0, 1] and sum to at most 1");
  const double rows = static_cast<double>(l.cout);
  RowSplit s;
  s.sp2 = std::llround(rows * sp2_fraction);
  s.fixed8 = std::min(l.cout - s.sp2, static_cast<int64_t>(std::llround(rows * fixed8_fraction)));
  s.sp2_bits = bits;
  (bits <= 4 ? s.fixed : s.fixed8) += l.cout - s.sp2 - s.fixed8;
  return layer_cost(d, l, s).cycles;
}

CycleCost cycle_cost(const Design& d) {
  return [d](const LayerShape& l, int bits, double sp2_fraction, double fixed8_fraction) {
    return candidate_cycles(d, l, bits, sp2_fraction, fixed8_fraction);
  };
}

namespace {
bool parse_number(const std::string& s, double& out) {
  const std::optional<double> v = mixq::parse_number(s);
  if (v) out = *v;
  return v.has_value();
}
}  // namespace

double parse_ratio(const std::string& text, const std::string& where) {
  const std::string bad = "bad ratio '" + text + "' (expected fixed:SP2 like 1:1.5, or 0)";
  const size_t colon = text.find(':');
  double a = 1, b = 0;
  if (colon == std::string::npos) {
    check(parse_number(text, b), where, bad);
  } else {
    check(parse_number(text.substr(0, colon), a) && parse_number(text.substr(colon + 1), b), where,
          bad);
    check(a > 0, where, "bad ratio '" + text + "': the fixed-point part must be positive");
  }
  check(b >= 0, where, "bad ratio '" + text + "': the SP2 part must not be negative");
  const double r = b / a;
  check(r <= 64, where, "bad ratio '" + text + "': more than 64 SP2 rows per fixed row");
  return r;
}

std::string format_ratio(double ratio) {
  return fmt::format("1:{:g}", std::round(ratio * 1000) / 1000);
}

}  // namespace mixq::hw
