// Non-finite values are never scored: refused at load when they are weights, and located at the
// node where they first appear when a run meets them (evaluation, calibration, training).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "eval/evaluate.h"
#include "onnx/import.h"
#include "quant/calibrate.h"
#include "quant/config.h"
#include "runtime/finite.h"
#include "support/cli_check.h"
#include "support/expect_error.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/synthetic_data.h"

namespace mixq::test {
namespace {

namespace fs = std::filesystem;

Tensor filled(const Shape& s, float v) {
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = 0.01f * float(i % 7) + v;
  return t;
}

// [N, 1, 28, 28] -> Conv (4 channels) -> [Sqrt of (x - shift)] -> GlobalAveragePool -> Flatten
// -> Gemm (10 classes). With shift > 0 the Sqrt meets negative inputs: NaN from finite weights.
OnnxBuilder net(float shift, float conv_w = 0.1f, float fc_b = 0.f) {
  OnnxBuilder b(13);
  b.input("x", {-1, 1, 28, 28}).output("logits", {-1, 10});
  Tensor w = filled({4, 1, 3, 3}, conv_w);
  b.initializer("conv.w", w).initializer("shift", Tensor::from<float>({1}, {shift}));
  b.initializer("fc.w", filled({10, 4}, 0.1f)).initializer("fc.b", filled({10}, fc_b));
  auto& c = b.node("Conv", {"x", "conv.w"}, {"c"}, "conv");
  OnnxBuilder::attr(c, "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.node("Sub", {"c", "shift"}, {"s"}, "sub");
  b.node("Sqrt", {"s"}, {"r"}, "sqrt");
  b.node("GlobalAveragePool", {"r"}, {"p"}, "gap");
  b.node("Flatten", {"p"}, {"f"}, "flatten");
  auto& fc = b.node("Gemm", {"f", "fc.w", "fc.b"}, {"logits"}, "fc");
  OnnxBuilder::attr(fc, "transB", int64_t{1});
  return b;
}

TEST(NonFinite, KindsOfTensors) {
  EXPECT_EQ(non_finite_kind(Tensor::from<float>({3}, {1, NAN, 2})), "NaN");
  EXPECT_EQ(non_finite_kind(Tensor::from<float>({2}, {1, -INFINITY})), "-Inf");
  EXPECT_EQ(non_finite_kind(Tensor::from<double>({1}, {INFINITY})), "+Inf");
  EXPECT_EQ(non_finite_kind(Tensor::from<int64_t>({1}, {7})), "");
  EXPECT_TRUE(all_finite(Tensor::from<float>({2}, {1, 2})));
}

TEST(NonFinite, NanOrInfinityAmongWeightsIsRefusedAtLoad) {
  expect_error([] { load_onnx_bytes(net(0.f, 0.1f, NAN).bytes(), "m.onnx"); },
               {"m.onnx: initializer 'fc.b'", "holds NaN", "Gemm node 'fc'"});
  expect_error([] { load_onnx_bytes(net(0.f, INFINITY).bytes(), "m.onnx"); },
               {"initializer 'conv.w'", "holds +Inf", "Conv node 'conv'"});
  // A NaN is refused wherever it is; an infinity outside a layer's parameters (here the shift,
  // like an additive attention mask) is a legitimate constant.
  expect_error([] { load_onnx_bytes(net(NAN).bytes(), "m.onnx"); },
               {"initializer 'shift'", "holds NaN"});
  EXPECT_NO_THROW(load_onnx_bytes(net(-INFINITY).bytes(), "m.onnx"));
}

TEST(NonFinite, EvaluationStopsAtTheNodeWhereNanAppears) {
  const Graph g = load_onnx_bytes(net(0.5f).bytes(), "m.onnx");
  SyntheticDataset data(16, {1, 28, 28}, 10, 3);
  for (bool optimize : {false, true}) {
    Executor ex(g, Impl::fast, optimize);
    expect_error(
        [&] { evaluate(ex, data); },
        {"Sqrt node 'sqrt'", "NaN first appears in its output 'r'", "while evaluating synthetic"});
  }
  Executor ref(g, Impl::reference);
  expect_error([&] { evaluate(ref, data); }, {"Sqrt node 'sqrt'"});
}

TEST(NonFinite, NoMetricFromNonFiniteLogits) {
  Metrics m;
  expect_error(
      [&] {
        m.add(Tensor::from<float>({1, 3}, {NAN, NAN, NAN}), {0}, "m.onnx");
      },
      {"m.onnx", "not finite"});
  EXPECT_EQ(m.result().samples, 0u);
}

TEST(NonFinite, CalibrationStopsAtTheNodeWhereNanAppears) {
  // The Gemm's input (a layer input, observed) is NaN from the Sqrt on.
  const Graph g = load_onnx_bytes(net(0.5f).bytes(), "m.onnx");
  SyntheticDataset data(16, {1, 28, 28}, 10, 3);
  expect_error([&] { observe_activations(g, data, {}); },
               {"Sqrt node 'sqrt'", "NaN", "while calibrating on synthetic"});
}

// JSON has no NaN: a non-finite scale was written as null, a file mixq could not read back.
TEST(NonFinite, QuantConfigWithNonFiniteScalesIsNeverWritten) {
  TempDir dir;
  for (bool input : {false, true}) {
    QuantConfig c;
    LayerConfig l;
    l.name = "fc";
    l.rows.push_back({Scheme::fixed, 4, input ? 1.f : NAN});
    if (input) l.input = ActQuant{};
    if (input) l.input->scale = INFINITY;
    c.layers.push_back(l);
    expect_error([&] { save_quant_config(c, dir.file("q.json")); },
                 {"layer 'fc'",
                  input ? "input scale inf is out of float range" : "row 0 weight scale is NaN",
                  "no quantization config is written"});
    EXPECT_FALSE(fs::exists(dir.file("q.json")));
  }
}

TEST(NonFinite, LocatingNamesAnInputThatIsNotFinite) {
  const Graph g = load_onnx_bytes(net(-1.f).bytes(), "m.onnx");
  Tensor x = filled({1, 1, 28, 28}, 0.f);
  x.data<float>()[5] = INFINITY;
  const NonFinite f = locate_non_finite(g, {x});
  EXPECT_TRUE(f.found);
  EXPECT_EQ(f.where, "model input 'x'");
  EXPECT_EQ(f.kind, "+Inf");
}

// The command line: a NaN bias was scored 100 % top-1 with exit 0; now it is refused at load,
// and a NaN that appears at run time is named with its node, for eval, calibrate and quantize.
TEST(NonFinite, CommandsRefuseAndWriteNothing) {
  MIXQ_SKIP_UNLESS_EXISTS("/usr/share/datasets/fashion-mnist");
  TempDir dir;
  const std::string bias = net(0.f, 0.1f, NAN).save(dir.file("nan_bias.onnx"));
  const std::string runtime_nan = net(0.5f).save(dir.file("sqrt.onnx"));
  const std::string bin = MIXQ_BINARY;
  expect_clean_error(run_command(bin + " eval " + bias + " --data fmnist:test --limit 64"),
                     "initializer 'fc.b': holds NaN");
  CommandResult r = run_command(bin + " eval " + runtime_nan + " --data fmnist:test --limit 64");
  expect_clean_error(r, "Sqrt node 'sqrt': NaN first appears in its output 'r'");
  r = run_command(bin + " calibrate " + runtime_nan +
                  " --data fmnist:train --calib-samples 64 -o " + dir.file("q.json"));
  expect_clean_error(r, "Sqrt node 'sqrt'");
  EXPECT_FALSE(fs::exists(dir.file("q.json")));
  r = run_command(bin + " quantize " + bias + " --calib-data fmnist:train --wbits 4 -o " +
                  dir.file("out"));
  expect_clean_error(r, "holds NaN");
  EXPECT_TRUE(!fs::exists(dir.file("out")) || fs::is_empty(dir.file("out")));
}

}  // namespace
}  // namespace mixq::test
