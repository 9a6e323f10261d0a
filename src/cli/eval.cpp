// mixq eval MODEL --data SPEC: top-1, top-5 and mean loss with labels; agreement with the float
// model (--quant's model, or --reference) with or without labels; images/s.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "cli/validators.h"
#include "eval/evaluate.h"
#include "onnx/import.h"
#include "quant/apply.h"

namespace mixq::cli {
namespace {

struct EvalArgs {
  std::string model;
  DataArgs data;
  int threads = 0;
  bool json = false;
  std::string impl = "fast";
  std::string quant;
  std::string reference;
  std::string engine = "float";
};

int run_eval(const EvalArgs& a) {
  set_threads(a.threads);
  auto data = open_data(a.data);  // flags and data first: cheap to check
  Graph g = load_onnx(a.model);
  check(a.engine == "float" || !a.quant.empty(), "--engine", "int8 needs --quant");
  // The float model the outputs are compared with: --reference, else the model under --quant.
  std::unique_ptr<Executor> reference;
  if (!a.reference.empty())
    reference = std::make_unique<Executor>(load_onnx(a.reference), Impl::fast, true);
  else if (!a.quant.empty())
    reference = std::make_unique<Executor>(g, Impl::fast, true);
  if (!a.quant.empty())
    g = apply_quant(g, load_quant_config(a.quant), a.quant,
                    a.engine == "int8" ? WeightForm::int8 : WeightForm::dequantized);
  const Impl impl = a.impl == "reference" ? Impl::reference : Impl::fast;
  Executor ex(g, impl, impl == Impl::fast);  // the reference path is the specification
  EvalOptions o;
  o.reference = reference.get();
  o.batch_size = a.data.batch;
  o.limit = a.data.limit;
  if (stderr_is_tty())
    o.progress = [](size_t done, size_t total) {
      std::cerr << fmt::format("\reval {}/{}", done, total) << (done == total ? "\n" : "")
                << std::flush;
    };
  EvalResult r = evaluate(ex, *data, o);
  const nlohmann::json none;
  if (a.json) {
    nlohmann::json j = {{"model", a.model},
                        {"data", data->description()},
                        {"samples", r.samples},
                        {"labelled", r.labelled},
                        {"top1", r.labelled ? nlohmann::json(r.top1 * 100) : none},
                        {"top5", r.labelled ? nlohmann::json(r.top5 * 100) : none},
                        {"loss", r.labelled ? nlohmann::json(r.loss) : none},
                        {"agreement", r.compared ? agreement_json(r.agreement) : none},
                        {"seconds", r.seconds},
                        {"images_per_s", r.images_per_s()},
                        {"compute_images_per_s", r.samples / std::max(r.compute_seconds, 1e-9)},
                        {"batch", a.data.batch},
                        {"engine", "fp32"},
                        {"quant", a.quant}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("model    {}{}\n", a.model, a.quant.empty() ? "" : " with " + a.quant);
  std::cout << fmt::format("data     {}\n", data->description());
  std::cout << fmt::format("samples  {}\n", r.samples);
  if (r.labelled) {
    std::cout << fmt::format("top-1    {:.2f} %\n", r.top1 * 100);
    std::cout << fmt::format("top-5    {:.2f} %\n", r.top5 * 100);
    std::cout << fmt::format("loss     {:.4f}\n", r.loss);
  } else {
    std::cout << "accuracy not measured: the data has no labels\n";
  }
  if (r.compared) std::cout << agreement_text(r.agreement, "float model") << "\n";
  if (!r.labelled && !r.compared)
    std::cout << "(give --reference FLOAT_MODEL to compare outputs with the float model)\n";
  std::cout << fmt::format("speed    {:.0f} images/s overall, {:.0f} images/s network only\n",
                           r.images_per_s(), r.samples / std::max(r.compute_seconds, 1e-9));
  return 0;
}

}  // namespace

void add_eval(CLI::App& app, Action& action) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate a model: accuracy on labelled data, agreement with a float model");
  cmd->add_option("model", a->model, "ONNX model file")->required()->type_name(kFileType);
  add_data_options(cmd, a->data);
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--impl", a->impl, "Kernel implementations: fast or reference")
      ->check(CLI::IsMember({"fast", "reference"}));
  cmd->add_option("--quant", a->quant, "Quantization config (JSON): fake-quantized evaluation")
      ->type_name(kFileType);
  cmd->add_option("--reference", a->reference,
                  "Float model to compare outputs with (default with --quant: the model itself)")
      ->type_name(kFileType);
  cmd->add_option("--engine", a->engine,
                  "With --quant: float (fake-quantized) or int8 (integer convolutions)")
      ->check(CLI::IsMember({"float", "int8"}));
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->callback([a, &action] { action = [a] { return run_eval(*a); }; });
}

}  // namespace mixq::cli
