// mixq quantize MODEL --calib-data SPEC [--data SPEC] --wbits 4 --abits 8 --scheme fixed:
// calibrates a uniform configuration, writes it with a fake-quantized ONNX model any runtime
// can run, and evaluates it when --data is given.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "cli/quant_args.h"
#include "eval/evaluate.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "report/report.h"

namespace mixq::cli {
namespace {

struct QuantizeArgs {
  std::string model, calib_spec, out = "mixq-out";
  DataArgs data;
  QuantArgs quant;
  int threads = 0;
};

int run_quantize(const QuantizeArgs& a) {
  set_threads(a.threads);
  UniformOptions uo = uniform_options(a.quant);
  DataArgs calib_args = a.data;
  calib_args.spec = a.calib_spec;
  auto calib = open_data(calib_args);
  std::unique_ptr<Dataset> test;
  if (!a.data.spec.empty()) test = open_data(a.data);
  Graph g = load_onnx(a.model);
  std::filesystem::create_directories(a.out);
  ActivationStats stats;
  if (uo.abits > 0) stats = observe_activations(g, *calib, observe_options(a.quant, a.data));
  QuantConfig cfg = uniform_config(g, uo.abits > 0 ? &stats : nullptr, uo);
  cfg.info["calibration"] = {{"data", calib->description()}, {"samples", stats.samples}};
  Graph q = apply_quant(g, cfg);
  // The file others run holds integer weights behind DequantizeLinear (QDQ); mixq evaluates the
  // same values from float constants.
  const std::string cfg_path = a.out + "/quant.json", onnx_path = a.out + "/model_qdq.onnx",
                    packed_path = a.out + "/model.mixq";
  save_onnx(apply_quant(g, cfg, a.model, WeightForm::qdq), onnx_path);
  save_packed(pack_model(g, cfg, a.model), packed_path);
  save_quant_config(cfg, cfg_path);
  auto layers = find_quant_layers(g);
  std::cout << fmt::format("wrote {}, {} and {}\n", cfg_path, onnx_path, packed_path);
  std::cout << fmt::format("weights  {:.2f} bits on average, {:.1f} KB\n",
                           average_weight_bits(g, cfg, layers), weight_bytes(g, cfg) / 1024);
  ReportInputs report;
  report.title = "mixq quantize: " + a.model;
  report.model = a.model;
  report.config = &cfg;
  report.facts["average weight bits"] = fmt::format("{:.2f}", average_weight_bits(g, cfg, layers));
  report.facts["weights"] = fmt::format("{:.1f} KB", weight_bytes(g, cfg) / 1024);
  report.commands = {command_line()};
  if (test) {
    Executor ex(q, Impl::fast, true);
    EvalOptions eo;
    eo.batch_size = a.data.batch;
    eo.limit = a.data.limit;
    EvalResult r = evaluate(ex, *test, eo);
    std::cout << fmt::format("top-1    {:.2f} %   (top-5 {:.2f} %, loss {:.4f}, {} samples)\n",
                             r.top1 * 100, r.top5 * 100, r.loss, r.samples);
    report.facts["test top-1"] = fmt::format("{:.2f} % on {}", r.top1 * 100, test->description());
  }
  const std::string report_path = a.out + "/report.html";
  write_file_atomic(report_path, render_report(report));
  std::cout << "wrote " << report_path << "\n";
  return 0;
}

}  // namespace

void add_quantize(CLI::App& app, Action& action) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand("quantize", "Calibrate, quantize, export and evaluate");
  cmd->add_option("model", a->model, "ONNX model file")->required();
  add_data_options(cmd, a->data, false);
  cmd->add_option("--calib-data", a->calib_spec, "Calibration data spec (training data)")
      ->required();
  add_quant_options(cmd, a->quant);
  cmd->add_option("-o,--out", a->out, "Output folder");
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([a, &action] { action = [a] { return run_quantize(*a); }; });
}

}  // namespace mixq::cli
