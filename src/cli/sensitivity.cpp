// mixq sensitivity MODEL --data SPEC --candidates w2,w4,w8 -o sensitivity.omega: CLADO's single and
// pair loss measurements and Omega, checkpointed after every unit of work (--resume continues).
#include <fmt/format.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "base/error.h"
#include "base/file_io.h"
#include "base/parse.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "cli/validators.h"
#include "dist/world.h"
#include "onnx/import.h"
#include "quant/rounding.h"
#include "search/sensitivity.h"

namespace mixq::cli {
namespace {

struct SensitivityArgs {
  std::string model, out, json, candidates = "w2,w4,w8", loss, pairs = "all";
  DataArgs data;
  size_t samples = 1024, calib_samples = 1024, chunk = 0;
  int abits = 8, threads = 0;
  uint64_t seed = 0;
  bool resume = false, include_edges = false;
  std::string rounding = "nearest";
};

// --pairs all | none | window:K into o.
SensitivityOptions parse_pairs(const std::string& text, SensitivityOptions o) {
  if (text == "none") {
    o.pairs = false;
  } else if (text.rfind("window:", 0) == 0) {
    const std::optional<double> k = parse_number(text.substr(7));
    check(k && *k >= 1 && *k <= 1e6 && *k == std::floor(*k), "--pairs", "window:K needs K >= 1");
    o.pair_window = static_cast<int>(*k);
  } else {
    check(text == "all", "--pairs", "expected all, none or window:K");
  }
  return o;
}

// Under mpirun each rank measures its shard into its own checkpoint next to the output.
std::string shard_path(const std::string& out, const dist::World& w) {
  return fmt::format("{}.rank{}-of-{}", out, w.rank(), w.size());
}

int run_sensitivity(const SensitivityArgs& a) {
  const dist::World& world = dist::World::get();
  // Ranks on one host share its cores rather than each taking all of them.
  const int local = std::max(world.local_size(), 1);
  set_threads(a.threads > 0 || local == 1 ? a.threads : std::max(1, omp_get_num_procs() / local));
  auto candidates = parse_candidates(a.candidates, "--candidates");
  check_output_file(a.out, "-o");
  if (!a.json.empty()) check_output_file(a.json, "--json");
  std::vector<InputFile> inputs = data_inputs(a.data.spec, "--data");
  inputs.push_back({a.model, "input model"});
  check_no_overwrite(a.out, inputs, "-o");
  check_no_overwrite(a.json, inputs, "--json");
  check_no_overwrite(a.json, {{a.out, "sensitivity file (-o)"}}, "--json");
  SensitivityOptions o;
  o.samples = a.samples;
  o.chunk = a.chunk;
  o.seed = a.seed;
  if (!a.loss.empty()) o.loss = parse_loss(a.loss, "--loss");
  o = parse_pairs(a.pairs, o);
  o.checkpoint = world.distributed() ? shard_path(a.out, world) : a.out;
  o.resume = a.resume;
  o.rank = world.rank();
  o.ranks = world.size();
  check(a.resume || !std::filesystem::exists(a.out), a.out,
        "exists; pass --resume to continue it or remove it");
  check(a.resume || !std::filesystem::exists(o.checkpoint), o.checkpoint,
        "exists; pass --resume to continue it or remove it");
  // A finished distributed run left only the merged file: its units count as done. Its
  // counters stay with rank 0 so the next merge does not count them once per rank.
  if (a.resume && world.distributed() && !std::filesystem::exists(o.checkpoint) &&
      std::filesystem::exists(a.out)) {
    SensitivityData merged = load_sensitivity(a.out);
    if (world.rank() != 0)
      merged.executed_macs = merged.naive_macs = merged.evaluations = merged.seconds = 0;
    save_sensitivity(merged, o.checkpoint);
  }
  const std::string who =
      world.distributed() ? fmt::format("rank {}/{}: ", world.rank(), world.size()) : "";
  // One write per line: ranks share stderr, and pieces written separately interleave.
  o.progress = [who](const std::string& line) { std::cerr << (who + line + "\n") << std::flush; };
  auto data = open_data(a.data);
  Graph g = load_onnx(a.model);
  SearchSpace space = make_search_space(g, candidates, a.include_edges, a.abits);
  ObserveOptions oo;
  oo.samples = a.calib_samples;
  oo.batch = a.data.batch;
  oo.seed = a.seed + 1;  // its own subset, independent of the sensitivity set
  ActivationStats stats = observe_activations(g, *data, oo);
  o.rounding = make_rounding(parse_rounding(a.rounding, "--rounding"), g, *data, oo);
  SensitivityData d = measure_sensitivity(g, space, stats, *data, o);
  if (world.distributed()) {
    // Rank 0 merges the shards and writes the output; then each rank drops its checkpoint.
    std::vector<std::string> shards = world.gather(sensitivity_bytes(d));
    if (world.rank() == 0) {
      std::vector<SensitivityData> parts;
      for (size_t r = 0; r < shards.size(); ++r)
        parts.push_back(parse_sensitivity(shards[r], "rank " + std::to_string(r)));
      d = merge_shards(parts);
      check(d.complete(), a.out, "the shards do not cover every unit of work");
      save_sensitivity(d, a.out);
    }
    world.barrier();
    std::filesystem::remove(o.checkpoint);
    if (world.rank() != 0) return 0;
  }
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
  cmd->add_option("model", a->model, "ONNX model file")->required()->type_name(kFileType);
  add_data_options(cmd, a->data, true, false);
  cmd->add_option("--candidates", a->candidates, "Candidates per layer, e.g. w2,w4,w8 or w4-sp2")
      ->check(parsed_by([](const std::string& s) { parse_candidates(s, "--candidates"); },
                        "CANDIDATES"));
  cmd->add_option("--samples", a->samples, "Sensitivity samples (seeded subset of --data)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--calib-samples", a->calib_samples, "Activation calibration samples")
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--rounding", a->rounding,
                  "Weight rounding of every candidate: nearest, gptq or adaround (compensated on "
                  "the first calibration samples, as mixq quantize rounds by default)")
      ->check(CLI::IsMember(rounding_choices()))
      ->capture_default_str();
  cmd->add_option("--abits", a->abits, "Activation bits of the base model")
      ->check(CLI::Range(2, 16));
  cmd->add_option("--loss", a->loss,
                  "ce (labels), kl or mse (to the float model's outputs, no labels needed); "
                  "default: ce with labels, else kl for class scores and mse otherwise")
      ->check(CLI::IsMember({"ce", "kl", "mse"}));
  cmd->add_option("--pairs", a->pairs, "all, none, or window:K (pairs at most K layers apart)")
      ->check(
          parsed_by([](const std::string& s) { parse_pairs(s, SensitivityOptions{}); }, "PAIRS"));
  cmd->add_option(
      "--chunk", a->chunk,
      "Samples per chunk (default: cached activations within 4 GB or half of --mem-limit)");
  cmd->add_flag("--include-edges", a->include_edges, "Search the first and last layer too");
  cmd->add_option("--seed", a->seed, "Seed of the sample subsets");
  cmd->add_option("-o,--output", a->out,
                  "Sensitivity file (also the checkpoint; under mpirun each rank checkpoints to "
                  "OUTPUT.rankR-of-N)")
      ->required()
      ->type_name(kFileType);
  cmd->add_flag("--resume", a->resume, "Continue an interrupted run from -o");
  cmd->add_option("--json", a->json, "Also write a JSON dump (Omega, single deltas) here")
      ->type_name(kFileType);
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([a, &action] { action = [a] { return run_sensitivity(*a); }; });
}

}  // namespace mixq::cli
