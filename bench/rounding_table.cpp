// Round-to-nearest against compensated rounding (GPTQ) on ResNet-20 / CIFAR-10: uniform
// weights of every scheme and the MSQ row mix, weight-only and with 4-bit activations. First and
// last layer at 8 bits, per-row MSE weight scales, activation ranges by MSE and input grams on
// training images (calibration never sees the test set). Prints a Markdown table and the time
// compensated rounding takes.
// usage: rounding_table [MODEL] [DATA_ROOT] [LIMIT]   (defaults: ../shared paths, all 10000)
#include <fmt/format.h>

#include <chrono>
#include <iostream>

#include "cifar_args.h"
#include "eval/evaluate.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "quant/rounding.h"

using namespace mixq;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const bench::CifarArgs args = bench::cifar_args(argc, argv);
    const Graph g = load_onnx(args.model);
    const ActivationStats stats = observe_activations(g, *args.train, ObserveOptions{});
    auto t0 = std::chrono::steady_clock::now();
    const WeightRounding gptq = make_rounding(Rounding::gptq, g, *args.train, ObserveOptions{});
    const double gram_s = seconds_since(t0);
    EvalOptions eo;
    eo.limit = args.limit;
    auto top1 = [&](const Graph& m, const QuantConfig& cfg) {
      Executor ex(apply_quant(m, cfg), Impl::fast, true);
      return evaluate(ex, *args.test, eo).top1 * 100;
    };
    {
      Executor fp(g, Impl::fast, true);
      std::cout << fmt::format("FP32 top-1 {:.2f} %\n\n", evaluate(fp, *args.test, eo).top1 * 100);
    }
    struct Row {
      const char* name;
      int bits;
      Scheme scheme;
      double msq_ratio;
    };
    const Row rows[] = {{"W4 fixed", 4, Scheme::fixed, 0}, {"W3 fixed", 3, Scheme::fixed, 0},
                        {"W2 fixed", 2, Scheme::fixed, 0}, {"W4 SP2", 4, Scheme::sp2, 0},
                        {"W4 PoT", 4, Scheme::pot, 0},     {"W4 MSQ 1:1.5", 4, Scheme::fixed, 1.5}};
    std::cout << "| weights | nearest | gptq | nearest A4 | gptq A4 |\n|---|---|---|---|---|\n";
    double round_s = 0;
    for (const Row& r : rows) {
      std::string line = fmt::format("| {} |", r.name);
      for (int abits : {0, 4}) {
        UniformOptions u;
        u.wbits = r.bits;
        u.abits = abits;
        u.scheme = r.scheme;
        u.msq.ratio = r.msq_ratio;
        const QuantConfig cfg = uniform_config(g, abits > 0 ? &stats : nullptr, u);
        t0 = std::chrono::steady_clock::now();
        const Graph rounded = round_weights(g, cfg, gptq);
        round_s = std::max(round_s, seconds_since(t0));
        line += fmt::format(" {:.2f} | {:.2f} |", top1(g, cfg), top1(rounded, cfg));
      }
      std::cout << line << "\n" << std::flush;
    }
    std::cout << fmt::format(
        "\ninput grams on {} training images: {:.1f} s; compensated rounding of all layers: "
        "{:.2f} s at most\n",
        gptq.samples, gram_s, round_s);
  } catch (const std::exception& e) {
    std::cerr << "rounding_table: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
