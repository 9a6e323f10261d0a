// mixq calibrate MODEL --data SPEC -o Q.json: activation ranges and per-row weight scales for a
// uniform configuration (bits and scheme for every layer, first and last at 8 bits).
#include <fmt/format.h>

#include <iostream>

#include "base/error.h"
#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "cli/quant_args.h"
#include "cli/validators.h"
#include "onnx/import.h"
#include "quant/calibrate.h"

namespace mixq::cli {
namespace {

struct CalibrateArgs {
  std::string model, out;
  DataArgs data;
  QuantArgs quant;
  int threads = 0;
};

int run_calibrate(const CalibrateArgs& a) {
  set_threads(a.threads);
  check_output_file(a.out, "-o");
  std::vector<InputFile> inputs = data_inputs(a.data.spec, "--data");
  inputs.push_back({a.model, "input model"});
  check_no_overwrite(a.out, inputs, "-o");
  UniformOptions uo = uniform_options(a.quant);
  auto data = open_data(a.data);
  Graph g = load_onnx(a.model);
  ActivationStats stats;
  if (uo.abits > 0) stats = observe_activations(g, *data, observe_options(a.quant, a.data));
  QuantConfig cfg = uniform_config(g, uo.abits > 0 ? &stats : nullptr, uo);
  cfg.info["calibration"] = {{"data", data->description()}, {"samples", stats.samples}};
  save_quant_config(cfg, a.out);
  std::cout << fmt::format("wrote {} ({} layers)\n", a.out, cfg.layers.size());
  return 0;
}

}  // namespace

void add_calibrate(CLI::App& app, Action& action) {
  auto a = std::make_shared<CalibrateArgs>();
  auto* cmd = app.add_subcommand("calibrate", "Calibrate a uniform quantization config");
  cmd->add_option("model", a->model, "ONNX model file")->required()->type_name(kFileType);
  add_data_options(cmd, a->data, true, false);
  add_quant_options(cmd, a->quant);
  cmd->add_option("-o,--output", a->out, "Config to write (JSON)")
      ->required()
      ->type_name(kFileType);
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([a, &action] { action = [a] { return run_calibrate(*a); }; });
}

}  // namespace mixq::cli
