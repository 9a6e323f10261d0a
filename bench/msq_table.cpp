// Post-training MSQ table (docs/msq.md): 4-bit weights with fixed-point, SP2 or PoT rows only,
// MSQ rows (lowest-variance share SP2 or PoT, the rest fixed) at 1:1.5 and 1:2, and RMSMP (1:1.5
// plus 5 % of rows at 8-bit fixed), x activations A8 / A4 / float; first and last layer at 8-bit
// fixed, per-row MSE weight scales, MSE activation ranges calibrated on 1024 training samples
// (the setup of bench/ptq_table.cpp). Two models: the embedded Fashion-MNIST default model and
// ResNet-20 on CIFAR-10 (skipped with a message when ../shared is absent).
// usage: msq_table [SHARED_ROOT] [LIMIT]   (defaults: ../shared, every test sample)
// Run from the repository root; threads from OMP_NUM_THREADS.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "base/error.h"
#include "eval/evaluate.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/calibrate.h"

using namespace mixq;

namespace {

struct Variant {
  std::string name;
  Scheme scheme = Scheme::fixed;  // of every row when msq is off
  MsqOptions msq;
};

std::vector<Variant> variants() {
  auto msq = [](double ratio, Scheme shift, double high) {
    MsqOptions o;
    o.ratio = ratio;
    o.shift = shift;
    o.high_share = high;
    return o;
  };
  return {{"W4 fixed-point only", Scheme::fixed, {}},
          {"W4 SP2 only", Scheme::sp2, {}},
          {"W4 PoT only", Scheme::pot, {}},
          {"MSQ 1:1.5 (fixed:SP2)", Scheme::fixed, msq(1.5, Scheme::sp2, 0)},
          {"MSQ 1:2 (fixed:SP2)", Scheme::fixed, msq(2, Scheme::sp2, 0)},
          {"MSQ 1:1.5 (fixed:PoT)", Scheme::fixed, msq(1.5, Scheme::pot, 0)},
          {"RMSMP 1:1.5 + 5 % 8-bit", Scheme::fixed, msq(1.5, Scheme::sp2, 0.05)}};
}

// "32 / 47 / 21": percent of the rows of the inner layers (all but the first and last, which
// are 8-bit fixed) at 4-bit fixed-point, 4-bit SP2/PoT and 8-bit fixed-point.
std::string row_mix(const QuantConfig& cfg) {
  int64_t total = 0, fixed = 0, shift = 0, wide = 0;
  for (size_t l = 1; l + 1 < cfg.layers.size(); ++l)
    for (const RowQuant& r : cfg.layers[l].rows) {
      ++total;
      if (r.bits > 4)
        ++wide;
      else if (r.scheme == Scheme::fixed)
        ++fixed;
      else
        ++shift;
    }
  auto pct = [&](int64_t n) { return 100.0 * static_cast<double>(n) / static_cast<double>(total); };
  return fmt::format("{:.1f} / {:.1f} / {:.1f}", pct(fixed), pct(shift), pct(wide));
}

void table(const std::string& title, const std::string& model, const std::string& train_spec,
           const std::string& test_spec, const DataOptions& o, size_t limit) {
  auto train = open_dataset(train_spec, o);
  auto test = open_dataset(test_spec, o);
  Graph g = load_onnx(model);
  const auto layers = find_quant_layers(g);
  ActivationStats stats = observe_activations(g, *train, ObserveOptions{});
  EvalOptions eo;
  eo.limit = limit;
  std::cout << fmt::format("### {}\n\n", title);
  {
    Executor fp(g, Impl::fast, true);
    std::cout << fmt::format("FP32 top-1 {:.2f} % ({} test samples)\n\n",
                             evaluate(fp, *test, eo).top1 * 100,
                             limit ? std::min(limit, test->size()) : test->size());
  }
  std::cout << "| weights | A8 | A4 | weights only | avg weight bits (all layers) | avg weight "
               "bits (inner layers) | inner rows % fixed / shift / 8-bit |\n"
               "|---|---|---|---|---|---|---|\n";
  for (const Variant& v : variants()) {
    std::string row = fmt::format("| {} |", v.name);
    QuantConfig cfg;
    for (int a : {8, 4, 0}) {
      UniformOptions u;
      u.wbits = 4;
      u.abits = a;
      u.scheme = v.scheme;
      u.msq = v.msq;
      cfg = uniform_config(g, &stats, u);
      Executor ex(apply_quant(g, cfg), Impl::fast, true);
      row += fmt::format(" {:.2f} |", evaluate(ex, *test, eo).top1 * 100);
    }
    const std::vector<QuantLayer> inner(layers.begin() + 1, layers.end() - 1);
    row += fmt::format(" {:.3f} | {:.3f} | {} |", average_weight_bits(g, cfg, layers),
                       average_weight_bits(g, cfg, inner), row_mix(cfg));
    std::cout << row << "\n" << std::flush;
  }
  std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  const std::string shared = argc > 1 ? argv[1] : "../shared";
  const size_t limit = argc > 2 ? std::stoul(argv[2]) : 0;
  try {
    table("Fashion-MNIST, models/fmnist_default.onnx", "models/fmnist_default.onnx", "fmnist:train",
          "fmnist:test", DataOptions{}, limit);
    const std::string model = shared + "/models/cifar10_resnet20.onnx";
    const std::string data = shared + "/data/cifar10";
    if (!std::filesystem::exists(model) || !std::filesystem::exists(data)) {
      std::cout << fmt::format("ResNet-20 skipped: {} or {} is absent\n", model, data);
      return 0;
    }
    DataOptions o;
    o.mean = {0.485f, 0.456f, 0.406f};
    o.std = {0.229f, 0.224f, 0.225f};
    table("ResNet-20, CIFAR-10", model, "folder:" + data + "/train", "folder:" + data + "/test", o,
          limit);
  } catch (const std::exception& e) {
    std::cerr << "msq_table: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
