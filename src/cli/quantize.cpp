// mixq quantize [MODEL] [--calib-data SPEC] [--data SPEC] [--budget B] [quantizer options]:
// the whole job. Calibrates; with --budget measures CLADO sensitivities (resumable) and
// allocates per-layer candidates by the exact IQP, else quantizes every layer at --wbits; writes
// the config, the QDQ ONNX model, the packed model and the HTML report; evaluates on --data.
// Without MODEL it runs on mixq's own Fashion-MNIST model and Debian's Fashion-MNIST.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "base/data_files.h"
#include "base/error.h"
#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "cli/layer_args.h"
#include "cli/quant_args.h"
#include "cli/sweep_lines.h"
#include "cli/train_common.h"
#include "cli/validators.h"
#include "data/batch_iterator.h"
#include "data/model_inputs.h"
#include "eval/evaluate.h"
#include "hw/cost_json.h"
#include "hw/fpga.h"
#include "hw/shapes.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "qat/finetune.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "report/report.h"
#include "search/allocate.h"
#include "search/sweep.h"

namespace mixq::cli {
namespace {

struct QuantizeArgs {
  std::string model, calib_spec, out = "mixq-out", budget, candidates = "w2,w4,w8";
  size_t samples = 1024;
  bool curves = true;    // with --budget and --data: every allocator across sizes, for the report
  bool rerank = true;    // with --budget: keep the allocation that measures best (sweep.h)
  int64_t finetune = 0;  // epochs of quantization-aware fine-tuning (STE) on the calibration data
  DataArgs data;
  QuantArgs quant;
  LayerRules layers;  // --keep-float, --pin
  int threads = 0;
};

// --budget and --candidates, parsed once: what the allocator, the report and the printout share.
struct Target {
  std::vector<Budget> budgets;
  std::vector<CandidateSpec> candidates;
  bool empty() const { return budgets.empty(); }
};

// mixq's own model, trained by mixq train (models/README.md).
const char* const kDefaultModel = "models/fmnist_default.onnx";

// CLADO: sensitivities on the calibration data (checkpointed in the output folder, so an
// interrupted run resumes) and the exact IQP under the budget.
QuantConfig clado_config(const QuantizeArgs& a, const Target& t, const Graph& g,
                         const SearchSpace& space, const SearchSpace& fixed,
                         const ActivationStats& stats, const Dataset& calib,
                         const WeightRounding& rounding, SensitivityData& d, Allocation& al) {
  SensitivityOptions so;
  so.rounding = rounding;
  so.samples = a.samples;
  so.seed = a.quant.seed;
  so.checkpoint = a.out + "/sensitivity.omega";
  so.resume = std::filesystem::exists(so.checkpoint);
  so.resume_advice = "remove it or write to another -o folder";
  so.progress = [](const std::string& line) { std::cerr << (line + "\n") << std::flush; };
  if (so.resume) std::cout << "resuming " << so.checkpoint << "\n";
  d = measure_sensitivity(g, space, stats, calib, so);
  std::cout << fmt::format("sensitivities: {} layers x {} candidates, {} evaluations, {:.1f} s\n",
                           d.layers, d.candidates, d.evaluations, d.seconds);
  // The allocation honours --pin / --keep-float; the measurement does not depend on them.
  const AllocInputs in{&g, &fixed, &d, nullptr};
  const std::string budget = budgets_text(t.budgets);
  al = allocate(in, AllocMethod::clado, t.budgets);
  check(al.feasible, "--budget", "no assignment of the candidates meets '" + budget + "'");
  std::cout << fmt::format("CLADO under {}: predicted {} increase {:.5f}, solver {} in {:.3f} s\n",
                           budget, loss_title(d.header.value("loss", "ce")), al.predicted,
                           to_string(al.solver.status), al.solver.seconds);
  std::string method = "clado";
  nlohmann::json reranked = nullptr;
  if (a.rerank && d.header.value("loss", "ce") == "ce") {
    // Omega is a second-order model: the allocations of the other allocators may measure
    // better where it breaks down (low budgets). Keep whichever measures best.
    const SweepData sd{
        &calib,  random_subset(calib.size(), d.samples, d.header.value("seed", uint64_t{0})),
        nullptr, a.data.batch,
        0,       rounding};
    const auto ranked = rank_allocations(
        in, t.budgets, {AllocMethod::clado, AllocMethod::diagonal, AllocMethod::greedy}, {}, sd);
    std::string line = "measured loss increase on the sensitivity samples:";
    reranked = nlohmann::json::object();
    for (const RankedAllocation& r : ranked) {
      line += fmt::format(" {} {:.5f}", alloc_method_name(r.method), r.measured);
      reranked[alloc_method_name(r.method)] = r.measured;
    }
    if (!ranked.empty() && ranked[0].method != AllocMethod::clado) {
      al = ranked[0].allocation;
      method = alloc_method_name(ranked[0].method);
    }
    std::cout << line << "; keeping " << method << "\n";
  }
  for (const BudgetUse& u : al.budget_use)
    if (u.budget.kind == Budget::Kind::latency_ms)
      std::cout << fmt::format("predicted latency {:.3f} ms on {}\n", u.used, u.budget.device);
  QuantConfig cfg = allocation_config(in, al);
  cfg.info["allocation"] = {{"method", method},
                            {"budget", budget},
                            {"choice", al.choice},
                            {"candidates", candidate_names(t.candidates)},
                            {"predicted", al.predicted}};
  if (!reranked.is_null()) cfg.info["allocation"]["measured"] = reranked;
  return cfg;
}

// Accuracy against size for every allocator on the same measurements (the report's curves):
// average-bit budgets across the candidates' range, test top-1 of each allocation.
nlohmann::json curves(const QuantizeArgs& a, const Graph& g, const SearchSpace& space,
                      const SensitivityData& d, const Dataset& calib, const Dataset& test,
                      const WeightRounding& rounding) {
  double lo = 32, hi = 0;
  for (const CandidateSpec& c : space.candidates)
    lo = std::min<double>(lo, c.bits), hi = std::max<double>(hi, c.bits);
  std::vector<Budget> budgets;
  for (double b : {2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0})
    if (b > lo && b < hi)
      budgets.push_back({Budget::Kind::avg_bits, b, fmt::format("{:g}bits", b), ""});
  std::cout << fmt::format("accuracy-vs-size curves: {} budgets x 4 allocators\n", budgets.size());
  const AllocInputs in{&g, &space, &d, nullptr};
  SweepData sd{
      &calib,       random_subset(calib.size(), d.samples, d.header.value("seed", uint64_t{0})),
      &test,        a.data.batch,
      a.data.limit, rounding};
  return {{"rows", sweep_json(sweep(in, budgets,
                                    {AllocMethod::uniform, AllocMethod::greedy,
                                     AllocMethod::diagonal, AllocMethod::clado},
                                    IqpOptions{}, sd, print_sweep_row))}};
}

// The FPGA figures of a config on the device of --device (or of a latency budget).
nlohmann::json fpga_json(const QuantizeArgs& a, const Target& t, const Graph& g,
                         const QuantConfig& cfg) {
  std::string device = a.quant.device;
  if (device.empty())
    for (const Budget& b : t.budgets)
      if (b.kind == Budget::Kind::latency_ms) device = b.device;
  if (device.empty()) return nullptr;
  const hw::Device* dev = hw::find_device(device);
  check(dev != nullptr, "--device", "unknown device '" + device + "' (" + hw::device_names() + ")");
  const hw::Design design = latency_design(*dev);
  const auto layers = hw::layers_from_graph(g);
  const auto splits = hw::splits_from_config(layers, cfg, "config");
  const hw::NetworkCost cost = hw::network_cost(design, layers, splits);
  std::cout << fmt::format("FPGA {}: {:.3f} ms, {:.1f} GOPS, LUT {:.1f} %\n", dev->name, cost.ms,
                           cost.gops, 100 * design.lut_share());
  return hw::cost_json(design, layers, splits, cost, a.model);
}

// STE fine-tuning under the config (qat/finetune.h), checkpointed in the output folder so an
// interrupted run resumes; g and cfg become the trained model and config.
void finetune(const QuantizeArgs& a, const Dataset& train, Graph& g, QuantConfig& cfg) {
  QatOptions q = ste_recipe(a.finetune);
  TrainOptions& o = q.train;
  o.limit = a.data.limit;
  o.seed = a.quant.seed;
  o.augment = default_augment(a.data, train.sample_shape());
  o.checkpoint = a.out + "/finetune.ckpt";
  o.resume = std::filesystem::exists(o.checkpoint);
  o.stop = StopOnSignal::flag();
  set_progress(o, "");
  std::cout << fmt::format("fine-tuning {} epochs (STE, lr {:g} {}) on {}{}\n", o.epochs,
                           o.schedule.lr, schedule_name(o.schedule.kind), train.description(),
                           o.resume ? ", resuming" : "");
  StopOnSignal guard;
  check(ste_finetune(g, cfg, train, q, "config"), o.checkpoint,
        "fine-tuning stopped; run the same command to resume");
  // The trained weights in float, so `mixq eval DIR/model.onnx --quant DIR/quant.json` works.
  ExportOptions eo;
  eo.min_opset = g.opset;
  save_onnx(g, a.out + "/model.onnx", eo);
  std::cout << "wrote " << a.out << "/model.onnx (fine-tuned, float weights)\n";
}

int run_quantize(QuantizeArgs a) {
  set_threads(a.threads);
  if (a.model.empty()) {  // the embedded default and Debian's Fashion-MNIST
    a.model = find_data_file(kDefaultModel);
    if (a.calib_spec.empty()) a.calib_spec = "fmnist:train";
    if (a.data.spec.empty()) a.data.spec = "fmnist:test";
  }
  check(!a.calib_spec.empty(), "--calib-data",
        "required with a model of your own (training images to calibrate on)");
  UniformOptions uo = uniform_options(a.quant);
  check(a.budget.empty() || uo.abits > 0, "--budget",
        "CLADO measures with activations quantized: --abits must be 2..16");
  Target target;
  if (!a.budget.empty()) {  // bad text fails here, before any output exists
    target.budgets = parse_budgets(a.budget, "--budget");
    target.candidates = parse_candidates(a.candidates, "--candidates");
  }
  // Outputs before any work: a writable folder, and no file it will hold is an input.
  check_output_dir(a.out, "-o");
  std::vector<InputFile> inputs = data_inputs(a.calib_spec, "--calib-data");
  for (const InputFile& f : data_inputs(a.data.spec, "--data")) inputs.push_back(f);
  inputs.push_back({a.model, "input model"});
  for (const char* name : {"quant.json", "model_qdq.onnx", "model.mixq", "report.html",
                           "model.onnx", "sensitivity.omega", "finetune.ckpt"})
    check_no_overwrite(a.out + "/" + name, inputs, "-o");
  DataArgs calib_args = a.data;
  calib_args.spec = a.calib_spec;
  auto calib = open_data(calib_args);
  std::unique_ptr<Dataset> test;
  if (!a.data.spec.empty()) test = open_data(a.data);
  if (a.finetune > 0) require_labels(*calib, "--finetune");
  Graph g = load_onnx(a.model);
  // Bad --keep-float / --pin fail here, before any output exists.
  resolve_layer_rules(find_quant_layers(g), a.layers);
  SearchSpace space, fixed;
  if (!target.empty()) {  // a budget no assignment meets fails before any measurement
    space = make_search_space(g, target.candidates, false, uo.abits);
    fixed = space;
    set_layer_rules(fixed, a.layers);
    for (const Budget& b : target.budgets) check_budget_feasible(b, g, fixed, "--budget");
  }
  std::filesystem::create_directories(a.out);
  ActivationStats stats;
  if (uo.abits > 0) stats = observe_activations(g, *calib, observe_options(a.quant, a.data));
  // Without a budget only the final rounding runs, and it collects its own inputs.
  WeightRounding rounding;
  rounding.method = parse_rounding(a.quant.rounding, "--rounding");
  if (!target.empty()) rounding = weight_rounding(a.quant, a.data, g, *calib);
  SensitivityData sens;
  Allocation al;
  QuantConfig cfg;
  if (target.empty()) {
    cfg = uniform_config(g, uo.abits > 0 ? &stats : nullptr, uo);
    apply_layer_rules(g, a.layers, cfg);
  } else {
    cfg = clado_config(a, target, g, space, fixed, stats, *calib, rounding, sens, al);
  }
  cfg.info["calibration"] = {{"data", calib->description()}, {"samples", stats.samples}};
  cfg.info["rounding"] = a.quant.rounding;
  // The curves compare allocators on the measured model, before any fine-tuning.
  nlohmann::json sweep;
  if (!target.empty() && test && a.curves) {
    if (calib->labelled() && test->labelled())
      sweep = curves(a, g, fixed, sens, *calib, *test, rounding);
    else
      std::cout << "accuracy-vs-size curves skipped: they need labelled --calib-data and --data\n";
  }
  // From here on the model holds its weights as rounded (the float model stays the reference).
  const Graph float_model = g;
  g = round_final_weights(a.quant, a.data, g, cfg, rounding, *calib);
  if (a.finetune > 0) {
    finetune(a, *calib, g, cfg);
  } else if (rounding.method != Rounding::nearest) {
    ExportOptions eo;
    eo.min_opset = g.opset;
    save_onnx(g, a.out + "/model.onnx", eo);
    std::cout << "wrote " << a.out << "/model.onnx (weights as " << a.quant.rounding
              << " rounded them)\n";
  }
  if (rounding.method != Rounding::nearest || a.finetune > 0)
    cfg.weights_hash = config_weights_hash(g, cfg);
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
  std::string fixed_layers;  // what --keep-float / --pin fixed
  const nlohmann::json fixes = cfg.info.value("fixed_layers", nlohmann::json::object());
  for (const auto& [name, what] : fixes.items())
    fixed_layers += (fixed_layers.empty() ? "" : ", ") + name + " " + what.get<std::string>();
  if (!fixed_layers.empty()) std::cout << "fixed    " << fixed_layers << "\n";
  ReportInputs report;
  report.title = "mixq quantize: " + a.model;
  report.model = a.model;
  report.config = &cfg;
  if (!target.empty()) report.omega = &sens, report.facts["budget"] = budgets_text(target.budgets);
  report.sweep = std::move(sweep);
  report.facts["average weight bits"] = fmt::format("{:.2f}", average_weight_bits(g, cfg, layers));
  report.facts["weights"] = fmt::format("{:.1f} KB", weight_bytes(g, cfg) / 1024);
  if (!fixed_layers.empty()) report.facts["fixed layers"] = fixed_layers;
  report.hw = fpga_json(a, target, g, cfg);
  report.facts["weight rounding"] = a.quant.rounding;
  report.commands = {command_line()};
  if (test) {
    Executor ex(q, Impl::fast, true), reference(float_model, Impl::fast, true);
    EvalOptions eo;
    eo.batch_size = a.data.batch;
    eo.limit = a.data.limit;
    eo.reference = &reference;
    EvalResult r = evaluate(ex, *test, eo);
    if (r.labelled) {
      std::cout << fmt::format("top-1    {:.2f} %   (top-5 {:.2f} %, loss {:.4f}, {} samples)\n",
                               r.top1 * 100, r.top5 * 100, r.loss, r.samples);
      report.facts["test top-1"] = fmt::format("{:.2f} % on {}", r.top1 * 100, test->description());
    }
    const std::string agree = agreement_text(r.agreement, "float model");
    std::cout << agree << " (" << r.samples << " samples)\n";
    report.facts["agreement"] = agree.substr(agree.find(':') + 2) + " on " + test->description();
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
  cmd->add_option("model", a->model,
                  "ONNX model file (default: mixq's Fashion-MNIST model on Debian's data)")
      ->type_name(kFileType);
  add_data_options(cmd, a->data, false);
  cmd->add_option("--calib-data", a->calib_spec,
                  "Calibration and sensitivity data spec (training data)")
      ->type_name(kSpecType);
  auto* budget =
      cmd->add_option(
             "--budget", a->budget,
             "CLADO allocation under 3bits, 2MB, 1.2GBOPs or 5ms@XC7Z020 (comma: several); "
             "without it, every layer at --wbits")
          ->check(parsed_by([](const std::string& s) { parse_budgets(s, "--budget"); }, "BUDGET"));
  cmd->add_option("--candidates", a->candidates,
                  "With --budget: candidates per layer (w2,w4,w8; w4-sp2, w4-msq1.5, ...)")
      ->check(parsed_by([](const std::string& s) { parse_candidates(s, "--candidates"); },
                        "CANDIDATES"))
      ->needs(budget);  // without a budget no candidates are searched: refused, not ignored
  cmd->add_option("--finetune", a->finetune,
                  "Epochs of quantization-aware fine-tuning (STE) on the calibration data")
      ->check(CLI::Range(int64_t{0}, int64_t{1000}));
  cmd->add_flag("--curves,!--no-curves", a->curves,
                "With --budget and --data: accuracy-vs-size curves of every allocator in the "
                "report (default on)");
  cmd->add_flag("--rerank,!--no-rerank", a->rerank,
                "With --budget and labelled calibration data: measure the CLADO, diagonal and "
                "greedy allocations on the sensitivity samples and keep the best (default on)");
  cmd->add_option("--samples", a->samples, "With --budget: sensitivity samples")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24))
      ->needs(budget);
  // Compensated rounding by default: a few seconds on the calibration data, and at 4 bits and
  // below it keeps most of what nearest rounding loses (README, quantization results).
  a->quant.rounding = rounding_name(Rounding::gptq);
  add_quant_options(cmd, a->quant);
  add_layer_options(cmd, a->layers);
  cmd->add_option("-o,--out", a->out, "Output folder")->type_name(kDirType);
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([a, &action] { action = [a] { return run_quantize(*a); }; });
}

}  // namespace mixq::cli
