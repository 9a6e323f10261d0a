// FPGA cost model of an MSQ accelerator (docs/hw-model.md): fixed-point rows of a layer run on
// the DSP array, SP2/PoT (shift-add) rows on a LUT array beside it, both at once. A layer takes
// the longer of the two arrays' times; the network's latency is the sum over its layers.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mixq::hw {

struct Device {
  std::string name;    // "XC7Z020"
  std::string family;  // "Zynq-7000", "Zynq UltraScale+"
  int64_t dsp = 0;     // DSP48 slices
  int64_t lut = 0;     // 6-input LUTs
  double clock_mhz = 100;
};

// The device table (Xilinx datasheets: DS190 Zynq-7000, DS891 Zynq UltraScale+).
const std::vector<Device>& devices();
// Case-insensitive, "XC" prefix optional ("z7020" is not accepted, "7z020" is). Null if unknown.
const Device* find_device(const std::string& name);
// "XC7Z020, XC7Z045, ..." for error messages.
std::string device_names();

// The model's free constants, fitted on the published seed figures (ALGORITHMS.md section 2;
// the fit and its errors are in docs/hw-model.md and printed by `mixq hw --fit`).
struct HwConstants {
  // Share of the DSP array's MAC lanes busy at peak (packing losses, lanes spent on
  // accumulation and requantization). Fitted: geometric mean over XC7Z020 and XC7Z045 of
  // published fixed-only 4-bit peak / (DSP x 2 MACs x 2 ops x clock) = 0.600 and 0.578.
  double pe_efficiency = 0.589;
  // Share of peak the arrays sustain on real layers (tile edges, pipeline fill, DDR stalls).
  // Fitted: geometric mean of model-at-1.0 / published over the four ResNet-18 latencies.
  double run_efficiency = 0.743;
  // LUTs of one 4-bit SP2 shift-add MAC lane (two shifters, an adder, its share of the
  // accumulator). Fitted: geometric mean over both devices of (MSQ LUTs - fixed-only LUTs) /
  // (ratio x 4-bit DSP MAC lanes) = 25.8 and 29.1.
  double lut_per_sp2_mac = 27.4;
  // LUTs of the fixed-only design: base_lut + base_lut_per_dsp x DSPs (control, buffers,
  // DSP-side glue). Fitted exactly on the two fixed-only LUT shares (45 % and 24 %).
  double base_lut = 14712;
  double base_lut_per_dsp = 41.95;
  // Largest share of the device's LUTs a design may use (the rest is left for routing and
  // timing closure). Chosen inside [0.790, 0.804), the interval where the balanced ratio below
  // reproduces both published ratios.
  double lut_limit = 0.80;
  // Balanced ratios are rounded down to this step: rows split in groups of 2 fixed : 2r SP2.
  double ratio_step = 0.5;
};
inline constexpr HwConstants kHw{};

// Fixed-point MACs one DSP48 does per cycle at a weight bit-width: 2 up to 4 bits (two
// products packed in the 27x18 multiplier), 1 up to 8 (and for float weights, costed as 16-bit).
int dsp_macs_per_cycle(int bits);
// LUTs of one SP2/PoT MAC lane at a weight bit-width (scaled linearly from 4 bits).
double lut_per_shift_mac(int bits);

// An accelerator on a device: the whole DSP array, plus a LUT array `ratio` times as fast as
// the DSP array at `bits` (fixed:SP2 = 1:ratio; 0 is the fixed-only design).
struct Design {
  Device device;  // a copy: the clock may be overridden
  int bits = 4;   // weight bit-width the arrays are built for
  double ratio = 0;

  double dsp_lanes() const;  // fixed MACs per cycle at `bits` before efficiency
  double sp2_lanes() const;  // SP2 MACs per cycle at `bits` before efficiency
  double lut_use() const;    // LUTs used
  double lut_share() const { return lut_use() / static_cast<double>(device.lut); }
  int64_t dsp_use() const { return device.dsp; }
  // Peak throughput, 2 ops per MAC, both arrays busy.
  double peak_gops() const;
};

// The SP2 share the LUT budget allows: (lut_limit x LUTs - fixed-only LUTs) / LUTs of an SP2
// array as fast as the DSP array. balanced_ratio() rounds it down to ratio_step.
double balanced_ratio_raw(const Device& d, int bits = 4);
double balanced_ratio(const Device& d, int bits = 4);
Design fixed_design(const Device& d, int bits = 4);
Design balanced_design(const Device& d, int bits = 4);

// A layer's shape as the model sees it (built without weights, or read from a graph).
struct LayerShape {
  std::string name;
  std::string op_type = "Conv";  // Conv, Gemm, MatMul
  int64_t cin = 0, cout = 0;     // cout = rows (output channels)
  int64_t kh = 1, kw = 1, stride = 1, groups = 1;
  int64_t out_h = 1, out_w = 1;  // output positions (1x1 for Gemm)
  int64_t macs = 0;              // per sample
};

// How a layer's rows (output channels) are quantized.
struct RowSplit {
  int64_t fixed = 0;   // fixed-point rows at <= 4 bits: DSP array, 2 MACs per DSP
  int64_t fixed8 = 0;  // fixed-point rows at 5..8 bits (RMSMP's 8-bit rows) or float: 1 per DSP
  int64_t sp2 = 0;     // SP2 and PoT rows: LUT array
  int sp2_bits = 4;    // widest SP2/PoT row
  int64_t rows() const { return fixed + fixed8 + sp2; }
};

// Rows of a uniform design: round(cout x ratio / (1 + ratio)) SP2 rows, the rest fixed-point,
// all at `bits`.
RowSplit uniform_split(const LayerShape& l, int bits, double ratio);
// Every layer uniform, except the first and last at `edge_bits` fixed (0: like the rest).
std::vector<RowSplit> uniform_splits(const std::vector<LayerShape>& layers, int bits, double ratio,
                                     int edge_bits);

struct LayerCost {
  double dsp_cycles = 0;  // time of the DSP array on its rows (efficiency included)
  double lut_cycles = 0;  // time of the LUT array on its rows
  double cycles = 0;      // max of the two
  double ms = 0;
};

// Throws Error when the split has SP2 rows and the design no LUT array, or the row count is
// not the layer's.
LayerCost layer_cost(const Design& d, const LayerShape& l, const RowSplit& s);
double layer_latency_ms(const Design& d, const LayerShape& l, const RowSplit& s);
// On the device's balanced 4-bit MSQ design at its table clock.
double layer_latency_ms(const Device& d, const LayerShape& l, const RowSplit& s);

struct NetworkCost {
  std::vector<LayerCost> layers;
  int64_t macs = 0;
  double cycles = 0, ms = 0;
  double gops = 0;  // achieved: 2 x MACs / latency
};
NetworkCost network_cost(const Design& d, const std::vector<LayerShape>& layers,
                         const std::vector<RowSplit>& splits);

// Cost hook for the bit allocator: FPGA cycles of a layer candidate at `bits` with a share of
// its rows SP2 (or PoT) and a share at 8-bit fixed point (RMSMP), the rest fixed at `bits`.
// Row counts are rounded to whole rows.
double candidate_cycles(const Design& d, const LayerShape& l, int bits, double sp2_fraction,
                        double fixed8_fraction = 0);
using CycleCost =
    std::function<double(const LayerShape&, int bits, double sp2_fraction, double fixed8_fraction)>;
CycleCost cycle_cost(const Design& d);

// Parses a fixed:SP2 ratio: "1:1.5", "2:3", "1.5" or "0". Error naming `where` on bad text.
double parse_ratio(const std::string& text, const std::string& where);
// "1:1.5"
std::string format_ratio(double ratio);

}  // namespace mixq::hw
