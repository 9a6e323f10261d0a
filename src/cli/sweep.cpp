// mixq sweep --omega F --budgets 2.5bits,3bits,3.5bits --methods uniform,greedy,diagonal,clado
//            --sens-data SPEC --data SPEC -o sweep.csv
// Every method at every budget: predicted loss increase, measured loss increase on the
// sensitivity set, and test top-1. With --random N, also the Spearman correlation between the
// predicted and measured loss over N random assignments, for CLADO's Omega and its diagonal.
#include <fmt/format.h>

#include <iostream>
#include <random>
#include <sstream>

#include "base/error.h"
#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "cli/layer_args.h"
#include "cli/sweep_lines.h"
#include "cli/validators.h"
#include "data/batch_iterator.h"
#include "data/model_inputs.h"
#include "eval/correlation.h"
#include "eval/evaluate.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "search/allocate.h"
#include "search/hessian.h"
#include "search/sweep.h"

namespace mixq::cli {
namespace {

struct SweepArgs {
  std::string omega, budgets, methods = "uniform,greedy,diagonal,hawq,clado,clado-psd", model,
                              sens_spec, out, json;
  DataArgs data;
  size_t random = 0;
  size_t hawq_samples = 256;
  int hawq_probes = 32;
  double hawq_step = HessianOptions{}.step;
  double time_limit = 60;
  int threads = 0;
  uint64_t seed = 0;
  LayerRules layers;  // --keep-float, --pin
};

std::vector<AllocMethod> parse_methods(const std::string& text) {
  std::vector<AllocMethod> methods;
  std::stringstream ss(text);
  std::string m;
  while (std::getline(ss, m, ',')) methods.push_back(parse_alloc_method(m, "--methods"));
  check(!methods.empty(), "--methods", "give at least one allocator");
  return methods;
}

int run_sweep(const SweepArgs& a) {
  set_threads(a.threads);
  check_output_file(a.out, "-o");
  if (!a.json.empty()) check_output_file(a.json, "--json");
  std::vector<InputFile> inputs = data_inputs(a.sens_spec, "--sens-data");
  for (const InputFile& f : data_inputs(a.data.spec, "--data")) inputs.push_back(f);
  inputs.push_back({a.omega, "sensitivity file"});
  inputs.push_back({a.model, "model"});
  check_no_overwrite(a.out, inputs, "-o");
  check_no_overwrite(a.json, inputs, "--json");
  check_no_overwrite(a.json, {{a.out, "CSV output (-o)"}}, "--json");
  SensitivityData d = load_sensitivity(a.omega);
  check(d.complete(), a.omega, "measurement not complete (resume it)");
  check(d.header.value("loss", "ce") == "ce", a.omega,
        "sweep measures cross-entropy: use a file measured with --loss ce");
  const std::string model = a.model.empty() ? d.header.value("model", "") : a.model;
  check_no_overwrite(a.out, {{model, "model"}}, "-o");
  check_no_overwrite(a.json, {{model, "model"}}, "--json");
  const std::vector<AllocMethod> methods = parse_methods(a.methods);
  auto budgets = parse_budgets(a.budgets, "--budgets");
  DataArgs sens_args = a.data;
  sens_args.spec = a.sens_spec;
  auto sens = open_data(sens_args);
  auto test = open_data(a.data);
  require_labels(*sens, "sweep (measured cross-entropy)");
  require_labels(*test, "sweep (accuracy per allocation)");
  Graph g = load_onnx(model);
  SearchSpace space = search_space_from_header(g, d.header, a.omega);
  set_layer_rules(space, a.layers);
  const auto subset = random_subset(sens->size(), d.header.value("samples", size_t{0}),
                                    d.header.value("seed", 0ull));
  check(subset.size() == d.samples, a.omega, "--sens-data has fewer samples than the file used");
  // HAWQ: Hessian traces on the first --hawq-samples of the sensitivity subset.
  nlohmann::json hawq_json;
  std::vector<double> hawq_diag;
  if (std::find(methods.begin(), methods.end(), AllocMethod::hawq) != methods.end()) {
    HessianOptions ho;
    ho.probes = a.hawq_probes;
    ho.step = a.hawq_step;
    ho.batch = a.data.batch;
    ho.seed = a.seed;
    ho.progress = true;
    const std::vector<size_t> hs(subset.begin(),
                                 subset.begin() + std::min(subset.size(), a.hawq_samples));
    const HessianTraces h = hessian_traces(g, space, *sens, hs, ho);
    hawq_diag = hawq_sensitivity(g, space, h);
    hawq_json = {{"samples", hs.size()}, {"probes", h.probes},     {"step", a.hawq_step},
                 {"trace", h.trace},     {"trace_sd", h.trace_sd}, {"sensitivity", hawq_diag}};
  }
  AllocInputs in{&g, &space, &d, hawq_diag.empty() ? nullptr : &hawq_diag};
  IqpOptions o;
  o.time_limit_s = a.time_limit;
  std::string csv = kSweepCsvHeader;
  // The weights rounded as the sensitivities measured them (grams on the same samples).
  WeightRounding rounding;
  if (d.header.contains("rounding")) {
    const WeightRounding recorded = rounding_from_json(d.header["rounding"], a.omega);
    ObserveOptions oo;
    oo.batch = a.data.batch;
    oo.samples = recorded.samples;
    oo.seed = recorded.seed;
    rounding = make_rounding(recorded.method, g, *sens, oo);
  }
  SweepData sd{sens.get(), subset, test.get(), a.data.batch, a.data.limit, rounding};
  const std::vector<SweepRow> rows = sweep(in, budgets, methods, o, sd, [&](const SweepRow& r) {
    csv += sweep_csv_line(r);
    print_sweep_row(r);
  });
  nlohmann::json out = {{"sensitivity", a.omega}, {"model", model}, {"rows", sweep_json(rows)}};
  if (!hawq_json.is_null()) out["hawq"] = hawq_json;
  if (a.random > 0) {
    // Random assignments of the candidates: predicted by full Omega and by its diagonal.
    const Eigen::MatrixXd om = omega_matrix(d);
    std::mt19937_64 rng(a.seed);
    std::vector<double> full, diag, meas;
    const size_t C = space.num_candidates();
    const bool tty = stderr_is_tty();
    for (size_t k = 0; k < a.random; ++k) {
      std::vector<int> choice(space.num_searched());
      for (size_t s = 0; s < choice.size(); ++s) {
        choice[s] = static_cast<int>(rng() % C);
        const LayerFix& f = space.fix(space.searched[s]);  // fixed layers as fixed
        if (f.kind == LayerFix::Kind::keep_float) choice[s] = -1;
        for (size_t c = 0; c < C && f.kind == LayerFix::Kind::pin; ++c)
          if (space.candidates[c].name == f.candidate.name) choice[s] = static_cast<int>(c);
      }
      double pf = 0, pd = 0;
      for (size_t s = 0; s < choice.size(); ++s) {
        if (choice[s] < 0) continue;  // float: unperturbed
        const size_t x = s * C + choice[s];
        pd += om(x, x);
        for (size_t t = 0; t < choice.size(); ++t)
          if (choice[t] >= 0) pf += om(x, t * C + choice[t]);
      }
      const InputQuants inputs =
          input_quants_from_json(d.header.value("activations", nlohmann::json()), a.omega);
      QuantConfig cfg = assignment_config(g, space, choice, &inputs);
      full.push_back(pf);
      diag.push_back(pd);
      meas.push_back(measured_increase(g, cfg, *sens, subset, d.L0(), a.data.batch, rounding));
      // A terminal gets one updating line; a log gets a line every tenth of the way.
      if (tty)
        std::cerr << fmt::format("\rrandom assignments {}/{}", k + 1, a.random) << std::flush;
      else if ((k + 1) % std::max<size_t>(1, a.random / 10) == 0 || k + 1 == a.random)
        std::cerr << fmt::format("random assignments {}/{}\n", k + 1, a.random);
    }
    if (tty) std::cerr << "\n";
    out["random"] = {{"count", a.random},
                     {"spearman_clado", spearman(full, meas)},
                     {"spearman_diagonal", spearman(diag, meas)},
                     {"predicted_clado", full},
                     {"predicted_diagonal", diag},
                     {"measured", meas}};
    std::cout << fmt::format("Spearman over {} random assignments: CLADO {:.3f}, diagonal {:.3f}\n",
                             a.random, spearman(full, meas), spearman(diag, meas));
  }
  write_file_atomic(a.out, csv);
  if (!a.json.empty()) write_file_atomic(a.json, out.dump(1) + "\n");
  std::cout << csv;
  return 0;
}

}  // namespace

void add_sweep(CLI::App& app, Action& action) {
  auto a = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand("sweep", "Evaluate allocators across budgets");
  cmd->add_option("--omega", a->omega, "Sensitivity file from mixq sensitivity")
      ->required()
      ->type_name(kFileType);
  cmd->add_option("--budgets", a->budgets, "Budgets, e.g. 2.5bits,3bits,3.5bits")
      ->required()
      ->check(parsed_by([](const std::string& s) { parse_budgets(s, "--budgets"); }, "BUDGETS"));
  cmd->add_option("--methods", a->methods, "Allocators to compare")
      ->check(parsed_by([](const std::string& s) { parse_methods(s); }, "METHODS"));
  cmd->add_option("--model", a->model, "The model (default: the one the file names)")
      ->type_name(kFileType);
  cmd->add_option("--sens-data", a->sens_spec, "The data the sensitivity file was measured on")
      ->required()
      ->type_name(kSpecType);
  add_data_options(cmd, a->data);
  add_layer_options(cmd, a->layers);
  cmd->add_option("--random", a->random, "Random assignments for the rank correlation");
  cmd->add_option("--seed", a->seed, "Seed of the random assignments and Hessian probes");
  cmd->add_option("--hawq-samples", a->hawq_samples,
                  "hawq: sensitivity samples for the Hessian traces (default 256)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--hawq-probes", a->hawq_probes, "hawq: Hutchinson probes (default 32)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--hawq-step", a->hawq_step,
                  "hawq: probe size relative to each weight tensor's RMS")
      ->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--time-limit", a->time_limit, "Solver time limit per allocation (s)")
      ->check(CLI::Range(0.001, 1e6));
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("-o,--output", a->out, "CSV table to write")->required()->type_name(kFileType);
  cmd->add_option("--json", a->json, "Also write the full results as JSON")->type_name(kFileType);
  cmd->callback([a, &action] { action = [a] { return run_sweep(*a); }; });
}

}  // namespace mixq::cli
