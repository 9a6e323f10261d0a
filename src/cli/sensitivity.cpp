// mixq sensitivity MODEL --data SPEC --candidates w2,w4,w8 -o sensitivity.omega: CLADO's single and
// pair loss measurements and Omega, checkpointed after every unit of work (--resume continues).
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "base/error.h"
#include "base/file_io.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "onnx/import.h"
#include "search/sensitivity.h"

namespace mixq::cli {
namespace {

struct SensitivityArgs {
  std::string model, out, json, candidates = "w2,w4,w8", loss = "ce", pairs = "all";
  DataArgs data;
  size_t samples = 1024, calib_samples = 1024, chunk = 0;
  double mem_limit_gb = 4;
  int abits = 8, threads = 0;
  uint64_t seed = 0;
  bool resume = false, include_edges = false;
};

int run_sensitivity(const SensitivityArgs& a) {
  set_threads(a.threads);
  auto candidates = parse_candidates(a.candidates, "--candidates");
  SensitivityOptions o;
  o.samples = a.samples;
  o.chunk = a.chunk;
  o.mem_limit = a.mem_limit_gb * 1e9;
  o.seed = a.seed;
  o.loss = a.loss == "kl" ? SensitivityLoss::kl : SensitivityLoss::cross_entropy;
  if (a.pairs == "none") {
    o.pairs = false;
  } else if (a.pairs.rfind("window:", 0) == 0) {
    try {
      o.pair_window = std::stoi(a.pairs.substr(7));
    } catch (const std::logic_error&) {
      o.pair_window = 0;
    }
    check(o.pair_window > 0, "--pairs", "window:K needs K >= 1");
  } else {
    check(a.pairs == "all", "--pairs", "expected all, none or window:K");
  }
  o.checkpoint = a.out;
  o.resume = a.resume;
  check(a.resume || !std::filesystem::exists(a.out), a.out,
        "exists; pass --resume to continue it or remove it");
  o.progress = [](const std::string& line) { std::cerr << line << "\n"; };
  auto data = open_data(a.data);
  Graph g = load_onnx(a.model);
  SearchSpace space = make_search_space(g, candidates, a.include_edges, a.abits);
  ObserveOptions oo;
  oo.samples = a.calib_samples;
  oo.batch = a.data.batch;
  oo.seed = a.seed + 1;  // its own subset, independent of the sensitivity set
  ActivationStats stats = observe_activations(g, *data, oo);
  SensitivityData d = measure_sensitivity(g, space, stats, *data, o);
  if (!a.json.empty()) write_file_atomic(a.json, sensitivity_to_json(d).dump(1) + "\n");
  std::cout << fmt::format("wrote {}: {} layers x {} candidates, {} samples in {} chunks\n", a.out,
                           d.layers, d.candidates, d.samples, d.chunks);
  std::cout << fmt::format("L0 {:.5f}, {} evaluations x {} samples\n", d.L0(), d.evaluations,
                           d.samples);
  std::cout << fmt::format(
      "executed MACs {:.3g} vs naive {:.3g} ({:.3f}x), {:.1f} evaluations/s, {:.1f} s measuring\n",
      d.executed_macs, d.naive_macs, d.executed_macs / std::max(d.naive_macs, 1.0),
      d.evaluations / std::max(d.seconds, 1e-9), d.seconds);
  return 0;
}

}  // namespace

void add_sensitivity(CLI::App& app, Action& action) {
  auto a = std::make_shared<SensitivityArgs>();
  auto* cmd = app.add_subcommand("sensitivity", "Measure CLADO single and pair sensitivities");
  cmd->add_option("model", a->model, "ONNX model file")->required();
  add_data_options(cmd, a->data);
  cmd->add_option("--candidates", a->candidates, "Candidates per layer, e.g. w2,w4,w8 or w4-sp2");
  cmd->add_option("--samples", a->samples, "Sensitivity samples (seeded subset of --data)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--calib-samples", a->calib_samples, "Activation calibration samples")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--abits", a->abits, "Activation bits of the base model")
      ->check(CLI::Range(2, 16));
  cmd->add_option("--loss", a->loss, "ce (labels) or kl (to the float outputs, label-free)")
      ->check(CLI::IsMember({"ce", "kl"}));
  cmd->add_option("--pairs", a->pairs, "all, none, or window:K (pairs at most K layers apart)");
  cmd->add_option("--chunk", a->chunk, "Samples per chunk (default: from --mem-limit)");
  cmd->add_option("--mem-limit", a->mem_limit_gb, "GB of cached activations to stay under")
      ->check(CLI::Range(0.01, 4096.0));
  cmd->add_flag("--include-edges", a->include_edges, "Search the first and last layer too");
  cmd->add_option("--seed", a->seed, "Seed of the sample subsets");
  cmd->add_option("-o,--output", a->out, "Sensitivity file (also the checkpoint)")->required();
  cmd->add_flag("--resume", a->resume, "Continue an interrupted run from -o");
  cmd->add_option("--json", a->json, "Also write a JSON dump (Omega, single deltas) here");
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([a, &action] { action = [a] { return run_sensitivity(*a); }; });
}

}  // namespace mixq::cli
