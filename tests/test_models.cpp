// Built-in architectures: output shapes, parameter counts (against hand-derived formulas),
// seeded Kaiming initialisation, training form, the inference form with BatchNormalization
// folded giving the same outputs as the unfolded one, and the embedded default model's accuracy.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/rng.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "models/models.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/peer.h"
#include "train/params.h"

using namespace mixq;

namespace {

Tensor random_images(const Shape& s, uint64_t seed) {
  Rng rng(seed);
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(rng.normal());
  return t;
}

Shape infer_logits_shape(const Graph& training, const Shape& input) {
  Executor ex(training, Impl::fast);
  Graph inf = inference_graph(training, ex.environment(), true);
  Executor iex(inf, Impl::fast);
  return iex.run({random_images(input, 1)})[0].shape();
}

int64_t conv_bn(int64_t cin, int64_t cout, int64_t k) {
  return cin * cout * k * k + 2 * cout;
}

}  // namespace

TEST(Models, LeNetMatchesLeNet5ParameterCount) {
  ModelSpec s;  // 1x28x28, 10 classes
  Graph g = build_model("lenet", s);
  // conv 1->6 5x5, conv 6->16 5x5, fc 400->120, 120->84, 84->10: LeNet-5's 61,706.
  EXPECT_EQ(count_parameters(g), 61706);
  EXPECT_EQ(infer_logits_shape(g, {2, 1, 28, 28}), (Shape{2, 10}));
  EXPECT_TRUE(find_trainables(g).bn.empty());
}

TEST(Models, ResNetParameterCountsAndShapes) {
  ModelSpec s;
  s.channels = 3;
  s.height = s.width = 32;
  auto expected = [](int64_t n, int64_t w, int64_t cin, int64_t classes) {
    int64_t total = conv_bn(cin, w, 3);
    for (int64_t stage = 0; stage < 3; ++stage) {
      const int64_t out = w << stage, in = stage ? out / 2 : w;
      for (int64_t k = 0; k < n; ++k) {
        const int64_t c = k == 0 ? in : out;
        total += conv_bn(c, out, 3) + conv_bn(out, out, 3);
        if (c != out) total += conv_bn(c, out, 1);  // projection shortcut
      }
    }
    return total + 4 * w * classes + classes;
  };
  Graph r20 = build_model("resnet20", s);
  EXPECT_EQ(count_parameters(r20), expected(3, 16, 3, 10));
  EXPECT_EQ(count_parameters(r20), 272474);
  EXPECT_EQ(find_trainables(r20).bn.size(), 21u);  // 19 convs + 2 shortcuts
  EXPECT_EQ(infer_logits_shape(r20, {3, 3, 32, 32}), (Shape{3, 10}));

  s.channels = 1;
  s.height = s.width = 28;
  s.classes = 7;
  s.base_width = 24;
  Graph r8 = build_model("resnet8", s);
  EXPECT_EQ(count_parameters(r8), expected(1, 24, 1, 7));
  EXPECT_EQ(infer_logits_shape(r8, {2, 1, 28, 28}), (Shape{2, 7}));
}

TEST(Models, Vgg4CountsAndShapes) {
  ModelSpec s;
  Graph g = build_model("vgg4", s);
  EXPECT_EQ(count_parameters(g), conv_bn(1, 32, 3) + conv_bn(32, 32, 3) + conv_bn(32, 64, 3) +
                                     conv_bn(64, 64, 3) + 64 * 7 * 7 * 10 + 10);
  EXPECT_EQ(infer_logits_shape(g, {1, 1, 28, 28}), (Shape{1, 10}));
  s.channels = 3;
  s.height = s.width = 32;
  s.classes = 100;
  EXPECT_EQ(infer_logits_shape(build_model("vgg4", s), {2, 3, 32, 32}), (Shape{2, 100}));
}

TEST(Models, KaimingInitialisationIsSeeded) {
  ModelSpec s;
  s.base_width = 64;
  Graph a = build_model("vgg4", s), b = build_model("vgg4", s);
  s.seed = 1;
  Graph c = build_model("vgg4", s);
  const Tensor& wa = a.constant(a.find_value("conv3.weight"));  // 64x64x3x3
  const Tensor& wb = b.constant(b.find_value("conv3.weight"));
  const Tensor& wc = c.constant(c.find_value("conv3.weight"));
  EXPECT_EQ(std::memcmp(wa.raw(), wb.raw(), wa.nbytes()), 0);
  EXPECT_NE(std::memcmp(wa.raw(), wc.raw(), wa.nbytes()), 0);
  double sum = 0, sq = 0;
  for (float v : wa.to_floats()) {
    sum += v;
    sq += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(wa.numel());
  const double sd = std::sqrt(sq / n - (sum / n) * (sum / n));
  EXPECT_NEAR(sd, std::sqrt(2.0 / (64 * 9)), 0.03 * std::sqrt(2.0 / (64 * 9)));
  EXPECT_NEAR(sum / n, 0, 0.01);
}

TEST(Models, UnknownOrUnfittingArchitecturesAreErrors) {
  ModelSpec s;
  EXPECT_THROW(build_model("alexnet", s), Error);
  EXPECT_THROW(build_model("resnet19", s), Error);
  EXPECT_THROW(build_model("resnet2", s), Error);
  s.height = s.width = 4;  // too small for LeNet's second 5x5 conv
  EXPECT_THROW(build_model("lenet", s), Error);
}

TEST(Models, FoldedExportReimportsAndMatchesTrainingGraph) {
  ModelSpec s;
  s.channels = 3;
  s.height = s.width = 16;
  s.classes = 5;
  Graph g = build_model("resnet8", s);
  Executor ex(g, Impl::fast);
  std::vector<Tensor> env = ex.environment();
  // Non-trivial running statistics and BN parameters, as after training.
  Rng rng(9);
  for (const BnStats& st : find_trainables(g).bn)
    for (int v : {st.mean_in, st.var_in}) {
      Tensor t = env[v].clone();
      for (int64_t i = 0; i < t.numel(); ++i)
        t.data<float>()[i] = v == st.var_in ? 0.5f + static_cast<float>(rng.uniform())
                                            : static_cast<float>(0.3 * rng.normal());
      env[v] = t;
    }
  for (const Param& p : find_trainables(g).params)
    if (p.kind == ParamKind::bn_bias) {
      Tensor t = env[p.value].clone();
      for (int64_t i = 0; i < t.numel(); ++i)
        t.data<float>()[i] = static_cast<float>(0.2 * rng.normal());
      env[p.value] = t;
    }
  Graph plain = inference_graph(g, env, false);
  Graph folded = inference_graph(g, env, true);
  int bn_nodes = 0;
  for (const Node& n : folded.nodes) bn_nodes += n.op_type == "BatchNormalization";
  EXPECT_EQ(bn_nodes, 0);
  test::TempDir dir;
  save_onnx(folded, dir.file("m.onnx"));
  Graph back = load_onnx(dir.file("m.onnx"));
  EXPECT_EQ(back.opset, 13);
  const Tensor x = random_images({4, 3, 16, 16}, 3);
  const Tensor want = Executor(plain, Impl::reference).run({x})[0];
  const Tensor got = Executor(back, Impl::fast).run({x})[0];
  ASSERT_EQ(got.shape(), (Shape{4, 5}));
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst,
                     std::fabs(static_cast<double>(want.data<float>()[i]) - got.data<float>()[i]));
  std::cout << "max abs difference " << worst << "\n";
  EXPECT_LT(worst, 1e-3);
}

TEST(Models, TrainingFormOfAnImportedModel) {
  // An imported graph with an unfolded BatchNormalization (after a Relu) gets statistics outputs.
  test::OnnxBuilder b;
  b.input("x", {-1, 2, 4, 4}).output("y", {-1, 2, 4, 4});
  b.initializer("s", Tensor::from<float>({2}, {1, 2}))
      .initializer("b", Tensor::from<float>({2}, {0, 1}))
      .initializer("m", Tensor::from<float>({2}, {0, 0}))
      .initializer("v", Tensor::from<float>({2}, {1, 1}));
  b.node("Relu", {"x"}, {"r"});
  b.node("BatchNormalization", {"r", "s", "b", "m", "v"}, {"y"});
  test::TempDir dir;
  Graph g = load_onnx(b.save(dir.file("bn.onnx")));
  make_training_form(g);
  Trainables t = find_trainables(g);
  ASSERT_EQ(t.bn.size(), 1u);
  EXPECT_EQ(t.params.size(), 2u);
  EXPECT_EQ(count_parameters(g), 4);
  make_training_form(g);  // idempotent
  EXPECT_EQ(find_trainables(g).bn.size(), 1u);
  EXPECT_EQ(g.nodes.back().outputs.size(), 3u);
}

// mixq's own Fashion-MNIST models (models/README.md): >= 92 % top-1 on Debian's test set, with
// ONNX Runtime agreeing on the predictions.
void expect_embedded_model_accuracy(const std::string& name) {
  const std::string model = test::repo_path("models/" + name);
  MIXQ_SKIP_UNLESS_EXISTS(model);
  MIXQ_SKIP_UNLESS_EXISTS(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz");
  auto data = open_dataset("fmnist:test");
  Graph g = load_onnx(model);
  EXPECT_EQ(g.opset, 13);
  Executor ex(g, Impl::fast, /*optimize=*/true);
  const EvalResult r = evaluate(ex, *data);
  std::cout << "top-1 " << r.top1 * 100 << " %\n";
  EXPECT_EQ(r.samples, 10000u);
  EXPECT_GE(r.top1, 0.92);
  const std::string missing = test::peer_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::TempDir dir;
  const size_t n = 2000;
  test::write_peer_inputs(*data, n, dir.path());
  nlohmann::json peer = test::run_peer_eval(model, dir.path(), data->sample_shape());
  Executor ex2(g, Impl::fast, /*optimize=*/true);
  const EvalResult mine = evaluate(ex2, *data, {256, n, {}});
  std::cout << "first " << n << ": mixq " << mine.top1 * 100 << " %, ONNX Runtime "
            << peer["top1"].get<double>() << " %\n";
  EXPECT_NEAR(mine.top1 * 100, peer["top1"].get<double>(), 0.05 + 1e-9);
}

TEST(Models, DefaultFashionMnistModelReachesItsAccuracy) {
  expect_embedded_model_accuracy("fmnist_default.onnx");
}

TEST(Models, MainJobResNet14ReachesItsAccuracy) {
  expect_embedded_model_accuracy("fmnist_resnet14.onnx");
}
