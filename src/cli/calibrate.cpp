// mixq calibrate MODEL --data SPEC -o Q.json: activation ranges and per-row weight scales for a
// uniform configuration (bits and scheme for every layer, first and last at 8 bits).
#include <fmt/format.h>

#include <iostream>

#include "base/error.h"
#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "cli/layer_args.h"
#include "cli/quant_args.h"
#include "cli/validators.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/calibrate.h"

namespace mixq::cli {
namespace {

struct CalibrateArgs {
  std::string model, out, model_out;
  DataArgs data;
  QuantArgs quant;
  LayerRules layers;  // --keep-float, --pin
  int threads = 0;
};

int run_calibrate(const CalibrateArgs& a) {
  set_threads(a.threads);
  check_output_file(a.out, "-o");
  std::vector<InputFile> inputs = data_inputs(a.data.spec, "--data");
  inputs.push_back({a.model, "input model"});
  check_no_overwrite(a.out, inputs, "-o");
  const Rounding rounding = parse_rounding(a.quant.rounding, "--rounding");
  check(rounding == Rounding::nearest || !a.model_out.empty(), "--rounding",
        std::string(rounding_name(rounding)) +
            " moves the weights: give --model-out FILE for the model that holds them");
  if (!a.model_out.empty()) {
    check_output_file(a.model_out, "--model-out");
    check_no_overwrite(a.model_out, inputs, "--model-out");
    check(a.model_out != a.out, "--model-out", "is the same file as -o");
  }
  UniformOptions uo = uniform_options(a.quant);
  auto data = open_data(a.data);
  Graph g = load_onnx(a.model);
  resolve_layer_rules(find_quant_layers(g), a.layers);  // bad rules fail before any work
  ActivationStats stats;
  if (uo.abits > 0) stats = observe_activations(g, *data, observe_options(a.quant, a.data));
  QuantConfig cfg = uniform_config(g, uo.abits > 0 ? &stats : nullptr, uo);
  apply_layer_rules(g, a.layers, cfg);
  cfg.info["calibration"] = {{"data", data->description()}, {"samples", stats.samples}};
  cfg.info["rounding"] = rounding_name(rounding);
  if (!a.model_out.empty()) {
    WeightRounding r;  // the final rounding collects its own inputs, layer by layer
    r.method = rounding;
    ExportOptions eo;
    eo.min_opset = g.opset;
    const Graph rounded = round_final_weights(a.quant, a.data, g, cfg, r, *data);
    if (rounding != Rounding::nearest) cfg.weights_hash = config_weights_hash(rounded, cfg);
    save_onnx(rounded, a.model_out, eo);
    std::cout << fmt::format("wrote {} (weights rounded by {}, at their dequantized values)\n",
                             a.model_out, rounding_name(rounding));
  }
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
  add_layer_options(cmd, a->layers);
  cmd->add_option("-o,--output", a->out, "Config to write (JSON)")
      ->required()
      ->type_name(kFileType);
  cmd->add_option(
         "--model-out", a->model_out,
         "Also write the model with its weights rounded as the config quantizes them "
         "(needed by --rounding gptq or adaround; run it with `mixq eval FILE --quant CONFIG`)")
      ->type_name(kFileType);
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([a, &action] { action = [a] { return run_calibrate(*a); }; });
}

}  // namespace mixq::cli
