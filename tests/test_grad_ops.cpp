// Backward passes of the light op families: elementwise (with broadcasting), activations, shape
// and data movement, reductions, and mixq.FakeQuant's straight-through estimator. Each op's
// reference backward is checked against central differences in double precision on a few
// shapes and attribute variants; the fast backward paths against the reference ones in float;
// Dropout's training-mode mask for determinism, scaling and its reuse by backward.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <map>
#include <random>

#include "ops/kernel.h"
#include "support/gradcheck.h"

using namespace mixq;
using namespace mixq::test;

namespace {

using Attrs = std::map<std::string, Attribute>;

// Random f64 values, normal with standard deviation sd.
Tensor rnd(const Shape& s, uint32_t seed, double sd = 1.0) {
  return random_tensor(DType::f64, s, seed, sd);
}
// |normal| + lo: for logarithms, roots and positive bases.
Tensor positive(const Shape& s, uint32_t seed, double lo = 0.5) {
  Tensor t = rnd(s, seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = std::fabs(t.data<double>()[i]) + lo;
  return t;
}
// Values at least 0.5 away from zero, either sign: divisors.
Tensor away_from_zero(const Shape& s, uint32_t seed) {
  Tensor t = rnd(s, seed);
  for (int64_t i = 0; i < t.numel(); ++i) {
    double& v = t.data<double>()[i];
    v = v < 0 ? v - 0.5 : v + 0.5;
  }
  return t;
}
// Uniform in (-0.9, 0.9): for asin, acos, atanh.
Tensor inside_unit(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-0.9, 0.9);
  Tensor t(DType::f64, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = u(rng);
  return t;
}
Tensor ints(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<int64_t>({n}, v);
}
Tensor scalar(double v) {
  return Tensor::from<double>({}, {v});
}

OpSpec spec(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int64_t opset = 13,
            size_t outputs = 1) {
  OpSpec s;
  s.op = op;
  s.inputs = std::move(inputs);
  s.attrs = std::move(attrs);
  s.opset = opset;
  s.outputs = outputs;
  return s;
}

std::string shapes_of(const OpSpec& s) {
  std::string r;
  for (const Tensor& t : s.inputs) {
    if (!r.empty()) r += ' ';
    r += shape_str(t.shape());
  }
  return r;
}

// A kernel for one node with inputs and outputs of the given types.
struct NodeKernel {
  Graph g;
  Node n;
  std::unique_ptr<Kernel> k;
  NodeKernel(const std::string& op, std::vector<DType> ins, std::vector<DType> outs,
             Attrs attrs = {}, int64_t opset = 13, Impl impl = Impl::reference,
             const std::string& domain = "") {
    g.opset = opset;
    n.name = "n0";
    n.op_type = op;
    n.domain = domain;
    n.attrs = std::move(attrs);
    for (size_t i = 0; i < ins.size(); ++i)
      n.inputs.push_back(g.add_value("in" + std::to_string(i), ins[i]));
    for (size_t i = 0; i < outs.size(); ++i)
      n.outputs.push_back(g.add_value("out" + std::to_string(i), outs[i]));
    k = Registry::get().make(n, g, impl);
  }
};

// Asserts the gradient check passes and prints its maximum relative error.
void expect_grad(const OpSpec& s, const std::string& variant = "") {
  const GradCheckResult r = grad_check(s);
  std::cout << "max rel error " << s.op << " " << (variant.empty() ? shapes_of(s) : variant) << ": "
            << r.max_rel_error << "\n";
  EXPECT_LT(r.max_rel_error, 1e-3)
      << s.op << " " << variant << " " << shapes_of(s) << ": " << r.worst;
}

// Asserts the fast backward matches the reference one in float.
void expect_fast(OpSpec s, const std::string& variant = "") {
  const double d = fast_vs_reference_backward(s);
  std::cout << "fast vs reference " << s.op << " " << (variant.empty() ? shapes_of(s) : variant)
            << ": " << d << "\n";
  EXPECT_LT(d, 1e-4) << s.op << " " << variant << " " << shapes_of(s);
}

// Operand shape pairs covering same shape, rank mismatch, size-1 dimensions on both sides, a
// scalar, and a per-channel operand.
const std::vector<std::pair<Shape, Shape>> kBroadcastPairs = {{{2, 3, 4}, {2, 3, 4}},
                                                              {{2, 3, 4}, {4}},
                                                              {{2, 1, 4}, {3, 1}},
                                                              {{}, {2, 3}},
                                                              {{2, 3, 2, 2}, {3, 1, 1}}};

// ---- elementwise --------------------------------------------------------------------------

TEST(GradOpsElementwise, ArithmeticWithBroadcasting) {
  uint32_t seed = 10;
  for (const auto& [sa, sb] : kBroadcastPairs) {
    expect_grad(spec("Add", {rnd(sa, seed), rnd(sb, seed + 1)}));
    expect_grad(spec("Sub", {rnd(sa, seed + 2), rnd(sb, seed + 3)}));
    expect_grad(spec("Mul", {rnd(sa, seed + 4), rnd(sb, seed + 5)}));
    expect_grad(spec("Div", {rnd(sa, seed + 6), away_from_zero(sb, seed + 7)}));
    expect_grad(spec("Div", {away_from_zero(sb, seed + 8), away_from_zero(sa, seed + 9)}));
    seed += 10;
  }
}

TEST(GradOpsElementwise, PowBaseAndExponent) {
  uint32_t seed = 100;
  for (const auto& [sa, sb] : kBroadcastPairs) {
    expect_grad(spec("Pow", {positive(sa, seed), rnd(sb, seed + 1, 0.7)}));
    expect_grad(spec("Pow", {positive(sb, seed + 2), rnd(sa, seed + 3, 0.7)}));
    seed += 4;
  }
  // An integer exponent is a constant; negative bases are fine then.
  expect_grad(spec("Pow", {rnd({2, 3}, 120), Tensor::from<int64_t>({}, {3})}), "int exponent");
  OpSpec square = spec("Pow", {rnd({2, 3}, 121), Tensor::from<double>({1}, {2.0})});
  square.constant_inputs = {1};  // x^e has no real derivative in e for x < 0
  expect_grad(square, "float exponent held constant");
}

TEST(GradOpsElementwise, MaxMinToTheSelectedInput) {
  uint32_t seed = 200;
  for (const std::string op : {"Max", "Min"}) {
    for (const auto& [sa, sb] : kBroadcastPairs) {
      expect_grad(spec(op, {rnd(sa, seed), rnd(sb, seed + 1)}));
      seed += 2;
    }
    expect_grad(spec(op, {rnd({2, 1, 3}, seed), rnd({4, 1}, seed + 1), rnd({3}, seed + 2)}),
                "three inputs");
    expect_grad(spec(op, {rnd({2, 3}, seed + 3)}), "one input");
  }
}

TEST(GradOpsElementwise, MaxTiesGoToTheFirstInput) {
  // Ties have no derivative, so no gradient check: the fold's choice, checked by hand.
  NodeKernel m("Max", {DType::f64, DType::f64, DType::f64}, {DType::f64});
  Tensor a = Tensor::from<double>({3}, {1, 2, 3}), b = Tensor::from<double>({3}, {1, 5, 0}),
         c = Tensor::from<double>({3}, {0, 5, 3});
  Tensor y, g0, g1, g2;
  std::vector<const Tensor*> in{&a, &b, &c};
  m.k->forward(in, {&y});
  Tensor gy = Tensor::from<double>({3}, {10, 20, 30});
  m.k->backward(in, {&y}, {&gy}, {&g0, &g1, &g2});
  EXPECT_EQ(g0.to_floats(), (std::vector<float>{10, 0, 30}));
  EXPECT_EQ(g1.to_floats(), (std::vector<float>{0, 20, 0}));
  EXPECT_EQ(g2.to_floats(), (std::vector<float>{0, 0, 0}));
}

TEST(GradOpsElementwise, SumAndMean) {
  expect_grad(spec("Sum", {rnd({2, 1, 3}, 300), rnd({4, 1}, 301), rnd({3}, 302)}));
  expect_grad(spec("Sum", {rnd({2, 3}, 303), rnd({2, 3}, 304)}));
  expect_grad(spec("Mean", {rnd({2, 1, 3}, 305), rnd({4, 1}, 306), rnd({}, 307)}));
  expect_grad(spec("Mean", {rnd({3, 2}, 308)}));
}

TEST(GradOpsElementwise, WhereToXAndY) {
  std::mt19937 rng(400);
  auto cond = [&](const Shape& s) {
    Tensor c(DType::boolean, s);
    for (int64_t i = 0; i < c.numel(); ++i) c.data<bool>()[i] = rng() & 1;
    return c;
  };
  expect_grad(spec("Where", {cond({2, 1, 3}), rnd({4, 1}, 401), rnd({3}, 402)}));
  expect_grad(spec("Where", {cond({2, 3}), rnd({2, 3}, 403), rnd({}, 404)}));
  expect_grad(spec("Where", {cond({3}), rnd({2, 3}, 405), rnd({2, 1}, 406)}));
}

TEST(GradOpsElementwise, UnaryFunctions) {
  const Shape s{2, 3, 4};
  const std::vector<std::pair<std::string, Tensor>> cases = {{"Neg", rnd(s, 500)},
                                                             {"Abs", rnd(s, 501)},
                                                             {"Exp", rnd(s, 502)},
                                                             {"Log", positive(s, 503, 0.2)},
                                                             {"Sqrt", positive(s, 504, 0.2)},
                                                             {"Reciprocal", away_from_zero(s, 505)},
                                                             {"Tanh", rnd(s, 506)},
                                                             {"Erf", rnd(s, 507)},
                                                             {"Sin", rnd(s, 508, 2)},
                                                             {"Cos", rnd(s, 509, 2)},
                                                             {"Tan", rnd(s, 510, 0.5)},
                                                             {"Asin", inside_unit(s, 511)},
                                                             {"Acos", inside_unit(s, 512)},
                                                             {"Atan", rnd(s, 513)},
                                                             {"Sinh", rnd(s, 514)},
                                                             {"Cosh", rnd(s, 515)},
                                                             {"Asinh", rnd(s, 516)},
                                                             {"Acosh", positive(s, 517, 1.2)},
                                                             {"Atanh", inside_unit(s, 518)}};
  for (const auto& [op, x] : cases) expect_grad(spec(op, {x}));
}

TEST(GradOpsElementwise, NonDifferentiableOpsHaveNoBackward) {
  for (const std::string op : {"Floor", "Ceil", "Round", "Sign", "Equal", "Less", "Not"}) {
    const DType t = op == "Not" ? DType::boolean : DType::f32;
    std::vector<DType> ins{t};
    if (op == "Equal" || op == "Less") ins.push_back(t);
    for (Impl impl : {Impl::fast, Impl::reference})
      EXPECT_FALSE(NodeKernel(op, ins, {DType::f32}, {}, 13, impl).k->has_backward()) << op;
  }
  for (const std::string op : {"Relu", "Add", "Exp", "Clip", "Softmax", "Slice", "ReduceMean"})
    for (Impl impl : {Impl::fast, Impl::reference}) {
      std::vector<DType> ins{DType::f32};
      if (op == "Add") ins.push_back(DType::f32);
      if (op == "Slice") ins.insert(ins.end(), {DType::i64, DType::i64});
      EXPECT_TRUE(NodeKernel(op, ins, {DType::f32}, {}, 13, impl).k->has_backward()) << op;
    }
}

// ---- activations ----------------------------------------------------------------------------

TEST(GradOpsActivation, Pointwise) {
  const Shape s{2, 3, 4};
  expect_grad(spec("Relu", {rnd(s, 600)}));
  expect_grad(spec("LeakyRelu", {rnd(s, 601)}));
  expect_grad(spec("LeakyRelu", {rnd(s, 602)}, {{"alpha", 0.3f}}), "alpha 0.3");
  expect_grad(spec("Sigmoid", {rnd(s, 603, 3)}));
  expect_grad(spec("HardSigmoid", {rnd(s, 604, 3)}));
  expect_grad(spec("HardSigmoid", {rnd(s, 605, 3)}, {{"alpha", 0.5f}, {"beta", 0.2f}}),
              "alpha 0.5 beta 0.2");
  expect_grad(spec("HardSwish", {rnd(s, 606, 3)}));
  expect_grad(spec("Elu", {rnd(s, 607)}));
  expect_grad(spec("Elu", {rnd(s, 608)}, {{"alpha", 0.5f}}), "alpha 0.5");
  expect_grad(spec("Selu", {rnd(s, 609)}));
  expect_grad(spec("Softplus", {rnd(s, 610, 3)}));
  expect_grad(spec("Softsign", {rnd(s, 611, 3)}));
}

TEST(GradOpsActivation, PReluInputAndSlope) {
  expect_grad(spec("PRelu", {rnd({2, 3, 2, 2}, 700), rnd({3, 1, 1}, 701)}), "per channel");
  expect_grad(spec("PRelu", {rnd({2, 3, 4}, 702), rnd({1}, 703)}), "one slope");
  expect_grad(spec("PRelu", {rnd({2, 3, 4}, 704), rnd({2, 3, 4}, 705)}), "same shape");
  expect_grad(spec("PRelu", {rnd({2, 3, 4}, 706), rnd({4}, 707)}), "trailing");
  // A [C] slope against NCHW: the pre-opset-7 per-channel reading.
  expect_grad(spec("PRelu", {rnd({2, 3, 2, 2}, 708), rnd({3}, 709)}), "legacy per channel");
}

TEST(GradOpsActivation, ClipBothForms) {
  const Shape s{3, 5};
  expect_grad(spec("Clip", {rnd(s, 800), scalar(-0.5), scalar(0.7)}, {}, 13), "min and max inputs");
  expect_grad(spec("Clip", {rnd(s, 801), scalar(-0.3)}, {}, 13), "min input only");
  expect_grad(spec("Clip", {rnd(s, 802), Tensor(), scalar(0.2)}, {}, 13), "max input only");
  expect_grad(spec("Clip", {rnd(s, 803), scalar(0.4), scalar(-0.2)}, {}, 13), "crossed bounds");
  expect_grad(spec("Clip", {rnd(s, 804)}, {{"min", -0.4f}, {"max", 0.6f}}, 6), "attributes");
  // Zero outside [min, max], pass-through inside, bounds included.
  NodeKernel c("Clip", {DType::f64, DType::f64, DType::f64}, {DType::f64});
  Tensor x = Tensor::from<double>({5}, {-2, -1, 0, 1, 2}), lo = scalar(-1), hi = scalar(1);
  std::vector<const Tensor*> in{&x, &lo, &hi};
  Tensor y, gx, glo, ghi;
  c.k->forward(in, {&y});
  Tensor gy = Tensor::from<double>({5}, {1, 2, 3, 4, 5});
  c.k->backward(in, {&y}, {&gy}, {&gx, &glo, &ghi});
  EXPECT_EQ(gx.to_floats(), (std::vector<float>{0, 2, 3, 4, 0}));
  EXPECT_EQ(glo.to_floats(), (std::vector<float>{1}));
  EXPECT_EQ(ghi.to_floats(), (std::vector<float>{5}));
}

TEST(GradOpsActivation, SoftmaxAndLogSoftmaxBothOpsetSemantics) {
  for (const std::string op : {"Softmax", "LogSoftmax"}) {
    expect_grad(spec(op, {rnd({2, 3, 4}, 900)}, {}, 13), "opset 13 default axis");
    expect_grad(spec(op, {rnd({2, 3, 4}, 901)}, {{"axis", int64_t{1}}}, 13), "opset 13 axis 1");
    expect_grad(spec(op, {rnd({2, 3, 4}, 902)}, {{"axis", int64_t{0}}}, 13), "opset 13 axis 0");
    expect_grad(spec(op, {rnd({2, 3, 4}, 903)}, {}, 11), "opset 11 coerced from axis 1");
    expect_grad(spec(op, {rnd({2, 3, 4}, 904)}, {{"axis", int64_t{2}}}, 11), "opset 11 axis 2");
  }
}

// ---- shape ops ------------------------------------------------------------------------------

TEST(GradOpsShape, Views) {
  expect_grad(spec("Reshape", {rnd({2, 3, 4}, 1000), ints({4, -1})}));
  expect_grad(spec("Flatten", {rnd({2, 3, 4}, 1001)}, {{"axis", int64_t{2}}}));
  expect_grad(spec("Squeeze", {rnd({2, 1, 3}, 1002), ints({1})}), "opset 13");
  expect_grad(spec("Squeeze", {rnd({2, 1, 3, 1}, 1003)}, {{"axes", std::vector<int64_t>{1}}}, 11),
              "opset 11");
  expect_grad(spec("Unsqueeze", {rnd({2, 3}, 1004), ints({0, 3})}), "opset 13");
  expect_grad(spec("Unsqueeze", {rnd({2, 3}, 1005)}, {{"axes", std::vector<int64_t>{-1}}}, 11),
              "opset 11");
  expect_grad(spec("Identity", {rnd({2, 3}, 1006)}));
}

TEST(GradOpsShape, TransposeConcatSplit) {
  expect_grad(spec("Transpose", {rnd({2, 3, 4}, 1100)}, {{"perm", std::vector<int64_t>{2, 0, 1}}}));
  expect_grad(spec("Transpose", {rnd({2, 3, 4}, 1101)}), "default perm");
  expect_grad(spec("Concat", {rnd({2, 1, 3}, 1102), rnd({2, 2, 3}, 1103), rnd({2, 3, 3}, 1104)},
                   {{"axis", int64_t{1}}}));
  expect_grad(spec("Concat", {rnd({2, 2}, 1105), rnd({2, 1}, 1106)}, {{"axis", int64_t{-1}}}),
              "axis -1");
  expect_grad(spec("Split", {rnd({2, 3, 2}, 1107), ints({1, 2})}, {{"axis", int64_t{1}}}, 13, 2),
              "opset 13 sizes");
  expect_grad(spec("Split", {rnd({6, 2}, 1108)}, {}, 11, 3), "equal parts");
  expect_grad(spec("Split", {rnd({2, 5}, 1109)},
                   {{"axis", int64_t{-1}}, {"split", std::vector<int64_t>{2, 3}}}, 11, 2),
              "opset 11 attribute");
}

TEST(GradOpsShape, SliceWithSteps) {
  expect_grad(spec("Slice", {rnd({4, 5, 3}, 1200), ints({0, 4}), ints({4, -6}), ints({0, 1}),
                             ints({2, -2})}),
              "steps 2, -2");
  expect_grad(spec("Slice", {rnd({4, 5}, 1201), ints({1}), ints({100}), ints({-1})}),
              "clamped end");
  expect_grad(
      spec("Slice", {rnd({4, 5}, 1202)},
           {{"starts", std::vector<int64_t>{1, 0}}, {"ends", std::vector<int64_t>{3, 2}}}, 9),
      "opset 9 attributes");
}

TEST(GradOpsShape, PadAllModes) {
  expect_grad(spec("Pad", {rnd({3, 4}, 1300), ints({1, 2, 0, 1}), scalar(0.5)}),
              "constant with value");
  expect_grad(spec("Pad", {rnd({3, 4}, 1301), ints({1, 0, 2, 1})}), "constant zero");
  expect_grad(
      spec("Pad", {rnd({3, 4}, 1302), ints({1, 2, 2, 3})}, {{"mode", std::string("reflect")}}),
      "reflect");
  expect_grad(spec("Pad", {rnd({3, 4}, 1303), ints({2, 1, 1, 3})}, {{"mode", std::string("edge")}}),
              "edge");
  expect_grad(spec("Pad", {rnd({3, 4}, 1304), ints({-1, 1, 0, -1})}), "negative pads crop");
  expect_grad(spec("Pad", {rnd({2, 3}, 1305)},
                   {{"pads", std::vector<int64_t>{0, 1, 1, 0}}, {"value", 2.0f}}, 2),
              "opset 2 attributes");
}

TEST(GradOpsShape, GatherExpandTile) {
  expect_grad(spec("Gather", {rnd({2, 3, 4}, 1400), Tensor::from<int64_t>({2, 2}, {0, -1, 0, 2})},
                   {{"axis", int64_t{1}}}),
              "repeated and negative indices");
  expect_grad(spec("Gather", {rnd({3, 2}, 1401), Tensor::from<int64_t>({}, {2})}), "scalar index");
  expect_grad(spec("GatherElements",
                   {rnd({3, 2}, 1402), Tensor::from<int64_t>({2, 2}, {2, 0, 2, -1})},
                   {{"axis", int64_t{0}}}));
  expect_grad(
      spec("GatherND", {rnd({2, 3, 2}, 1406), Tensor::from<int64_t>({3, 2}, {0, 1, 1, -1, 0, 1})}),
      "repeated tuples");
  expect_grad(
      spec("GatherND", {rnd({2, 3, 2}, 1407), Tensor::from<int64_t>({2, 2, 1}, {2, 0, 1, 1})},
           {{"batch_dims", int64_t{1}}}),
      "batch_dims 1");
  expect_grad(spec("Expand", {rnd({3, 1}, 1403), ints({2, 3, 4})}), "rank and size-1");
  expect_grad(spec("Expand", {rnd({1, 4}, 1404), ints({3, 1})}), "size-1 on both sides");
  expect_grad(spec("Tile", {rnd({2, 3, 1}, 1405), ints({2, 1, 3})}));
}

TEST(GradOpsShape, DepthToSpaceAndSpaceToDepth) {
  expect_grad(spec("DepthToSpace", {rnd({1, 8, 2, 3}, 1450)}, {{"blocksize", int64_t{2}}}), "DCR");
  expect_grad(spec("DepthToSpace", {rnd({2, 4, 2, 2}, 1451)},
                   {{"blocksize", int64_t{2}}, {"mode", std::string("CRD")}}),
              "CRD");
  expect_grad(spec("SpaceToDepth", {rnd({2, 2, 4, 2}, 1452)}, {{"blocksize", int64_t{2}}}));
}

TEST(GradOpsShape, CastDropoutInference) {
  expect_grad(spec("Cast", {rnd({2, 3}, 1500)}, {{"to", int64_t{11}}}), "to double");
  expect_grad(spec("CastLike", {rnd({2, 3}, 1501), rnd({1}, 1502)}));
  expect_grad(spec("Dropout", {rnd({2, 3}, 1503)}), "inference");
  expect_grad(spec("Dropout", {rnd({2, 3}, 1504)}, {}, 13, 2), "inference with mask");
}

TEST(GradOpsShape, CastConvertsTheGradientBetweenFloatTypes) {
  NodeKernel c("Cast", {DType::f32}, {DType::f64}, {{"to", int64_t{11}}});
  Kernel* k = c.k.get();
  Tensor x = Tensor::from<float>({2}, {1.5f, -2.f}), y, gx;
  k->forward({&x}, {&y});
  Tensor gy = Tensor::from<double>({2}, {0.25, 3.0});
  k->backward({&x}, {&y}, {&gy}, {&gx});
  EXPECT_EQ(gx.dtype(), DType::f32);
  EXPECT_EQ(gx.to_floats(), (std::vector<float>{0.25f, 3.f}));
}

TEST(GradOpsShape, SplitOutputWithoutGradientGivesZeros) {
  NodeKernel s("Split", {DType::f32}, {DType::f32, DType::f32, DType::f32});
  Kernel* k = s.k.get();
  Tensor x = Tensor::from<float>({3, 2}, {1, 2, 3, 4, 5, 6}), y0, y1, y2, gx;
  k->forward({&x}, {&y0, &y1, &y2});
  Tensor g0 = Tensor::from<float>({1, 2}, {7, 8}), g2 = Tensor::from<float>({1, 2}, {9, 10});
  k->backward({&x}, {&y0, &y1, &y2}, {&g0, nullptr, &g2}, {&gx});
  EXPECT_EQ(gx.to_floats(), (std::vector<float>{7, 8, 0, 0, 9, 10}));
}

TEST(GradOpsShape, IntegerInputsGetNoGradient) {
  // Only gin[0] is asked for: the shape input's slot stays null and nothing touches it.
  NodeKernel r("Reshape", {DType::f32, DType::i64}, {DType::f32});
  Kernel* k = r.k.get();
  Tensor x = Tensor::from<float>({2, 3}, {1, 2, 3, 4, 5, 6}), shape = ints({3, 2}), y, gx;
  k->forward({&x, &shape}, {&y});
  Tensor gy = Tensor::from<float>({3, 2}, {6, 5, 4, 3, 2, 1});
  k->backward({&x, &shape}, {&y}, {&gy}, {&gx, nullptr});
  EXPECT_EQ(gx.shape(), (Shape{2, 3}));
  EXPECT_EQ(gx.to_floats(), gy.to_floats());
}

// ---- Dropout in training mode ---------------------------------------------------------------

struct DropoutNode : NodeKernel {
  DropoutNode(int64_t opset, Attrs attrs, bool ratio_input)
      : NodeKernel(
            "Dropout", ratio_input ? std::vector{DType::f32, DType::f32} : std::vector{DType::f32},
            {DType::f32, opset >= 10 ? DType::boolean : DType::f32}, std::move(attrs), opset) {
    k->set_training(true);
  }
  std::pair<Tensor, Tensor> run(const Tensor& x, const Tensor* ratio = nullptr) {
    Tensor y, mask;
    std::vector<const Tensor*> in{&x};
    if (ratio) in.push_back(ratio);
    k->forward(in, {&y, &mask});
    return {y, mask};
  }
};

Tensor ones(int64_t n) {
  Tensor t(DType::f32, {n});
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = 1.f;
  return t;
}

TEST(GradOpsDropout, MaskIsDeterministicPerSeedAndCall) {
  const Tensor x = ones(4000);
  const Tensor ratio = Tensor::from<float>({}, {0.3f});
  DropoutNode a(13, {}, true), b(13, {}, true), c(13, {{"seed", int64_t{7}}}, true);
  auto [ya1, ma1] = a.run(x, &ratio);
  auto [yb1, mb1] = b.run(x, &ratio);
  auto [yc1, mc1] = c.run(x, &ratio);
  auto [ya2, ma2] = a.run(x, &ratio);
  auto [yb2, mb2] = b.run(x, &ratio);
  EXPECT_EQ(ya1.to_floats(), yb1.to_floats());  // same seed, same call: same mask
  EXPECT_EQ(ya2.to_floats(), yb2.to_floats());
  EXPECT_NE(ya1.to_floats(), ya2.to_floats());  // the next call draws a new mask
  EXPECT_NE(ya1.to_floats(), yc1.to_floats());  // another seed, another mask
}

TEST(GradOpsDropout, KeptValuesAreScaledAndTheRatioIsRespected) {
  const int64_t n = 20000;
  Tensor x(DType::f32, {n});
  for (int64_t i = 0; i < n; ++i) x.data<float>()[i] = static_cast<float>(i % 17) - 8.f;
  for (float r : {0.1f, 0.5f, 0.8f}) {
    const Tensor ratio = Tensor::from<float>({}, {r});
    DropoutNode d(13, {}, true);
    auto [y, mask] = d.run(x, &ratio);
    ASSERT_EQ(mask.dtype(), DType::boolean);
    int64_t dropped = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool kept = mask.data<bool>()[i];
      dropped += !kept;
      const float want = kept ? x.data<float>()[i] / (1.f - r) : 0.f;
      ASSERT_NEAR(y.data<float>()[i], want, 1e-5f * (1 + std::fabs(want))) << i;
    }
    const double frac = static_cast<double>(dropped) / n;
    std::cout << "dropout ratio " << r << ": dropped fraction " << frac << "\n";
    EXPECT_NEAR(frac, r, 0.02);
  }
}

TEST(GradOpsDropout, BackwardAppliesTheForwardMask) {
  DropoutNode d(13, {}, false);  // ratio input omitted: 0.5
  Tensor x = ones(1000);
  auto [y, mask] = d.run(x);
  Tensor gy(DType::f32, {1000}), gx;
  for (int64_t i = 0; i < 1000; ++i) gy.data<float>()[i] = static_cast<float>(i);
  d.k->backward({&x}, {&y, &mask}, {&gy, nullptr}, {&gx});
  int64_t kept = 0;
  for (int64_t i = 0; i < 1000; ++i) {
    const bool k = mask.data<bool>()[i];
    kept += k;
    EXPECT_FLOAT_EQ(gx.data<float>()[i], k ? 2.f * i : 0.f);
    EXPECT_FLOAT_EQ(y.data<float>()[i], k ? 2.f : 0.f);
  }
  EXPECT_GT(kept, 400);
  EXPECT_LT(kept, 600);
}

TEST(GradOpsDropout, AttributeRatioBeforeOpset12AndInference) {
  DropoutNode d(7, {{"ratio", 0.25f}}, false);
  Tensor x = ones(8000);
  auto [y, mask] = d.run(x);
  EXPECT_EQ(mask.dtype(), DType::f32);
  int64_t dropped = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    dropped += mask.data<float>()[i] == 0.f;
    EXPECT_FLOAT_EQ(y.data<float>()[i], mask.data<float>()[i] / 0.75f);
  }
  EXPECT_NEAR(static_cast<double>(dropped) / x.numel(), 0.25, 0.02);
  // Back in inference mode: the identity, forward and backward.
  d.k->set_training(false);
  auto [yi, mi] = d.run(x);
  EXPECT_EQ(yi.to_floats(), x.to_floats());
  Tensor gx;
  d.k->backward({&x}, {&yi, &mi}, {&x, nullptr}, {&gx});
  EXPECT_EQ(gx.to_floats(), x.to_floats());
  // A zero ratio in training mode is the identity as well.
  DropoutNode z(13, {}, true);
  const Tensor zero = Tensor::from<float>({}, {0.f});
  EXPECT_EQ(z.run(x, &zero).first.to_floats(), x.to_floats());
}

// ---- reductions -----------------------------------------------------------------------------

TEST(GradOpsReduce, AllReductions) {
  const Shape s{2, 3, 4};
  for (const std::string op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
                               "ReduceSumSquare", "ReduceL2", "ReduceL1", "ReduceLogSumExp"}) {
    expect_grad(spec(op, {rnd(s, 1600)}, {{"axes", std::vector<int64_t>{1}}}, 11), "axis 1");
    expect_grad(spec(op, {rnd(s, 1601)},
                     {{"axes", std::vector<int64_t>{0, 2}}, {"keepdims", int64_t{0}}}, 11),
                "axes 0,2 no keepdims");
    expect_grad(spec(op, {rnd(s, 1602)}, {}, 11), "all axes");
  }
  expect_grad(spec("ReduceLogSum", {positive(s, 1603)}, {{"axes", std::vector<int64_t>{-1}}}, 11),
              "axis -1");
  // ReduceSum's axes input (opset 13), and its noop form.
  expect_grad(spec("ReduceSum", {rnd(s, 1604), ints({-1})}, {{"keepdims", int64_t{0}}}, 13),
              "opset 13 axes input");
  expect_grad(
      spec("ReduceSum", {rnd(s, 1605), ints({})}, {{"noop_with_empty_axes", int64_t{1}}}, 13),
      "noop");
}

TEST(GradOpsReduce, MaxGoesToTheFirstMaximum) {
  NodeKernel r("ReduceMax", {DType::f32}, {DType::f32}, {{"axes", std::vector<int64_t>{1}}});
  Kernel* k = r.k.get();
  Tensor x = Tensor::from<float>({2, 3}, {1, 3, 3, 5, 2, 5}), y, gx;
  k->forward({&x}, {&y});
  Tensor gy = Tensor::from<float>({2, 1}, {10, 20});
  k->backward({&x}, {&y}, {&gy}, {&gx});
  EXPECT_EQ(gx.to_floats(), (std::vector<float>{0, 10, 0, 20, 0, 0}));
}

// ---- fast against reference -----------------------------------------------------------------

TEST(GradOpsFast, BinaryLayouts) {
  // Same shape, scalar, per-channel, trailing, small operand first, and a layout the fast path
  // leaves to the reference loop; the last two are big enough to go parallel.
  const std::vector<std::pair<Shape, Shape>> layouts = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}},  {{2, 3, 4, 5}, {}},        {{2, 3, 4, 5}, {1, 3, 1, 1}},
      {{2, 3, 4, 5}, {5}},           {{3, 1, 1}, {2, 3, 4, 4}}, {{2, 1, 4}, {3, 1}},
      {{4, 16, 32, 32}, {16, 1, 1}}, {{64, 1024}, {1024}}};
  uint32_t seed = 1700;
  for (const std::string op : {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum"}) {
    for (const auto& [sa, sb] : layouts) {
      Tensor b = op == "Div" ? away_from_zero(sb, seed + 1) : rnd(sb, seed + 1);
      expect_fast(spec(op, {rnd(sa, seed), b}));
      seed += 2;
    }
  }
  expect_fast(spec("Pow", {positive({2, 3, 4}, 1750), rnd({4}, 1751)}));
  for (const auto& [sx, ss] : std::vector<std::pair<Shape, Shape>>{{{2, 3, 4, 4}, {3, 1, 1}},
                                                                   {{2, 3, 4}, {1}},
                                                                   {{2, 3, 4}, {2, 3, 4}},
                                                                   {{2, 3, 4, 4}, {3}},
                                                                   {{4, 16, 32, 32}, {16, 1, 1}}})
    expect_fast(spec("PRelu", {rnd(sx, seed++), rnd(ss, seed++)}));
}

TEST(GradOpsFast, UnaryAndActivations) {
  for (const Shape& s : {Shape{2, 3, 4}, Shape{4, 16, 32, 32}}) {
    for (const std::string op :
         {"Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Elu", "Selu", "Softplus",
          "Softsign", "Neg", "Abs", "Exp", "Tanh", "Erf"})
      expect_fast(spec(op, {rnd(s, 1800, 3)}));
    for (const std::string op : {"Log", "Sqrt"}) expect_fast(spec(op, {positive(s, 1801)}));
    expect_fast(spec("Reciprocal", {away_from_zero(s, 1802)}));
    expect_fast(spec("Clip", {rnd(s, 1803), scalar(-0.5), scalar(0.5)}));
    for (const std::string op : {"Softmax", "LogSoftmax"}) {
      expect_fast(spec(op, {rnd(s, 1804)}, {{"axis", int64_t{1}}}));
      expect_fast(spec(op, {rnd(s, 1805)}));
    }
  }
}

TEST(GradOpsFast, DataMovement) {
  expect_fast(
      spec("Transpose", {rnd({2, 3, 4, 5}, 1900)}, {{"perm", std::vector<int64_t>{0, 2, 3, 1}}}));
  expect_fast(
      spec("Transpose", {rnd({2, 3, 4, 5}, 1901)}, {{"perm", std::vector<int64_t>{1, 0, 2, 3}}}));
  expect_fast(spec("Transpose", {rnd({64, 48, 40}, 1902)}));
  expect_fast(spec(
      "Slice", {rnd({4, 5, 6}, 1903), ints({1, 5}), ints({4, 0}), ints({0, 2}), ints({2, -1})}));
  expect_fast(spec("Concat", {rnd({2, 3, 4}, 1904), rnd({2, 5, 4}, 1905)}, {{"axis", int64_t{1}}}));
  expect_fast(spec("Pad", {rnd({2, 3, 4}, 1906), ints({0, 1, 2, 0, 2, 1})}));
}

// ---- mixq.FakeQuant ---------------------------------------------------------------------------

TEST(GradOpsFakeQuant, StraightThroughInsideZeroOutside) {
  // Signed 4-bit grid with zero point 2: [lo, hi] = [(-8 - 2) * 0.5, (7 - 2) * 0.5] = [-5, 2.5].
  const Attrs attrs = {
      {"scale", 0.5f}, {"zero_point", int64_t{2}}, {"qmin", int64_t{-8}}, {"qmax", int64_t{7}}};
  for (Impl impl : {Impl::fast, Impl::reference}) {
    NodeKernel fq("FakeQuant", {DType::f32}, {DType::f32}, attrs, 13, impl, "mixq");
    Kernel* k = fq.k.get();
    ASSERT_TRUE(k->has_backward());
    Tensor x = Tensor::from<float>({8}, {-7.f, -5.01f, -5.f, -1.3f, 0.f, 2.4f, 2.5f, 2.6f}), y, gx;
    k->forward({&x}, {&y});
    Tensor gy = Tensor::from<float>({8}, {1, 2, 3, 4, 5, 6, 7, 8});
    k->backward({&x}, {&y}, {&gy}, {&gx});
    EXPECT_EQ(gx.to_floats(), (std::vector<float>{0, 0, 3, 4, 5, 6, 7, 0}));
    // The forward really quantizes: the STE is not the forward's derivative.
    EXPECT_FLOAT_EQ(y.data<float>()[3], -1.5f);
  }
}

TEST(GradOpsFakeQuant, LargeTensorMatchesTheDefinition) {
  NodeKernel fq("FakeQuant", {DType::f32}, {DType::f32},
                {{"scale", 0.02f},
                 {"zero_point", int64_t{128}},
                 {"qmin", int64_t{0}},
                 {"qmax", int64_t{255}}},
                13, Impl::fast, "mixq");
  Kernel* k = fq.k.get();
  Tensor x = random_tensor(DType::f32, {1 << 16}, 3, 2.0), y, gx;
  Tensor gy = random_tensor(DType::f32, {1 << 16}, 4);
  k->forward({&x}, {&y});
  k->backward({&x}, {&y}, {&gy}, {&gx});
  const float lo = (0 - 128) * 0.02f, hi = (255 - 128) * 0.02f;
  int64_t zeroed = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x.data<float>()[i];
    const bool inside = v >= lo && v <= hi;
    zeroed += !inside;
    ASSERT_EQ(gx.data<float>()[i], inside ? gy.data<float>()[i] : 0.f) << i;
  }
  EXPECT_GT(zeroed, 0);
}

}  // namespace
