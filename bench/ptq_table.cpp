// The uniform post-training quantization table of ResNet-20 on CIFAR-10: weights W8/W6/W4/W3/W2
// x activations A8/A6/A4 for fixed-point, power-of-two and SP2 weights (first and last layer at
// 8 bits, per-row MSE weight scales, MSE activation ranges calibrated on 1024 training images).
// usage: ptq_table [MODEL] [DATA_ROOT] [LIMIT]   (defaults: ../shared paths, all 10000 images)
#include <fmt/format.h>

#include <iostream>

#include "base/error.h"
#include "cifar_args.h"
#include "eval/evaluate.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/calibrate.h"

using namespace mixq;

int main(int argc, char** argv) {
  try {
    const bench::CifarArgs args = bench::cifar_args(argc, argv);
    Graph g = load_onnx(args.model);
    ActivationStats stats = observe_activations(g, *args.train, ObserveOptions{});
    EvalOptions eo;
    eo.limit = args.limit;
    {
      Executor fp(g, Impl::fast, true);
      std::cout << fmt::format("FP32 top-1 {:.2f} %\n\n", evaluate(fp, *args.test, eo).top1 * 100);
    }
    std::cout << "| scheme | weights | A8 | A6 | A4 | weights only |\n|---|---|---|---|---|---|\n";
    for (Scheme s : {Scheme::fixed, Scheme::pot, Scheme::sp2})
      for (int w : {8, 6, 4, 3, 2}) {
        std::string row = fmt::format("| {} | W{} |", scheme_name(s), w);
        for (int a : {8, 6, 4, 0}) {
          UniformOptions u;
          u.wbits = w;
          u.abits = a;
          u.scheme = s;
          Executor ex(apply_quant(g, uniform_config(g, &stats, u)), Impl::fast, true);
          row += fmt::format(" {:.2f} |", evaluate(ex, *args.test, eo).top1 * 100);
        }
        std::cout << row << "\n" << std::flush;
      }
  } catch (const std::exception& e) {
    std::cerr << "ptq_table: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
