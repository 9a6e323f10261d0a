// Training throughput against inference throughput of the same network in the same run:
// images/s of full training steps (training-mode forward, softmax cross-entropy, backward, SGD
// step) and of the forward pass of the inference form (BatchNormalization folded) with the
// unoptimised executor training uses and with the optimised one, on random data, then the
// ratios. A training step costs about three forwards in FLOPs, so a ratio near 1/3 means the
// backward kernels keep up with the forward ones.
//
// usage: bench_train [--arch NAME] [--init MODEL.onnx] [--batch N] [--threads T] [--seconds S]
// Defaults: the built-in resnet20 (3x32x32, 10 classes), batch 128, 2 threads, 10 s per phase.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/error.h"
#include "base/rng.h"
#include "models/models.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "train/trainer.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string arch = "resnet20", init;
  int64_t batch = 128;
  int threads = 2;
  double seconds = 10;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_train: %s\nusage: bench_train [--arch NAME] [--init MODEL.onnx] [--batch N] "
               "[--threads T] [--seconds S]\n",
               why.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage("missing value for " + a);
    const std::string v = argv[++i];
    try {
      if (a == "--arch")
        o.arch = v;
      else if (a == "--init")
        o.init = v;
      else if (a == "--batch")
        o.batch = std::stoll(v);
      else if (a == "--threads")
        o.threads = std::stoi(v);
      else if (a == "--seconds")
        o.seconds = std::stod(v);
      else
        usage("unknown flag " + a);
    } catch (const std::logic_error&) {
      usage("bad value '" + v + "' for " + a);
    }
  }
  if (o.batch < 1 || o.threads < 1 || o.seconds <= 0) usage("values must be positive");
  return o;
}

// Runs fn at least twice (the first is warm-up) and until `seconds` passed; returns seconds per
// call over the timed calls.
template <class Fn>
double time_per_call(double seconds, Fn&& fn) {
  fn();
  int calls = 0;
  const auto t0 = Clock::now();
  double elapsed = 0;
  do {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds || calls < 2);
  return elapsed / calls;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mixq;
  const Options o = parse(argc, argv);
  omp_set_num_threads(o.threads);
  try {
    Graph g;
    std::string name = o.arch;
    if (!o.init.empty()) {
      g = load_onnx(o.init);
      make_training_form(g);
      name = o.init;
    } else {
      ModelSpec spec;
      spec.channels = 3;
      spec.height = spec.width = 32;
      g = build_model(o.arch, spec);
    }
    Shape in = g.values[g.inputs[0]].shape;
    in[0] = o.batch;
    Batch batch;
    batch.inputs = {Tensor(DType::f32, in)};
    Rng rng(1);
    for (int64_t i = 0; i < batch.inputs[0].numel(); ++i)
      batch.inputs[0].data<float>()[i] = static_cast<float>(rng.normal());
    for (int64_t i = 0; i < o.batch; ++i)
      batch.labels.push_back(static_cast<int64_t>(rng.below(10)));

    TrainOptions to;
    to.optimizer.momentum = 0.9;
    to.optimizer.weight_decay = 5e-4;
    Trainer trainer(g, to);
    const double train_s = time_per_call(o.seconds, [&] { trainer.train_step(batch, 0.01); });

    // The executor training uses (unoptimised), and the optimised one inference uses.
    Executor fwd(trainer.inference_graph(true), Impl::fast, /*optimize=*/false);
    const double fwd_s = time_per_call(o.seconds, [&] { fwd.run({batch.inputs[0]}); });
    Executor opt(trainer.inference_graph(true), Impl::fast, /*optimize=*/true);
    const double opt_s = time_per_call(o.seconds, [&] { opt.run({batch.inputs[0]}); });

    const double train_ips = o.batch / train_s, fwd_ips = o.batch / fwd_s,
                 opt_ips = o.batch / opt_s;
    std::printf("model %s, batch %lld, %d threads, %lld parameters\n", name.c_str(),
                static_cast<long long>(o.batch), o.threads,
                static_cast<long long>(count_parameters(trainer.graph())));
    std::printf("training step  %8.1f images/s  (%.1f ms per batch)\n", train_ips, 1e3 * train_s);
    std::printf("forward only   %8.1f images/s  (%.1f ms per batch, unoptimised executor)\n",
                fwd_ips, 1e3 * fwd_s);
    std::printf("forward only   %8.1f images/s  (%.1f ms per batch, optimised executor)\n", opt_ips,
                1e3 * opt_s);
    std::printf("ratio          %8.3f  (training / unoptimised forward)\n", train_ips / fwd_ips);
    std::printf("ratio          %8.3f  (training / optimised forward)\n", train_ips / opt_ips);
    std::printf(
        "{\"model\":\"%s\",\"batch\":%lld,\"threads\":%d,\"train_images_per_s\":%.2f,"
        "\"forward_images_per_s\":%.2f,\"optimized_forward_images_per_s\":%.2f,\"ratio\":%.4f}\n",
        name.c_str(), static_cast<long long>(o.batch), o.threads, train_ips, fwd_ips, opt_ips,
        train_ips / fwd_ips);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
  return 0;
}
