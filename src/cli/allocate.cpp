// mixq allocate --omega F --budget 3.0bits --method clado -o Q.json: bit-widths per layer from
// the measured sensitivities, written as a quantization config.
#include <fmt/format.h>

#include <cmath>
#include <iostream>

#include "base/error.h"
#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/layer_args.h"
#include "cli/validators.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "search/allocate.h"

namespace mixq::cli {
namespace {

struct AllocateArgs {
  std::string omega, budget, method = "clado", model, out;
  double time_limit = 60;
  LayerRules layers;  // --keep-float, --pin
};

int run_allocate(const AllocateArgs& a) {
  check_output_file(a.out, "-o");
  check_no_overwrite(a.out, {{a.omega, "sensitivity file"}, {a.model, "model"}}, "-o");
  SensitivityData d = load_sensitivity(a.omega);
  const std::string model = a.model.empty() ? d.header.value("model", "") : a.model;
  check_no_overwrite(a.out, {{model, "model"}}, "-o");
  Graph g = load_onnx(model);
  SearchSpace space = search_space_from_header(g, d.header, a.omega);
  set_layer_rules(space, a.layers);
  const AllocMethod method = parse_alloc_method(a.method, "--method");
  AllocInputs in{&g, &space, &d, nullptr};
  IqpOptions o;
  o.time_limit_s = a.time_limit;
  Allocation al = allocate(in, method, parse_budgets(a.budget, "--budget"), o);
  check(al.feasible, "--budget", "no assignment of the candidates meets " + a.budget);
  QuantConfig cfg = allocation_config(in, al);
  cfg.info["budget"] = a.budget;
  cfg.info["sensitivity"] = a.omega;
  save_quant_config(cfg, a.out);
  auto layers = find_quant_layers(g);
  std::cout << fmt::format("{:<40} {:>6} {:>10}\n", "layer", "bits", "weights");
  for (size_t i = 0; i < cfg.layers.size(); ++i)
    std::cout << fmt::format("{:<40} {:>6} {:>10}\n", cfg.layers[i].name,
                             cfg.layers[i].rows.empty() ? 32 : cfg.layers[i].rows[0].bits,
                             layers[i].weight_count);
  std::cout << fmt::format(
      "method {}: average {:.3f} bits over the searched layers not pinned or float, {:.1f} KB "
      "weights\n",
      al.method, average_weight_bits(g, cfg, space.free_layers()), weight_bytes(g, cfg) / 1024);
  if (!std::isnan(al.predicted))
    std::cout << fmt::format("predicted loss increase {:.5f}\n", al.predicted);
  if (method != AllocMethod::uniform && method != AllocMethod::greedy)
    std::cout << fmt::format("solver: {} in {:.3f} s, {} nodes, gap {:.2e}\n",
                             to_string(al.solver.status), al.solver.seconds, al.solver.nodes,
                             al.solver.gap);
  std::cout << "wrote " << a.out << "\n";
  return 0;
}

}  // namespace

void add_allocate(CLI::App& app, Action& action) {
  auto a = std::make_shared<AllocateArgs>();
  auto* cmd = app.add_subcommand("allocate", "Choose per-layer bit-widths under a budget");
  cmd->add_option("--omega", a->omega, "Sensitivity file from mixq sensitivity")
      ->required()
      ->type_name(kFileType);
  cmd->add_option("--budget", a->budget, "3.0bits, 2MB, 512KB or 1.2GBOPs (comma: several)")
      ->required()
      ->check(parsed_by([](const std::string& s) { parse_budgets(s, "--budget"); }, "BUDGET"));
  cmd->add_option("--method", a->method, "uniform, greedy, diagonal, clado, clado-psd")
      ->check(parsed_by(
          [](const std::string& s) {
            check(parse_alloc_method(s, "--method") != AllocMethod::hawq, "--method",
                  "hawq needs Hessian traces: use `mixq sweep --methods hawq`");
          },
          "METHOD"));
  cmd->add_option("--model", a->model, "The model (default: the one the file names)")
      ->type_name(kFileType);
  add_layer_options(cmd, a->layers);
  cmd->add_option("--time-limit", a->time_limit, "Solver time limit in seconds")
      ->check(CLI::Range(0.001, 1e6));
  cmd->add_option("-o,--output", a->out, "Config to write (JSON)")
      ->required()
      ->type_name(kFileType);
  cmd->callback([a, &action] { action = [a] { return run_allocate(*a); }; });
}

}  // namespace mixq::cli
