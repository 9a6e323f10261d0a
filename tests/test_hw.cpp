// The FPGA cost model: its fit to the published MSQ figures, the balanced ratio per device,
// hand-computed cycles, monotonicity in the SP2 share, layer extraction from graphs, configs,
// the allocator's cost hook, and `mixq hw` on the command line.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "hw/fit.h"
#include "hw/fpga.h"
#include "hw/shapes.h"
#include "onnx/import.h"
#include "quant/layers.h"
#include "runtime/summary.h"
#include "support/cli_check.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::hw;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;

const Device& dev(const std::string& name) {
  const Device* d = find_device(name);
  if (!d) throw Error(name, "not in the table");
  return *d;
}

// A device small enough to compute by hand: 10 DSPs at 100 MHz.
Device tiny_device() {
  return Device{"TINY", "test", 10, 10000, 100};
}

LayerShape tiny_conv() {
  LayerShape l;
  l.name = "c";
  l.cin = 16;
  l.cout = 10;
  l.kh = l.kw = 3;
  l.out_h = l.out_w = 8;
  l.macs = 10 * 8 * 8 * 16 * 9;  // 92,160: 9,216 per row
  return l;
}

}  // namespace

TEST(HwFit, EveryPublishedFigureWithinTenPercent) {
  const std::vector<FitRow> rows = calibration_fit();
  ASSERT_EQ(rows.size(), 16u);
  std::cout << format_fit(rows);
  for (const FitRow& r : rows)
    EXPECT_LT(std::abs(r.error_pct()), 10.0)
        << r.device << " " << r.quantity << ": model " << r.model << ", published " << r.published;
}

// Each fitted constant of kHw is what the seed figures give (docs/hw-model.md shows the steps).
TEST(HwFit, ConstantsFollowFromTheSeedFigures) {
  const std::vector<SeedFigures>& seeds = seed_figures();
  ASSERT_EQ(seeds.size(), 2u);
  double pe = 1, sp2 = 1, run = 1;
  std::vector<double> base_share, dsps, luts;
  double u_lo = 0, u_hi = 1;
  for (const SeedFigures& f : seeds) {
    const Device& d = dev(f.device);
    const double lanes = 2.0 * d.dsp;  // 4-bit MAC lanes
    pe *= f.fixed_peak_gops / (2 * lanes * d.clock_mhz * 1e-3);
    sp2 *= (f.msq_lut_share - f.fixed_lut_share) * d.lut / (f.ratio * lanes);
    const SeedDesigns s = seed_designs(d);
    // Latency is proportional to 1 / run_efficiency: the model at 1.0 over published.
    run *= s.fixed4_ms * kHw.run_efficiency / f.fixed_ms;
    run *= s.msq4_ms * kHw.run_efficiency / f.msq_ms;
    base_share.push_back(f.fixed_lut_share * d.lut);
    dsps.push_back(static_cast<double>(d.dsp));
    // The LUT limits for which the rounded-down balanced ratio is the published one.
    const double fixed_lut = s.fixed4.lut_use();
    u_lo = std::max(u_lo, (fixed_lut + kHw.lut_per_sp2_mac * f.ratio * lanes) / d.lut);
    u_hi = std::min(u_hi,
                    (fixed_lut + kHw.lut_per_sp2_mac * (f.ratio + kHw.ratio_step) * lanes) / d.lut);
  }
  pe = std::sqrt(pe);
  sp2 = std::sqrt(sp2);
  run = std::pow(run, 0.25);
  const double per_dsp = (base_share[1] - base_share[0]) / (dsps[1] - dsps[0]);
  const double base = base_share[0] - per_dsp * dsps[0];
  std::cout << "pe_efficiency " << pe << ", run_efficiency " << run << ", lut_per_sp2_mac " << sp2
            << ", base_lut " << base << " + " << per_dsp << " per DSP, lut_limit in [" << u_lo
            << ", " << u_hi << ")\n";
  EXPECT_NEAR(kHw.pe_efficiency, pe, 5e-4);
  EXPECT_NEAR(kHw.run_efficiency, run, 5e-4);
  EXPECT_NEAR(kHw.lut_per_sp2_mac, sp2, 0.05);
  EXPECT_NEAR(kHw.base_lut, base, 1);
  EXPECT_NEAR(kHw.base_lut_per_dsp, per_dsp, 0.005);
  EXPECT_GE(kHw.lut_limit, u_lo);
  EXPECT_LT(kHw.lut_limit, u_hi);
}

TEST(HwFit, MsqPeakIsFixedPeakTimesOnePlusRatio) {
  for (const char* name : {"XC7Z020", "XC7Z045", "XCZU7EV", "XCZU9EG"}) {
    const Design f = fixed_design(dev(name)), m = balanced_design(dev(name));
    EXPECT_NEAR(m.peak_gops(), f.peak_gops() * (1 + m.ratio), 1e-9) << name;
    EXPECT_EQ(m.dsp_use(), dev(name).dsp);
  }
}

TEST(HwModel, DeviceTable) {
  EXPECT_EQ(dev("XC7Z020").dsp, 220);
  EXPECT_EQ(dev("XC7Z020").lut, 53200);
  EXPECT_EQ(dev("XC7Z045").dsp, 900);
  EXPECT_EQ(dev("XC7Z045").lut, 218600);
  EXPECT_EQ(dev("XCZU7EV").dsp, 1728);
  EXPECT_EQ(dev("XCZU7EV").lut, 230400);
  EXPECT_EQ(dev("XCZU9EG").dsp, 2520);
  EXPECT_EQ(dev("XCZU9EG").lut, 274080);
  EXPECT_EQ(find_device("xc7z020"), find_device("7Z020"));
  EXPECT_EQ(find_device("zu9eg"), &dev("XCZU9EG"));
  EXPECT_EQ(find_device("XC7Z030"), nullptr);
}

TEST(HwModel, BalancedRatioPerDevice) {
  // The two published ratios, and what the fitted model says of the UltraScale+ parts: they
  // have far more DSPs per LUT, so less LUT budget per DSP lane.
  const std::vector<std::pair<std::string, double>> expected = {
      {"XC7Z020", 1.5}, {"XC7Z045", 2.0}, {"XCZU7EV", 1.0}, {"XCZU9EG", 0.5}};
  for (const auto& [name, ratio] : expected) {
    const Device& d = dev(name);
    EXPECT_DOUBLE_EQ(balanced_ratio(d), ratio) << name;
    // Balanced: within the LUT limit, and one step more would not be.
    const Design b = balanced_design(d);
    EXPECT_LE(b.lut_use(), kHw.lut_limit * d.lut) << name;
    const Design over{d, 4, ratio + kHw.ratio_step};
    EXPECT_GT(over.lut_use(), kHw.lut_limit * d.lut) << name;
    EXPECT_GE(balanced_ratio_raw(d), ratio);
    // An 8-bit array has the same balance: half the DSP lanes, twice the LUTs per SP2 lane.
    EXPECT_DOUBLE_EQ(balanced_ratio(d, 8), ratio) << name;
  }
}

TEST(HwModel, HandComputedLayerCycles) {
  const double eff = kHw.pe_efficiency * kHw.run_efficiency;
  const Design d{tiny_device(), 4, 1.5};  // 20 DSP lanes (4-bit), 30 SP2 lanes
  EXPECT_DOUBLE_EQ(d.dsp_lanes(), 20);
  EXPECT_DOUBLE_EQ(d.sp2_lanes(), 30);
  const LayerShape l = tiny_conv();
  // Uniform split at 1:1.5: 6 SP2 rows, 4 fixed. Both arrays take 9216 * 4 / 20 = 1843.2.
  const RowSplit s = uniform_split(l, 4, 1.5);
  EXPECT_EQ(s.sp2, 6);
  EXPECT_EQ(s.fixed, 4);
  EXPECT_EQ(s.fixed8, 0);
  LayerCost c = layer_cost(d, l, s);
  EXPECT_NEAR(c.dsp_cycles, 1843.2 / eff, 1e-6);
  EXPECT_NEAR(c.lut_cycles, 1843.2 / eff, 1e-6);
  EXPECT_NEAR(c.cycles, 1843.2 / eff, 1e-6);
  EXPECT_NEAR(c.ms, 1843.2 / eff / 1e5, 1e-12);  // 100 MHz: 1e5 cycles per ms
  // RMSMP-style: 2 rows at 8 bits (1 MAC per DSP) -> DSP 9216 * (2/20 + 2/10) = 2764.8.
  c = layer_cost(d, l, RowSplit{2, 2, 6, 4});
  EXPECT_NEAR(c.dsp_cycles, 2764.8 / eff, 1e-6);
  EXPECT_NEAR(c.cycles, 2764.8 / eff, 1e-6);
  // 8-bit SP2 rows on 4-bit lanes take twice as long: 9216 * 6 * 2 / 30 = 3686.4.
  c = layer_cost(d, l, RowSplit{4, 0, 6, 8});
  EXPECT_NEAR(c.lut_cycles, 3686.4 / eff, 1e-6);
  // Fixed-only 4-bit design: 92160 / 20 = 4608 cycles.
  c = layer_cost(fixed_design(tiny_device()), l, uniform_split(l, 4, 0));
  EXPECT_NEAR(c.cycles, 4608 / eff, 1e-6);
  EXPECT_DOUBLE_EQ(c.lut_cycles, 0);
  // Peak: 2 ops x 100 MHz x efficiency x (20 + 30) lanes.
  EXPECT_NEAR(d.peak_gops(), 2 * 0.1 * kHw.pe_efficiency * 50, 1e-12);
  // The device overload uses the balanced design.
  EXPECT_DOUBLE_EQ(layer_latency_ms(dev("XC7Z020"), l, s),
                   layer_latency_ms(balanced_design(dev("XC7Z020")), l, s));
  // Wrong row count and SP2 rows on a fixed-only design are errors naming the layer.
  EXPECT_THROW(layer_cost(d, l, RowSplit{4, 0, 5, 4}), Error);
  EXPECT_THROW(layer_cost(fixed_design(tiny_device()), l, s), Error);
}

TEST(HwModel, MoreSp2RowsLowerLatencyUpToBalanced) {
  const std::vector<LayerShape> layers = resnet18_layers();
  for (const char* name : {"XC7Z020", "XC7Z045"}) {
    const Device& d = dev(name);
    const Design msq = balanced_design(d);
    const double r = msq.ratio;
    // On the balanced design, raise the SP2 share of every layer from 0 to r / (1 + r).
    double prev = INFINITY;
    for (int step = 0; step <= 10; ++step) {
      const double share = r / (1 + r) * step / 10;
      double ms = 0;
      for (const LayerShape& l : layers) ms += candidate_cycles(msq, l, 4, share) / 1e5;
      EXPECT_LT(ms, prev) << name << " share " << share;
      prev = ms;
    }
    // Past the balance the LUT array becomes the bottleneck.
    double past = 0;
    for (const LayerShape& l : layers) past += candidate_cycles(msq, l, 4, 0.9) / 1e5;
    EXPECT_GT(past, prev) << name;
    // Designs with a larger LUT array (up to the balanced ratio) are faster.
    prev = INFINITY;
    for (double ratio = 0; ratio <= r + 1e-9; ratio += 0.5) {
      const Design des{d, 4, ratio};
      const double ms = network_cost(des, layers, uniform_splits(layers, 4, ratio, 8)).ms;
      EXPECT_LT(ms, prev) << name << " ratio " << ratio;
      prev = ms;
    }
  }
}

TEST(HwModel, CycleCostHookMatchesLayerCost) {
  const Design d = balanced_design(dev("XC7Z045"));
  const CycleCost cost = cycle_cost(d);
  const LayerShape l = resnet18_layers()[3];  // layer1.1.conv1, 64 rows
  EXPECT_DOUBLE_EQ(cost(l, 4, 0.0, 0.0), layer_cost(d, l, RowSplit{64, 0, 0, 4}).cycles);
  // 2/3 SP2 -> 43 rows, 5 % at 8 bits -> 3 rows, 18 fixed 4-bit rows.
  EXPECT_DOUBLE_EQ(cost(l, 4, 2.0 / 3, 0.05), layer_cost(d, l, RowSplit{18, 3, 43, 4}).cycles);
  // 8-bit candidate: every fixed row is 8-bit.
  EXPECT_DOUBLE_EQ(cost(l, 8, 0.0, 0.0), layer_cost(d, l, RowSplit{0, 64, 0, 4}).cycles);
  EXPECT_DOUBLE_EQ(cost(l, 8, 0.0, 0.0), 2 * cost(l, 4, 0.0, 0.0));
  EXPECT_THROW(cost(l, 4, 0.8, 0.3), Error);
}

TEST(HwShapes, ResNet18) {
  const std::vector<LayerShape> layers = resnet18_layers();
  ASSERT_EQ(layers.size(), 21u);  // conv1, 16 block convs, 3 downsamples, fc
  int64_t macs = 0;
  for (const LayerShape& l : layers) {
    EXPECT_EQ(l.macs, l.cout * l.out_h * l.out_w * l.cin * l.kh * l.kw) << l.name;
    macs += l.macs;
  }
  EXPECT_EQ(macs, 1814073344);
  EXPECT_EQ(layers[0].name, "conv1");
  EXPECT_EQ(layers[0].macs, 118013952);
  EXPECT_EQ(layers[7].name, "layer2.0.downsample.0");
  EXPECT_EQ(layers[7].out_h, 28);
  EXPECT_EQ(layers.back().name, "fc");
  EXPECT_EQ(layers.back().macs, 512000);
  EXPECT_THROW(arch_layers("vgg19", "--arch"), Error);
}

TEST(HwShapes, FromBuiltGraph) {
  // Conv(1->4, 3x3, stride 1) on 28x28 -> 26x26, then Gemm(4->10).
  OnnxBuilder b;
  b.input("x", {-1, 1, 28, 28}).output("y", {-1, 10});
  b.initializer("w", Tensor(DType::f32, {4, 1, 3, 3}));
  b.initializer("fc_w", Tensor(DType::f32, {10, 4}));
  b.initializer("fc_b", Tensor(DType::f32, {10}));
  b.node("Conv", {"x", "w"}, {"c"}, "conv0");
  b.node("Relu", {"c"}, {"r"}, "relu0");
  b.node("GlobalAveragePool", {"r"}, {"p"}, "gap0");
  b.node("Flatten", {"p"}, {"f"}, "flatten0");
  auto& g = b.node("Gemm", {"f", "fc_w", "fc_b"}, {"y"}, "fc0");
  OnnxBuilder::attr(g, "transB", int64_t{1});
  const Graph graph = load_onnx_bytes(b.bytes(), "tiny");
  const std::vector<LayerShape> layers = layers_from_graph(graph);
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].name, "conv0");
  EXPECT_EQ(layers[0].cin, 1);
  EXPECT_EQ(layers[0].cout, 4);
  EXPECT_EQ(layers[0].kh, 3);
  EXPECT_EQ(layers[0].out_h, 26);
  EXPECT_EQ(layers[0].out_w, 26);
  EXPECT_EQ(layers[0].macs, 4 * 26 * 26 * 9);
  EXPECT_EQ(layers[1].name, "fc0");
  EXPECT_EQ(layers[1].op_type, "Gemm");
  EXPECT_EQ(layers[1].cin, 4);
  EXPECT_EQ(layers[1].cout, 10);
  EXPECT_EQ(layers[1].macs, 40);
}

TEST(HwShapes, FromDefaultModel) {
  const std::string path = repo_path("models/fmnist_default.onnx");
  MIXQ_SKIP_UNLESS_EXISTS(path);
  const Graph g = load_onnx(path);
  const std::vector<LayerShape> layers = layers_from_graph(g);
  const std::vector<QuantLayer> ql = find_quant_layers(g);
  ASSERT_EQ(layers.size(), 5u);  // 4 Conv, Gemm
  ASSERT_EQ(layers.size(), ql.size());
  int64_t macs = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_EQ(layers[i].name, ql[i].name);
    EXPECT_EQ(layers[i].cout, ql[i].rows);
    macs += layers[i].macs;
  }
  EXPECT_EQ(macs, summarize(g).macs);  // every MAC of the model is in a quantizable layer
  EXPECT_EQ(layers[0].cin, 1);
  EXPECT_EQ(layers[0].cout, 32);
  EXPECT_EQ(layers[0].out_h, 28);
  EXPECT_EQ(layers[0].macs, 32 * 28 * 28 * 9);
  EXPECT_EQ(layers.back().cin, 3136);
  EXPECT_EQ(layers.back().cout, 10);
  // The whole network on the balanced XC7Z020 design, first and last layer 8-bit.
  const Design d = balanced_design(dev("XC7Z020"));
  const NetworkCost c = network_cost(d, layers, uniform_splits(layers, 4, d.ratio, 8));
  EXPECT_GT(c.ms, 0);
  EXPECT_LT(c.gops, d.peak_gops());
}

TEST(HwShapes, SplitsFromConfig) {
  std::vector<LayerShape> layers = {tiny_conv(), tiny_conv()};
  layers[1].name = "d";
  QuantConfig cfg;
  LayerConfig lc;
  lc.name = "c";
  for (int i = 0; i < 10; ++i) {
    RowQuant r;
    r.scheme = i < 5 ? Scheme::sp2 : i < 6 ? Scheme::pot : Scheme::fixed;
    r.bits = i == 9 ? 8 : 4;
    lc.rows.push_back(r);
  }
  cfg.layers.push_back(lc);
  int floats = -1;
  const std::vector<RowSplit> s = splits_from_config(layers, cfg, "q.json", &floats);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].sp2, 6);  // 5 SP2 + 1 PoT
  EXPECT_EQ(s[0].fixed, 3);
  EXPECT_EQ(s[0].fixed8, 1);
  EXPECT_EQ(s[0].sp2_bits, 4);
  EXPECT_EQ(s[1].fixed8, 10);  // absent: float, costed as 8-bit fixed
  EXPECT_EQ(floats, 1);
  cfg.layers[0].rows.pop_back();
  EXPECT_THROW(splits_from_config(layers, cfg, "q.json"), Error);
  cfg.layers[0].name = "nosuch";
  EXPECT_THROW(splits_from_config(layers, cfg, "q.json"), Error);
}

TEST(HwModel, ParseRatio) {
  EXPECT_DOUBLE_EQ(parse_ratio("1:1.5", "--ratio"), 1.5);
  EXPECT_DOUBLE_EQ(parse_ratio("2:3", "--ratio"), 1.5);
  EXPECT_DOUBLE_EQ(parse_ratio("2", "--ratio"), 2);
  EXPECT_DOUBLE_EQ(parse_ratio("0", "--ratio"), 0);
  EXPECT_DOUBLE_EQ(parse_ratio("1:0", "--ratio"), 0);
  for (const char* bad : {"", "abc", "1:", ":2", "0:1", "1:-1", "-1", "1:2:3", "1:nan", " 1"})
    EXPECT_THROW(parse_ratio(bad, "--ratio"), Error) << bad;
  EXPECT_EQ(format_ratio(1.5), "1:1.5");
  EXPECT_EQ(format_ratio(2), "1:2");
}

TEST(HwCli, Errors) {
  const std::string hw = kMixq + " hw --arch resnet18";
  expect_clean_error(run_command(hw + " --device XC7Z999"), "unknown device 'XC7Z999'", 2);
  expect_clean_error(run_command(hw + " --device XC7Z020 --ratio 1:x"), "bad ratio '1:x'", 2);
  expect_clean_error(run_command(hw + " --device XC7Z020 --ratio 1:-2"), "--ratio", 2);
  expect_clean_error(run_command(hw), "--device", 2);
  expect_clean_error(run_command(kMixq + " hw --device XC7Z020"), "--arch resnet18", 2);
  expect_clean_error(run_command(hw + " --device XC7Z020 --arch vgg99"), "vgg99", 2);
  expect_clean_error(run_command(hw + " --device XC7Z020 --wbits 9"), "--wbits", 2);
  expect_clean_error(run_command(kMixq + " hw /nonexistent/m.onnx --device XC7Z020"),
                     "/nonexistent/m.onnx: cannot open file", 1);
  TempDir d;
  std::ofstream(d.file("q.json")) << "{not json";
  expect_clean_error(run_command(hw + " --device XC7Z020 --quant " + d.file("q.json")),
                     d.file("q.json"), 1);
}

TEST(HwCli, ResNet18Table) {
  TempDir d;
  const auto r =
      run_command(kMixq + " hw --arch resnet18 --device xc7z020 --json " + d.file("hw.json"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("fixed:SP2 1:1.5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layer4.1.conv2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("total: "), std::string::npos) << r.out;
  std::ifstream f(d.file("hw.json"));
  const nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["layers"].size(), 21u);
  EXPECT_EQ(j["device"]["name"], "XC7Z020");
  const SeedDesigns s = seed_designs(dev("XC7Z020"));
  EXPECT_NEAR(j["total"]["ms"].get<double>(), s.msq4_ms, 1e-9);
  // Fixed-only at --ratio 0.
  const auto f0 = run_command(kMixq + " hw --arch resnet18 --device XC7Z020 --ratio 0");
  ASSERT_EQ(f0.status, 0) << f0.err;
  EXPECT_NE(f0.out.find(fmt::format("total: {:.3f} ms", s.fixed4_ms)), std::string::npos) << f0.out;
  const auto list = run_command(kMixq + " hw --list-devices");
  ASSERT_EQ(list.status, 0) << list.err;
  EXPECT_NE(list.out.find("XCZU9EG"), std::string::npos) << list.out;
}

TEST(HwCli, QuantConfigRows) {
  const std::string model = repo_path("models/fmnist_default.onnx");
  MIXQ_SKIP_UNLESS_EXISTS(model);
  const std::vector<LayerShape> layers = layers_from_graph(load_onnx(model));
  QuantConfig cfg;
  for (const LayerShape& l : layers) {
    LayerConfig lc;
    lc.name = l.name;
    for (int64_t r = 0; r < l.cout; ++r) {
      RowQuant q;
      q.scheme = 3 * r < 2 * l.cout ? Scheme::sp2 : Scheme::fixed;
      q.bits = 4;
      lc.rows.push_back(q);
    }
    cfg.layers.push_back(lc);
  }
  TempDir d;
  save_quant_config(cfg, d.file("q.json"));
  const std::string hw = kMixq + " hw " + model + " --quant " + d.file("q.json");
  const auto r = run_command(hw + " --device XC7Z045 --json " + d.file("hw.json"));
  ASSERT_EQ(r.status, 0) << r.err;
  std::ifstream f(d.file("hw.json"));
  const nlohmann::json j = nlohmann::json::parse(f);
  ASSERT_EQ(j["layers"].size(), layers.size());
  EXPECT_EQ(j["layers"][1]["sp2_rows"], 22);  // conv2: 32 rows, 22 SP2, 10 fixed
  EXPECT_EQ(j["layers"][1]["fixed_rows"], 10);
  EXPECT_EQ(j["design"]["ratio"], 2.0);
  // SP2 rows need a LUT array; a config for another model is refused.
  expect_clean_error(run_command(hw + " --device XC7Z045 --ratio 0"), "no LUT array", 1);
  cfg.layers[0].rows.pop_back();
  save_quant_config(cfg, d.file("q.json"));
  expect_clean_error(run_command(hw + " --device XC7Z045"),
                     "31 rows in the config, 32 in the model", 1);
}
