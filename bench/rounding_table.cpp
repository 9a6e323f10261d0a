// Round-to-nearest against compensated (gptq) and learned (adaround) rounding on ResNet-20 /
// CIFAR-10, as mixq quantize rounds a final model (layer by layer on the quantized model's
// inputs): uniform weights of every scheme and the MSQ row mix, weight-only and with 4-bit
// activations. First and last layer at 8 bits, per-row MSE weight scales, activation ranges by
// MSE, rounding inputs from training images (calibration never sees the test set). Prints a
// Markdown table and the time each rounding takes.
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
    const Rounding methods[] = {Rounding::gptq, Rounding::adaround};
    std::cout << "| weights | activations | nearest | gptq | adaround |\n|---|---|---|---|---|\n";
    double seconds[2] = {0, 0};
    for (const Row& r : rows) {
      for (int abits : {0, 4}) {
        UniformOptions u;
        u.wbits = r.bits;
        u.abits = abits;
        u.scheme = r.scheme;
        u.msq.ratio = r.msq_ratio;
        const QuantConfig cfg = uniform_config(g, abits > 0 ? &stats : nullptr, u);
        std::string line =
            fmt::format("| {} | {} | {:.2f} |", r.name,
                        abits > 0 ? fmt::format("A{}", abits) : "float", top1(g, cfg));
        for (int m = 0; m < 2; ++m) {
          WeightRounding wr;
          wr.method = methods[m];
          const auto t0 = std::chrono::steady_clock::now();
          const Graph rounded = round_weights_sequential(g, cfg, wr, *args.train, ObserveOptions{});
          seconds[m] = std::max(seconds[m], seconds_since(t0));
          line += fmt::format(" {:.2f} |", top1(rounded, cfg));
        }
        std::cout << line << "\n" << std::flush;
      }
    }
    std::cout << fmt::format(
        "\nrounding of all layers, in order on the quantized model's inputs ({} training images): "
        "gptq {:.1f} s, adaround {:.1f} s at most\n",
        kGramSamples, seconds[0], seconds[1]);
  } catch (const std::exception& e) {
    std::cerr << "rounding_table: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
