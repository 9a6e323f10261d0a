// mixq finetune MODEL --quant Q.json --data SPEC --method ste|admm -o DIR: quantization-aware
// fine-tuning (src/qat). Writes DIR/model.onnx (quantized weights at their dequantized values)
// and DIR/quant.json (scales refit on the final weights); `mixq eval DIR/model.onnx --quant
// DIR/quant.json` gives the final top-1 printed here.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/data_args.h"
#include "cli/train_common.h"
#include "cli/validators.h"
#include "data/model_inputs.h"
#include "eval/evaluate.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "qat/qat.h"
#include "quant/apply.h"

namespace mixq::cli {
namespace {

struct FinetuneArgs {
  std::string model, quant, out, method = "ste";
  DataArgs data;
  std::string val_data;
  int64_t epochs = 3;
  double lr = 1e-3, min_lr = 0;
  std::string optimizer = "sgd";
  double momentum = 0.9;
  double wd = 1e-4;
  std::string schedule = "cosine";
  int64_t refit_every = 10, admm_every = 0;
  double rho = 0.05, rho_growth = 1.3;
  uint64_t seed = 0;
  int threads = 0;
  bool augment = true;
  std::string checkpoint;
  double checkpoint_minutes = 10;
  bool resume = false;
  int64_t max_steps = 0;
};

int run_finetune(const FinetuneArgs& a) {
  set_threads(a.threads);
  namespace fs = std::filesystem;
  check_output_dir(a.out, "-o");
  std::vector<InputFile> inputs = data_inputs(a.data.spec, "--data");
  for (const InputFile& f : data_inputs(a.val_data, "--val-data")) inputs.push_back(f);
  inputs.push_back({a.model, "input model"});
  inputs.push_back({a.quant, "--quant config"});
  for (const char* name : {"model.onnx", "quant.json"})
    check_no_overwrite(a.out + "/" + name, inputs, "-o");
  check_no_overwrite(a.checkpoint, inputs, "--checkpoint");
  for (const char* name : {"model.onnx", "quant.json"})
    check_no_overwrite(a.checkpoint, {{a.out + "/" + name, "output"}}, "--checkpoint");
  auto train = open_data(a.data);
  require_labels(*train, "fine-tuning");
  std::unique_ptr<Dataset> val;
  if (!a.val_data.empty()) {
    DataArgs v = a.data;
    v.spec = a.val_data;
    val = open_data(v);
    require_labels(*val, "validation");
  }
  const Graph model = load_onnx(a.model);
  const QuantConfig cfg = load_quant_config(a.quant);
  const Shape sample = train->sample_shape();

  QatOptions q;
  q.method = parse_qat_method(a.method, "--method");
  q.refit_every = a.refit_every;
  q.admm_every = a.admm_every;
  q.rho0 = a.rho;
  q.rho_growth = a.rho_growth;
  TrainOptions& o = q.train;
  o.epochs = a.epochs;
  o.batch_size = a.data.batch;
  o.limit = a.data.limit;
  o.val_batch = std::max<size_t>(a.data.batch, 256);
  o.seed = a.seed;
  o.optimizer.kind = parse_optimizer(a.optimizer);
  o.optimizer.momentum = a.momentum;
  o.optimizer.weight_decay = a.wd;
  o.schedule.kind = parse_schedule(a.schedule);
  o.schedule.lr = a.lr;
  o.schedule.min_lr = a.min_lr;
  if (a.augment) o.augment = default_augment(a.data, sample);
  o.checkpoint = a.checkpoint;
  o.checkpoint_minutes = a.checkpoint_minutes;
  o.resume = a.resume;
  o.max_steps = a.max_steps;
  o.stop = StopOnSignal::flag();
  set_progress(o, " (quantized)");

  QatTrainer qat(model, cfg, q, a.quant);
  std::cout << fmt::format(
                   "fine-tuning {} under {} by {} on {}, {} epochs of batch {}, {} lr {:.4g} {}, "
                   "{}, seed {}\n",
                   a.model, a.quant, a.method, train->description(), o.epochs, o.batch_size,
                   optimizer_name(o.optimizer.kind), o.schedule.lr, schedule_name(o.schedule.kind),
                   q.method == QatMethod::admm
                       ? fmt::format("rho {:.4g} x{:.4g} every {}", q.rho0, q.rho_growth,
                                     q.admm_every > 0 ? std::to_string(q.admm_every) + " steps"
                                                      : std::string("epoch"))
                       : fmt::format("scales refit every {} steps", q.refit_every),
                   o.seed)
            << std::flush;

  const auto t0 = std::chrono::steady_clock::now();
  if (auto status = fit_or_report_stop([&] { return qat.fit(*train, val.get()); }, qat.trainer(),
                                       a.checkpoint, "nothing"))
    return *status;
  const QatResult r = qat.result();
  fs::create_directories(a.out);
  const std::string model_path = a.out + "/model.onnx", cfg_path = a.out + "/quant.json";
  ExportOptions eo;
  eo.min_opset = r.model.opset;
  save_onnx(r.model, model_path, eo);
  save_quant_config(r.config, cfg_path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << fmt::format("wrote {} and {} after {:.1f} min in this run\n", model_path, cfg_path,
                           seconds / 60);
  if (val) {
    // Exactly what `mixq eval MODEL --quant Q` runs on the written files.
    Executor ex(apply_quant(load_onnx(model_path), load_quant_config(cfg_path), cfg_path),
                Impl::fast, /*optimize=*/true);
    EvalOptions e;
    e.batch_size = a.data.batch;
    const EvalResult v = evaluate(ex, *val, e);
    std::cout << fmt::format("top-1    {:.2f} %   (top-5 {:.2f} %, loss {:.4f}, {} samples)\n",
                             v.top1 * 100, v.top5 * 100, v.loss, v.samples);
  }
  return 0;
}

}  // namespace

void add_finetune(CLI::App& app, Action& action) {
  auto a = std::make_shared<FinetuneArgs>();
  a->data.batch = 128;
  auto* cmd = app.add_subcommand("finetune", "Quantization-aware fine-tuning (STE or ADMM)");
  cmd->add_option("model", a->model, "ONNX model file")->required()->type_name(kFileType);
  cmd->add_option("--quant", a->quant, "Quantization config (JSON) to train under")
      ->required()
      ->type_name(kFileType);
  cmd->add_option("-o,--out", a->out, "Output folder: model.onnx and quant.json")
      ->required()
      ->type_name(kDirType);
  add_data_options(cmd, a->data);
  cmd->add_option("--val-data", a->val_data,
                  "Validation data spec: top-1 of the quantized network after each epoch")
      ->type_name(kSpecType);
  cmd->add_option("--method", a->method, "ste or admm")
      ->check(CLI::IsMember({"ste", "admm"}))
      ->capture_default_str();
  cmd->add_option("--epochs", a->epochs, "Epochs")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  cmd->add_option("--optimizer", a->optimizer, "sgd, adam or adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))
      ->capture_default_str();
  cmd->add_option("--lr", a->lr, "Peak learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--min-lr", a->min_lr, "Cosine: final learning rate")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--momentum", a->momentum, "SGD momentum")
      ->check(CLI::Range(0.0, 0.999999))
      ->capture_default_str();
  cmd->add_option("--wd", a->wd, "Weight decay of weights")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--schedule", a->schedule, "Learning rate: constant, step or cosine")
      ->check(CLI::IsMember({"constant", "step", "cosine"}))
      ->capture_default_str();
  cmd->add_option("--refit-every", a->refit_every, "ste: steps between MSE refits of row scales")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--admm-every", a->admm_every,
                  "admm: steps between Z/U updates (0: once per epoch)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--rho", a->rho, "admm: initial penalty rho")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--rho-growth", a->rho_growth, "admm: rho *= this at every Z/U update")
      ->check(CLI::Range(1.0, 100.0))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of shuffling and augmentation")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("--augment,!--no-augment", a->augment,
                "Random crop with padding, flip for 3-channel data (default on)");
  auto* ckpt = cmd->add_option("--checkpoint", a->checkpoint,
                               "Checkpoint file, written after every epoch and every "
                               "--checkpoint-minutes")
                   ->type_name(kFileType);
  cmd->add_option("--checkpoint-minutes", a->checkpoint_minutes,
                  "Also checkpoint mid-epoch this often (0: epoch ends only)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_flag("--resume", a->resume, "Continue from --checkpoint")->needs(ckpt);
  cmd->add_option("--max-steps", a->max_steps,
                  "Stop after this many steps in this run, with a checkpoint (0: no limit)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->callback([a, &action] { action = [a] { return run_finetune(*a); }; });
}

}  // namespace mixq::cli
