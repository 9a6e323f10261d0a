// Quantizes a model to a weight budget with mixq's library API and exports it as QDQ ONNX.
//
//   quantize_example [MODEL.onnx] [BUDGET] [OUT.onnx]
//
// Defaults: the model installed with mixq (a Fashion-MNIST CNN), "4bits", quantized.onnx.
// Calibrates and measures on Fashion-MNIST's training set, reports on its test set.
#include <cstdio>
#include <string>

#include "mixq/mixq.h"

int main(int argc, char** argv) {
  namespace api = mixq::api;
  try {
    const std::string model_path = argc > 1 && *argv[1] ? argv[1] : api::default_model_path();
    const std::string budget = argc > 2 ? argv[2] : "4bits";
    const std::string out = argc > 3 ? argv[3] : "quantized.onnx";

    const api::Model model = api::Model::load(model_path);
    const api::Data train = api::Data::open("fmnist:train");
    const api::Data test = api::Data::open("fmnist:test");

    api::CalibrateOptions co;
    co.samples = 256;
    const api::Calibration cal = api::calibrate(model, train, co);

    api::SensitivityOptions so;
    so.candidates = {"w2", "w4", "w8"};
    so.samples = 128;
    const api::Sensitivities s = api::measure_sensitivities(model, cal, train, so);

    const api::Allocation a = api::allocate(s, budget);
    for (const api::LayerChoice& l : a.layers())
      std::printf("%-24s %-6s %.2f bits\n", l.layer.c_str(), l.candidate.c_str(), l.bits);
    for (const api::BudgetUse& u : a.budgets())
      std::printf("budget %s: uses %.4g of %.4g\n", u.budget.c_str(), u.used, u.limit);

    const api::QuantizedModel q = api::apply(model, cal, a);
    q.export_qdq(out);
    const api::Accuracy fp = api::evaluate(model, test, 1000);
    const api::Accuracy qa = api::evaluate(q, test, 1000);
    std::printf("top-1 on %zu test images: float %.2f%%, quantized %.2f%% (%.3f bits/weight)\n",
                qa.samples, 100 * fp.top1, 100 * qa.top1, q.average_weight_bits());
    std::printf("wrote %s\n", out.c_str());
    return 0;
  } catch (const mixq::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
