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
  TrainFlags train;
  int64_t refit_every = 10, admm_every = 0;
  double rho = 0.05, rho_growth = 1.3;
  int threads = 0;
};

int run_finetune(const FinetuneArgs& a) {
  set_threads(a.threads);
  namespace fs = std::filesystem;
  const TrainFlags& f = a.train;
  check_output_dir(a.out, "-o");
  std::vector<InputFile> inputs = data_inputs(a.data.spec, "--data");
  for (const InputFile& f : data_inputs(a.val_data, "--val-data")) inputs.push_back(f);
  inputs.push_back({a.model, "input model"});
  inputs.push_back({a.quant, "--quant config"});
  for (const char* name : {"model.onnx", "quant.json"})
    check_no_overwrite(a.out + "/" + name, inputs, "-o");
  check_no_overwrite(f.checkpoint, inputs, "--checkpoint");
  for (const char* name : {"model.onnx", "quant.json"})
    check_no_overwrite(f.checkpoint, {{a.out + "/" + name, "output"}}, "--checkpoint");
  TrainData data = open_train_data(a.data, a.val_data, "fine-tuning");
  auto& train = data.train;
  auto& val = data.val;
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
  apply_train_flags(f, o);
  o.batch_size = a.data.batch;
  o.limit = a.data.limit;
  o.val_batch = std::max<size_t>(a.data.batch, 256);
  if (f.augment) o.augment = default_augment(a.data, sample);
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
                                       f.checkpoint, "nothing"))
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
  a->train.epochs = 3;
  a->train.lr = 1e-3;
  a->train.wd = 1e-4;
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
  add_train_options(
      cmd, a->train,
      {"Peak learning rate", "Weight decay of weights", "Seed of shuffling and augmentation",
       "Random crop with padding, flip for 3-channel data (default on)"});
  cmd->get_option("--resume")->needs(cmd->get_option("--checkpoint"));
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
  cmd->add_option("--threads", a->threads, "Threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([a, &action] { action = [a] { return run_finetune(*a); }; });
}

}  // namespace mixq::cli
