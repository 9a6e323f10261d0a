// mixq hw [MODEL] [--quant Q.json] --device NAME [--ratio 1:1.5] [--arch resnet18] [--json F]:
// the FPGA cost of a network (docs/hw-model.md): per layer, which rows run on the DSP array and
// which on the LUT array, their cycles and latency; totals, peak, LUT and DSP use.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/hw_args.h"
#include "cli/validators.h"
#include "hw/cost_json.h"
#include "hw/fit.h"
#include "hw/fpga.h"
#include "hw/shapes.h"
#include "onnx/import.h"
#include "quant/scheme.h"

namespace mixq::cli {
namespace {

struct HwArgs {
  std::string model, quant, device, ratio, arch, json;
  int wbits = 4, edge_bits = 8;
  double clock_mhz = 0;
  bool list_devices = false, fit = false;
};

void print_devices() {
  std::cout << fmt::format("{:<9} {:<17} {:>6} {:>8} {:>10} {:>9} {:>10}\n", "device", "family",
                           "DSP48", "LUTs", "clock MHz", "balanced", "4-bit peak");
  for (const hw::Device& d : hw::devices()) {
    const hw::Design b = hw::balanced_design(d);
    std::cout << fmt::format("{:<9} {:<17} {:>6} {:>8} {:>10g} {:>9} {:>5.1f} GOPS\n", d.name,
                             d.family, d.dsp, d.lut, d.clock_mhz, hw::format_ratio(b.ratio),
                             b.peak_gops());
  }
}

int run_hw(const HwArgs& a) {
  if (a.list_devices) {
    print_devices();
    return 0;
  }
  if (a.fit) {
    std::cout << hw::format_fit(hw::calibration_fit());
    return 0;
  }
  if (!a.json.empty()) {
    check_output_file(a.json, "--json");
    check_no_overwrite(a.json, {{a.model, "input model"}, {a.quant, "--quant config"}}, "--json");
  }
  hw::Device device = *hw::find_device(a.device);  // checked while parsing
  if (a.clock_mhz > 0) device.clock_mhz = a.clock_mhz;
  const double balanced = hw::balanced_ratio(device, a.wbits);
  hw::Design design{device, a.wbits,
                    a.ratio.empty() ? balanced : hw::parse_ratio(a.ratio, "--ratio")};

  std::vector<hw::LayerShape> layers;
  std::string source;
  if (!a.model.empty()) {
    Graph g = load_onnx(a.model);
    layers = hw::layers_from_graph(g);
    source = a.model;
  } else {
    layers = hw::arch_layers(a.arch, "--arch");
    source = a.arch + " (shapes only)";
  }
  check(!layers.empty(), source, "no Conv/Gemm/MatMul layer with constant weights");
  std::vector<hw::RowSplit> splits;
  int float_layers = 0;
  if (!a.quant.empty()) {
    splits = hw::splits_from_config(layers, load_quant_config(a.quant), a.quant, &float_layers);
  } else {
    splits = hw::uniform_splits(layers, a.wbits, design.ratio, a.edge_bits);
  }
  const hw::NetworkCost cost = hw::network_cost(design, layers, splits);

  std::cout << fmt::format("{} on {} at {:g} MHz: {}-bit arrays, fixed:SP2 {} (balanced {})\n",
                           source, device.name, device.clock_mhz, design.bits,
                           hw::format_ratio(design.ratio), hw::format_ratio(balanced));
  std::cout << fmt::format("{:<32} {:>9} {:>6} {:>6} {:>6} {:>11} {:>11} {:>8}\n", "layer", "MMACs",
                           "fixed", "SP2", "8-bit", "DSP cycles", "LUT cycles", "ms");
  for (size_t i = 0; i < layers.size(); ++i) {
    const hw::RowSplit& s = splits[i];
    const hw::LayerCost& c = cost.layers[i];
    std::cout << fmt::format("{:<32} {:>9.2f} {:>6} {:>6} {:>6} {:>11.0f} {:>11.0f} {:>8.3f}\n",
                             layers[i].name, layers[i].macs / 1e6, s.fixed, s.sp2, s.fixed8,
                             c.dsp_cycles, c.lut_cycles, c.ms);
  }
  const double limit = hw::kHw.lut_limit * static_cast<double>(device.lut);
  std::cout << fmt::format(
      "total: {:.3f} ms ({:.0f} cycles), {:.3f} GMACs, {:.1f} GOPS achieved, {:.1f} GOPS peak\n",
      cost.ms, cost.cycles, cost.macs / 1e9, cost.gops, design.peak_gops());
  std::cout << fmt::format("LUT {:.0f} of {} ({:.1f} %), DSP48 {} of {} (100 %)\n",
                           design.lut_use(), device.lut, 100 * design.lut_share(), design.dsp_use(),
                           device.dsp);
  if (design.lut_use() > limit)
    std::cout << fmt::format(
        "note: LUT use is above the {:.0f} % limit: the ratio exceeds what "
        "the device holds (balanced {})\n",
        100 * hw::kHw.lut_limit, hw::format_ratio(balanced));
  if (float_layers > 0)
    std::cout << fmt::format("note: {} layer(s) left float by the config costed as 8-bit fixed\n",
                             float_layers);

  if (!a.json.empty()) {
    nlohmann::json j = hw::cost_json(design, layers, splits, cost, source);
    j["design"]["quant"] = a.quant;
    j["design"]["edge_bits"] = a.quant.empty() ? a.edge_bits : 0;
    write_file_atomic(a.json, j.dump(2) + "\n");
    std::cout << "wrote " << a.json << "\n";
  }
  return 0;
}

}  // namespace

void add_hw(CLI::App& app, Action& action) {
  auto a = std::make_shared<HwArgs>();
  auto* cmd = app.add_subcommand("hw", "FPGA latency, throughput and resources of a network");
  auto* model = cmd->add_option("model", a->model, "ONNX model (or --arch for shapes only)")
                    ->type_name(kFileType);
  auto* arch = cmd->add_option("--arch", a->arch, "Architecture by name, without weights: resnet18")
                   ->check(CLI::IsMember(hw::arch_names()));
  model->excludes(arch);
  auto* quant = cmd->add_option("--quant", a->quant, "Quantization config: rows' schemes and bits")
                    ->type_name(kFileType);
  cmd->add_option("--device", a->device, "FPGA (see --list-devices)")->check(device_validator());
  cmd->add_option("--ratio", a->ratio,
                  "fixed:SP2 rows, e.g. 1:1.5 (default: the device's balanced ratio; 0: "
                  "fixed-only)")
      ->check(ratio_validator());
  cmd->add_option("--wbits", a->wbits, "Weight bits of a uniform design (no --quant)")
      ->check(CLI::Range(kMinBits, kMaxBits))
      ->capture_default_str()
      ->excludes(quant);  // the config's bits apply: refused, not ignored
  cmd->add_option("--edge-bits", a->edge_bits,
                  "Fixed-point bits of the first and last layer (no --quant; 0: like the rest)")
      ->check(CLI::Range(0, kMaxBits))
      ->capture_default_str()
      ->excludes(quant);
  cmd->add_option("--clock", a->clock_mhz, "Clock in MHz (default: the device table's)")
      ->check(CLI::Range(1.0, 2000.0));
  cmd->add_option("--json", a->json, "Also write the table and totals as JSON")
      ->type_name(kFileType);
  cmd->add_flag("--list-devices", a->list_devices, "Print the device table and exit");
  cmd->add_flag("--fit", a->fit,
                "Print the model against the published figures it is calibrated on");
  cmd->callback([a, &action] {
    if (!a->list_devices && !a->fit) {
      if (a->device.empty())
        throw CLI::ValidationError("--device",
                                   "an FPGA is required (devices: " + hw::device_names() + ")");
      if (a->model.empty() && a->arch.empty())
        throw CLI::ValidationError("MODEL", "give an ONNX model or --arch resnet18");
      if (a->edge_bits == 1)
        throw CLI::ValidationError("--edge-bits", "must be 0 or " + bits_range());
    }
    action = [a] { return run_hw(*a); };
  });
}

}  // namespace mixq::cli
