// FP32 inference throughput of mixq on one model, the way bench/peer/ort_bench.js times ONNX
// Runtime (same input data, warm-up, then as many runs as fit in SECONDS), one JSON line per
// configuration. bench/fp32_vs_ort.sh interleaves it with the peer and prints the comparison.
//
// usage: bench_fp32 [--model PATH] [--batch N]... [--threads T] [--seconds S]
//                   [--executor optimized|plain|both] [--quant Q.json [--engine float|int8]]
// Defaults: ../shared/models/cifar10_resnet20.onnx, batches 1 and 256, 2 threads, 3 s, both.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/error.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "runtime/executor.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string model = std::string(MIXQ_SOURCE_DIR) + "/../shared/models/cifar10_resnet20.onnx";
  std::vector<int64_t> batches;
  int threads = 2;
  double seconds = 3;
  std::string executor = "both";
  std::string quant;             // a quantization config: time the quantized network
  std::string engine = "float";  // with --quant: float (fake-quantized) or int8 (QConv)
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_fp32: %s\nusage: bench_fp32 [--model PATH] [--batch N]... [--threads T] "
               "[--seconds S] [--executor optimized|plain|both]\n",
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
      if (a == "--model")
        o.model = v;
      else if (a == "--batch")
        o.batches.push_back(std::stoll(v));
      else if (a == "--threads")
        o.threads = std::stoi(v);
      else if (a == "--seconds")
        o.seconds = std::stod(v);
      else if (a == "--executor")
        o.executor = v;
      else if (a == "--quant")
        o.quant = v;
      else if (a == "--engine")
        o.engine = v;
      else
        usage("unknown flag " + a);
    } catch (const std::logic_error&) {
      usage("bad value '" + v + "' for " + a);
    }
  }
  if (o.batches.empty()) o.batches = {1, 256};
  for (int64_t b : o.batches)
    if (b < 1) usage("batch must be positive");
  if (o.threads < 1 || o.seconds <= 0) usage("threads and seconds must be positive");
  if (o.executor != "optimized" && o.executor != "plain" && o.executor != "both")
    usage("--executor is optimized, plain or both");
  if (o.engine != "float" && o.engine != "int8") usage("--engine is float or int8");
  return o;
}

// The peer script's input: a fixed LCG in [-0.5, 0.5).
mixq::Tensor lcg_input(mixq::Shape shape) {
  mixq::Tensor t(mixq::DType::f32, std::move(shape));
  float* p = t.data<float>();
  uint64_t s = 12345;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = (s * 1103515245 + 12345) % 2147483648ull;
    p[i] = static_cast<float>(static_cast<double>(s) / 2147483648.0 - 0.5);
  }
  return t;
}

void bench(const mixq::Graph& g, bool optimize, int64_t batch, const Options& o) {
  const auto t_build = Clock::now();
  mixq::Executor ex(g, mixq::Impl::fast, optimize);
  const double build_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_build).count();
  mixq::Shape shape = g.values[g.inputs.at(0)].shape;
  if (shape.empty()) usage("the model's input has no declared shape");
  shape[0] = batch;
  for (int64_t d : shape)
    if (d < 0) usage("the model's input has dynamic dimensions besides the batch");
  const mixq::Tensor x = lcg_input(shape);
  for (int i = 0; i < 3; ++i) ex.run({x});
  int runs = 0;
  double elapsed = 0, best = 1e300;
  const auto t0 = Clock::now();
  while (elapsed < o.seconds || runs < 3) {
    const auto t1 = Clock::now();
    ex.run({x});
    const auto t2 = Clock::now();
    best = std::min(best, std::chrono::duration<double>(t2 - t1).count());
    ++runs;
    elapsed = std::chrono::duration<double>(t2 - t0).count();
  }
  std::printf(
      "{\"engine\": \"mixq\", \"mode\": \"%s\", \"executor\": \"%s\", \"batch\": %lld, "
      "\"threads\": %d, "
      "\"runs\": %d, \"seconds\": %.3f, \"ms_per_batch\": %.3f, \"best_ms\": %.3f, "
      "\"images_per_s\": %.1f, \"build_ms\": %.1f, \"nodes\": %zu}\n",
      o.quant.empty() ? "fp32" : o.engine.c_str(), optimize ? "optimized" : "plain",
      static_cast<long long>(batch), o.threads, runs, elapsed, elapsed / runs * 1e3, best * 1e3,
      runs * batch / elapsed, build_ms, ex.graph().nodes.size());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  omp_set_num_threads(o.threads);
  try {
    mixq::Graph g = mixq::load_onnx(o.model);
    if (!o.quant.empty())
      g = mixq::apply_quant(
          g, mixq::load_quant_config(o.quant), o.quant,
          o.engine == "int8" ? mixq::WeightForm::int8 : mixq::WeightForm::dequantized);
    mixq::check(g.inputs.size() == 1, o.model, "the benchmark feeds models with one input");
    for (int64_t batch : o.batches) {
      if (o.executor != "plain") bench(g, true, batch, o);
      if (o.executor != "optimized") bench(g, false, batch, o);
    }
  } catch (const mixq::Error& e) {
    std::fprintf(stderr, "bench_fp32: %s\n", e.what());
    return 1;
  }
  return 0;
}
