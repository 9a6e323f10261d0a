// The integer convolution: the oneDNN u8 x s8 kernel against the plain int64 reference on random
// geometries, the int8 form of a config against fake-quantized execution, and ResNet-20's
// int8 top-1 against its fake-quantized top-1.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "data/dataset.h"
#include "eval/evaluate.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "runtime/executor.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::test;

namespace {

struct Geometry {
  int64_t n, c, h, w, o, k, stride, pad, dil, group;
  bool bias;
};

// The fused forms the inference passes give a QConv.
struct Fused {
  bool relu = false, sum = false, nhwc = false;
  int64_t qmax = 255;
};

Graph qconv_graph(const Geometry& g, uint32_t seed, const Fused& f = {}) {
  Graph gr;
  gr.opset = 13;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(-127, 127);
  Tensor codes(DType::i8, {g.o, g.c / g.group, g.k, g.k});
  for (int64_t i = 0; i < codes.numel(); ++i)
    codes.data<int8_t>()[i] = static_cast<int8_t>(code(rng));
  Node n;
  n.name = "q";
  n.op_type = "QConv";
  n.domain = "mixq";
  const int x = gr.add_value("x", DType::f32);
  gr.inputs.push_back(x);
  n.inputs = {x, gr.add_constant("codes", codes),
              gr.add_constant("step", random_tensor(DType::f32, {g.o}, seed + 1, 0.01))};
  for (int64_t i = 0; i < g.o; ++i) {
    float& s = gr.values[n.inputs[2]].constant->data<float>()[i];
    s = std::fabs(s) + 1e-3f;
  }
  if (g.bias || f.sum)
    n.inputs.push_back(g.bias ? gr.add_constant("b", random_tensor(DType::f32, {g.o}, seed + 2))
                              : -1);
  if (f.sum) {
    const int s = gr.add_value("s", DType::f32);
    gr.inputs.push_back(s);
    n.inputs.push_back(s);
    n.attrs["mixq_sum"] = int64_t{1};
  }
  if (f.relu) n.attrs["mixq_activation"] = std::string("Relu");
  if (f.nhwc) n.attrs["mixq_layout"] = std::string("NHWC");
  n.attrs["strides"] = std::vector<int64_t>{g.stride, g.stride};
  n.attrs["pads"] = std::vector<int64_t>{g.pad, g.pad, g.pad, g.pad};
  n.attrs["dilations"] = std::vector<int64_t>{g.dil, g.dil};
  n.attrs["group"] = g.group;
  n.attrs["scale"] = 0.02f;
  n.attrs["qmax"] = f.qmax;
  const int y = gr.add_value("y");
  n.outputs = {y};
  gr.outputs = {y};
  gr.nodes.push_back(n);
  gr.sort();
  return gr;
}

}  // namespace

TEST(QConv, FastMatchesReferenceOnRandomGeometries) {
  const Geometry cases[] = {
      {2, 16, 8, 8, 16, 3, 1, 1, 1, 1, true},  {1, 3, 9, 7, 8, 3, 2, 1, 1, 1, false},
      {3, 32, 6, 6, 64, 1, 1, 0, 1, 1, true},  {2, 8, 10, 10, 8, 3, 1, 2, 2, 1, true},
      {1, 16, 7, 7, 32, 3, 2, 1, 1, 4, false}, {2, 12, 5, 5, 12, 3, 1, 1, 1, 12, true},
  };
  uint32_t seed = 10;
  for (const Geometry& g : cases) {
    const Graph gr = qconv_graph(g, seed++);
    Tensor x = random_tensor(DType::f32, {g.n, g.c, g.h, g.w}, seed++, 2.0);
    Executor fast(gr, Impl::fast);
    EXPECT_EQ(fast.impl_name(0), "dnnl");
    const Tensor a = fast.run({x})[0];
    const Tensor b = Executor(gr, Impl::reference).run({x})[0];
    ASSERT_EQ(a.shape(), b.shape());
    // The sums are exact in both; only the final float scaling differs, so compare against
    // the output's magnitude (single outputs can cancel to near zero).
    double worst = 0, top = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      worst = std::max(worst, double(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
      top = std::max(top, double(std::fabs(b.data<float>()[i])));
    }
    EXPECT_LT(worst, 1e-6 * top) << "case c=" << g.c << " o=" << g.o << " group=" << g.group;
  }
}

// Relu, residual sum and channels-last, as the fusion and layout passes set them: the oneDNN
// kernel (post-ops inside the convolution, or the float tail where it cannot) against the
// reference, on geometries including a padding as wide as the kernel and a qmax below 255.
TEST(QConv, FusedFormsMatchReference) {
  const Geometry cases[] = {
      {2, 16, 8, 8, 16, 3, 1, 1, 1, 1, true},
      {1, 8, 6, 6, 16, 1, 1, 1, 1, 1, true},  // 1x1 kernel, pad 1: whole rows in the padding
      {2, 12, 5, 5, 12, 3, 2, 1, 1, 4, false},
  };
  uint32_t seed = 50;
  for (const Geometry& g : cases)
    for (int form = 0; form < 16; ++form) {
      Fused f;
      f.relu = form & 1;
      f.sum = form & 2;
      f.nhwc = form & 4;
      f.qmax = form & 8 ? 15 : 255;
      const Graph gr = qconv_graph(g, seed++, f);
      const Shape xs = f.nhwc ? Shape{g.n, g.h, g.w, g.c} : Shape{g.n, g.c, g.h, g.w};
      const int64_t oh = (g.h + 2 * g.pad - g.dil * (g.k - 1) - 1) / g.stride + 1;
      const int64_t ow = (g.w + 2 * g.pad - g.dil * (g.k - 1) - 1) / g.stride + 1;
      const Shape ys = f.nhwc ? Shape{g.n, oh, ow, g.o} : Shape{g.n, g.o, oh, ow};
      std::vector<Tensor> feeds = {random_tensor(DType::f32, xs, seed++, 2.0)};
      if (f.sum) feeds.push_back(random_tensor(DType::f32, ys, seed++, 1.0));
      Executor fast(gr, Impl::fast);
      ASSERT_EQ(fast.impl_name(0), "dnnl");
      const Tensor a = fast.run(feeds)[0];
      const Tensor b = Executor(gr, Impl::reference).run(feeds)[0];
      ASSERT_EQ(a.shape(), ys);
      ASSERT_EQ(b.shape(), ys);
      double worst = 0, top = 0;
      for (int64_t i = 0; i < a.numel(); ++i) {
        worst = std::max(worst, double(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
        top = std::max(top, double(std::fabs(b.data<float>()[i])));
      }
      EXPECT_LT(worst, 1e-5 * top) << "k=" << g.k << " pad=" << g.pad << " relu=" << f.relu
                                   << " sum=" << f.sum << " nhwc=" << f.nhwc << " qmax=" << f.qmax;
    }
}

// Conv -> Relu -> Conv: the second conv's input is unsigned, so it runs as QConv; the first
// (a signed input) stays fake-quantized. Same outputs either way.
// auto_pad resolves through the same window geometry as Conv: SAME_UPPER with an odd total pad
// (stride 2) puts it at the end, so it gives exactly the explicit pads {0, 0, 1, 1}, on both
// kernels.
TEST(QConv, AutoPadEqualsExplicitPads) {
  const Geometry g{2, 8, 8, 8, 16, 3, 2, 0, 1, 1, true};
  Graph explicit_pads = qconv_graph(g, 90);
  explicit_pads.nodes[0].attrs["pads"] = std::vector<int64_t>{0, 0, 1, 1};
  Graph same = qconv_graph(g, 90);
  same.nodes[0].attrs.erase("pads");
  same.nodes[0].attrs["auto_pad"] = std::string("SAME_UPPER");
  const Tensor x = random_tensor(DType::f32, {g.n, g.c, g.h, g.w}, 91, 2.0);
  for (Impl impl : {Impl::reference, Impl::fast}) {
    const Tensor a = Executor(same, impl).run({x})[0];
    const Tensor b = Executor(explicit_pads, impl).run({x})[0];
    ASSERT_EQ(a.shape(), (Shape{g.n, g.o, 4, 4}));
    ASSERT_EQ(b.shape(), a.shape());
    for (int64_t i = 0; i < a.numel(); ++i)
      ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << "element " << i;
  }
}

TEST(QConv, Int8FormEqualsFakeQuantizedExecution) {
  OnnxBuilder b;
  b.input("x", {-1, 4, 8, 8}).output("y", {-1, 8, 8, 8});
  b.initializer("w0", random_tensor(DType::f32, {8, 4, 3, 3}, 1, 0.3));
  b.initializer("w1", random_tensor(DType::f32, {8, 8, 3, 3}, 2, 0.3));
  b.initializer("b1", random_tensor(DType::f32, {8}, 3, 0.1));
  OnnxBuilder::attr(b.node("Conv", {"x", "w0"}, {"c0"}, "conv0"), "pads",
                    std::vector<int64_t>{1, 1, 1, 1});
  b.node("Relu", {"c0"}, {"r0"}, "relu0");
  OnnxBuilder::attr(b.node("Conv", {"r0", "w1", "b1"}, {"y"}, "conv1"), "pads",
                    std::vector<int64_t>{1, 1, 1, 1});
  const Graph g = load_onnx_bytes(b.bytes(), "two_convs");
  QuantConfig cfg;
  LayerConfig l0{"conv0", {}, act_quant_for_range(-3.0f, 3.0f, 8)};
  l0.rows = choose_weight_quant(g.constant(g.find_value("w0")), Scheme::fixed, 4, ScaleMethod::mse);
  LayerConfig l1{"conv1", {}, act_quant_for_range(0.0f, 4.0f, 8)};
  l1.rows = choose_weight_quant(g.constant(g.find_value("w1")), Scheme::sp2, 4, ScaleMethod::mse);
  cfg.layers = {l0, l1};
  const Graph fq = apply_quant(g, cfg), q8 = apply_quant(g, cfg, "t", WeightForm::int8);
  int qconvs = 0;
  for (const Node& n : q8.nodes) qconvs += n.op_type == "QConv";
  EXPECT_EQ(qconvs, 1);
  const Tensor x = random_tensor(DType::f32, {3, 4, 8, 8}, 4, 1.5);
  for (bool optimize : {false, true}) {
    const Tensor a = Executor(fq, Impl::fast, optimize).run({x})[0];
    const Tensor c = Executor(q8, Impl::fast, optimize).run({x})[0];
    ASSERT_EQ(a.shape(), c.shape());
    for (int64_t i = 0; i < a.numel(); ++i)
      ASSERT_NEAR(a.data<float>()[i], c.data<float>()[i],
                  1e-4 * (1 + std::fabs(a.data<float>()[i])))
          << i;
  }
}

TEST(QConv, ResNet20Int8TopOneWithinATenthOfFakeQuantized) {
  const std::string model = shared_path("models/cifar10_resnet20.onnx");
  const std::string train = shared_path("data/cifar10/train"),
                    test = shared_path("data/cifar10/test");
  MIXQ_SKIP_UNLESS_EXISTS(model);
  MIXQ_SKIP_UNLESS_EXISTS(test);
  DataOptions d;
  d.mean = {0.485f, 0.456f, 0.406f};
  d.std = {0.229f, 0.224f, 0.225f};
  auto calib = open_dataset("folder:" + train, d);
  auto data = open_dataset("folder:" + test, d);
  const Graph g = load_onnx(model);
  ObserveOptions oo;
  oo.samples = 256;
  const ActivationStats stats = observe_activations(g, *calib, oo);
  UniformOptions uo;
  uo.wbits = 4;
  uo.abits = 8;
  const QuantConfig cfg = uniform_config(g, &stats, uo);
  EvalOptions eo;
  eo.limit = 2000;
  Executor fq(apply_quant(g, cfg), Impl::fast, true);
  Executor q8(apply_quant(g, cfg, "t", WeightForm::int8), Impl::fast, true);
  // The optimised int8 graph runs QConv channels-last with ReLU and the residual Adds fused in.
  int qconvs = 0, nhwc = 0, relu = 0, sums = 0;
  for (const Node& n : q8.graph().nodes) {
    if (n.op_type != "QConv") continue;
    ++qconvs;
    nhwc += n.get_string("mixq_layout", "") == "NHWC";
    relu += n.get_string("mixq_activation", "") == "Relu";
    sums += n.get_int("mixq_sum", 0) == 1;
  }
  EXPECT_EQ(qconvs, 18);  // every conv but the first (signed input)
  EXPECT_EQ(nhwc, qconvs);
  EXPECT_EQ(relu, qconvs);
  EXPECT_EQ(sums, 9);  // the second conv of each residual block
  const double a = evaluate(fq, *data, eo).top1 * 100, b = evaluate(q8, *data, eo).top1 * 100;
  std::printf("fake-quantized %.2f %%, int8 %.2f %%\n", a, b);
  EXPECT_NEAR(a, b, 0.1);
}
