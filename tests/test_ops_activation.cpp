// Activation ops: values against a direct scalar formula, attribute and opset forms (Clip,
// Softmax), PRelu broadcasting, fast-vs-reference agreement, and errors naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "base/error.h"
#include "ops/broadcast.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

namespace {

// This file's default range.
Tensor random_f32(const Shape& s, std::mt19937& rng) {
  return mixq::test::random_f32(s, rng, -3.0f, 3.0f);
}

// f applied to every element of x, computed in double.
Tensor map(const Tensor& x, const std::function<double(double)>& f) {
  Tensor y(DType::f32, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i)
    y.data<float>()[i] = static_cast<float>(f(x.get_double(i)));
  return y;
}

const Impl kBoth[] = {Impl::reference, Impl::fast};

}  // namespace

TEST(OpsActivationPointwise, MatchFormulaWithAttributes) {
  const Tensor x = f32({10}, {-30, -4, -1.5f, -0.5f, -0.01f, 0, 0.2f, 1, 3.5f, 40});
  struct Case {
    const char* op;
    std::map<std::string, Attribute> attrs;
    std::function<double(double)> f;
  };
  const double selu_a = 1.6732632423543772, selu_g = 1.0507009873554805;
  const std::vector<Case> cases = {
      {"Relu", {}, [](double v) { return v > 0 ? v : 0; }},
      {"LeakyRelu", {}, [](double v) { return v > 0 ? v : 0.01 * v; }},
      {"LeakyRelu", {{"alpha", 0.2f}}, [](double v) { return v > 0 ? v : 0.2 * v; }},
      {"Sigmoid", {}, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"HardSigmoid", {}, [](double v) { return std::clamp(0.2 * v + 0.5, 0.0, 1.0); }},
      {"HardSigmoid",
       {{"alpha", 0.5f}, {"beta", 0.25f}},
       [](double v) { return std::clamp(0.5 * v + 0.25, 0.0, 1.0); }},
      {"HardSwish", {}, [](double v) { return v * std::clamp(v / 6 + 0.5, 0.0, 1.0); }},
      {"Elu", {}, [](double v) { return v > 0 ? v : std::exp(v) - 1; }},
      {"Elu", {{"alpha", 2.0f}}, [](double v) { return v > 0 ? v : 2 * (std::exp(v) - 1); }},
      {"Selu",
       {},
       [&](double v) { return v > 0 ? selu_g * v : selu_g * selu_a * (std::exp(v) - 1); }},
      {"Selu",
       {{"alpha", 2.0f}, {"gamma", 3.0f}},
       [](double v) { return v > 0 ? 3 * v : 3 * 2 * (std::exp(v) - 1); }},
      {"Softplus", {}, [](double v) { return std::log(1 + std::exp(v)); }},
      {"Softsign", {}, [](double v) { return v / (1 + std::fabs(v)); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    for (Impl impl : kBoth) expect_close(run(c.op, {x}, impl, c.attrs), map(x, c.f), 1e-6, 1e-7);
  }
}

TEST(OpsActivationPointwise, DoubleAndIntegerInputs) {
  Tensor d = Tensor::from<double>({3}, {-800, 0.5, 800});
  Tensor s = run("Sigmoid", {d});
  EXPECT_GE(s.data<double>()[0], 0.0);
  EXPECT_LT(s.data<double>()[0], 1e-300);
  EXPECT_NEAR(s.data<double>()[1], 1 / (1 + std::exp(-0.5)), 1e-15);
  EXPECT_EQ(s.data<double>()[2], 1.0);
  expect_close(run("Relu", {Tensor::from<int32_t>({3}, {-5, 0, 9})}),
               Tensor::from<int32_t>({3}, {0, 0, 9}));
}

TEST(OpsActivationPRelu, BroadcastSlope) {
  std::mt19937 rng(5);
  Tensor x = random_f32({2, 3, 2, 2}, rng);
  for (Shape slope_shape :
       {Shape{3, 1, 1}, Shape{1, 3, 1, 1}, Shape{1}, Shape{2}, Shape{2, 3, 2, 2}}) {
    SCOPED_TRACE(shape_str(slope_shape));
    Tensor slope = random_f32(slope_shape, rng, 0.0f, 1.0f);
    Tensor want(DType::f32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      // Index of the slope element that broadcasts onto x's flat index i.
      int64_t rest = i, idx = 0, stride = 1;
      for (size_t k = 0; k < 4; ++k) {
        const int64_t coord = rest % x.shape()[3 - k];
        rest /= x.shape()[3 - k];
        if (k < slope_shape.size()) {
          const int64_t sd = slope_shape[slope_shape.size() - 1 - k];
          idx += (sd == 1 ? 0 : coord) * stride;
          stride *= sd;
        }
      }
      const float v = x.data<float>()[i];
      want.data<float>()[i] = v < 0 ? v * slope.data<float>()[idx] : v;
    }
    for (Impl impl : kBoth) expect_close(run("PRelu", {x, slope}, impl), want);
  }
}

// Models converted from opset 6 keep a [C] slope meant for dimension 1.
TEST(OpsActivationPRelu, LegacyPerChannelSlope) {
  Tensor x = f32({1, 2, 3}, {-1, 2, -3, -4, 5, -6});
  Tensor slope = f32({2}, {0.5f, 0.25f});
  for (Impl impl : kBoth)
    expect_close(run("PRelu", {x, slope}, impl), f32({1, 2, 3}, {-0.5f, 2, -1.5f, -1, 5, -1.5f}));
}

TEST(OpsActivationPRelu, SlopeThatDoesNotBroadcastToInputThrows) {
  for (Impl impl : kBoth) {
    // [2,3] broadcasts with [3] into [2,3] but PRelu's slope may not grow the input.
    std::string msg = error_of([&] { run("PRelu", {f32({3}, {}), f32({2, 3}, {})}, impl); });
    EXPECT_NE(msg.find("PRelu node 'n0'"), std::string::npos) << msg;
    msg = error_of([&] { run("PRelu", {f32({2, 3}, {}), f32({2}, {})}, impl); });
    EXPECT_NE(msg.find("PRelu node 'n0'"), std::string::npos) << msg;
  }
}

TEST(OpsActivationClip, AttributeFormBeforeOpset11) {
  Tensor x = f32({5}, {-3, -0.5f, 0, 0.7f, 9});
  for (Impl impl : kBoth) {
    expect_close(run("Clip", {x}, impl, {{"min", -1.0f}, {"max", 0.5f}}, 6),
                 f32({5}, {-1, -0.5f, 0, 0.5f, 0.5f}));
    expect_close(run("Clip", {x}, impl, {{"max", 0.5f}}, 6), f32({5}, {-3, -0.5f, 0, 0.5f, 0.5f}));
    expect_close(run("Clip", {x}, impl, {}, 6), x);
  }
}

TEST(OpsActivationClip, InputFormFromOpset11) {
  Tensor x = f32({5}, {-3, -0.5f, 0, 0.7f, 9});
  const Tensor none;
  for (Impl impl : kBoth) {
    expect_close(run("Clip", {x, f32({}, {-1}), f32({}, {0.5f})}, impl, {}, 11),
                 f32({5}, {-1, -0.5f, 0, 0.5f, 0.5f}));
    expect_close(run("Clip", {x, none, f32({}, {0.5f})}, impl, {}, 13),
                 f32({5}, {-3, -0.5f, 0, 0.5f, 0.5f}));
    expect_close(run("Clip", {x, f32({}, {0})}, impl, {}, 13), f32({5}, {0, 0, 0, 0.7f, 9}));
    expect_close(run("Clip", {x}, impl, {}, 13), x);
    // min > max gives max everywhere, as numpy's clip.
    expect_close(run("Clip", {x, f32({}, {2}), f32({}, {1})}, impl, {}, 13),
                 f32({5}, {1, 1, 1, 1, 1}));
  }
  Tensor q = Tensor::from<int8_t>({4}, {-128, -5, 5, 127});
  expect_close(run("Clip", {q, Tensor::from<int8_t>({}, {-10}), none}, Impl::fast, {}, 13),
               Tensor::from<int8_t>({4}, {-10, -5, 5, 127}));
  expect_close(
      run("Clip", {Tensor::from<int64_t>({3}, {-9, 3, 99}), none, Tensor::from<int64_t>({}, {4})}),
      Tensor::from<int64_t>({3}, {-9, 3, 4}));
}

TEST(OpsActivationClip, NonScalarBoundThrowsNamingNode) {
  std::string msg = error_of([] {
    run("Clip", {f32({2}, {1, 2}), f32({2}, {0, 0})}, Impl::reference, {}, 13);
  });
  EXPECT_NE(msg.find("Clip node 'n0'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scalar"), std::string::npos) << msg;
}

namespace {
// Softmax of x seen as [outer, len, inner] along len, in double.
Tensor softmax_formula(const Tensor& x, int64_t outer, int64_t len, int64_t inner, bool log) {
  Tensor y(DType::f32, x.shape());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < len; ++j) sum += std::exp(x.get_double((o * len + j) * inner + i));
      for (int64_t j = 0; j < len; ++j) {
        const int64_t k = (o * len + j) * inner + i;
        const double v = x.get_double(k);
        y.data<float>()[k] = static_cast<float>(log ? v - std::log(sum) : std::exp(v) / sum);
      }
    }
  return y;
}
}  // namespace

TEST(OpsActivationSoftmax, AxisSemanticsByOpset) {
  std::mt19937 rng(11);
  Tensor x = random_f32({2, 3, 4}, rng);
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    const bool log = std::string(op) == "LogSoftmax";
    SCOPED_TRACE(op);
    for (Impl impl : kBoth) {
      // Opset 13: one axis; default -1.
      expect_close(run(op, {x}, impl, {}, 13), softmax_formula(x, 6, 4, 1, log));
      expect_close(run(op, {x}, impl, {{"axis", int64_t{1}}}, 13),
                   softmax_formula(x, 2, 3, 4, log));
      expect_close(run(op, {x}, impl, {{"axis", int64_t{0}}}, 13),
                   softmax_formula(x, 1, 2, 12, log));
      expect_close(run(op, {x}, impl, {{"axis", int64_t{-2}}}, 13),
                   softmax_formula(x, 2, 3, 4, log));
      // Before 13: flattened to 2D at axis; default 1.
      expect_close(run(op, {x}, impl, {}, 11), softmax_formula(x, 2, 12, 1, log));
      expect_close(run(op, {x}, impl, {{"axis", int64_t{0}}}, 11),
                   softmax_formula(x, 1, 24, 1, log));
      expect_close(run(op, {x}, impl, {{"axis", int64_t{2}}}, 11),
                   softmax_formula(x, 6, 4, 1, log));
    }
  }
}

TEST(OpsActivationSoftmax, LargeInputsAreStable) {
  Tensor x = f32({2, 3}, {1000, 1001, 1002, -1000, -1001, -1002});
  for (Impl impl : kBoth) {
    expect_close(
        run("Softmax", {x}, impl),
        f32({2, 3}, {0.09003057f, 0.24472847f, 0.66524096f, 0.66524096f, 0.24472847f, 0.09003057f}),
        1e-5);
    expect_close(run("LogSoftmax", {x}, impl),
                 f32({2, 3}, {-2.40760596f, -1.40760596f, -0.40760596f, -0.40760596f, -1.40760596f,
                              -2.40760596f}),
                 1e-5);
  }
}

TEST(OpsActivationSoftmax, AxisOutOfRangeThrowsNamingNode) {
  for (Impl impl : kBoth) {
    std::string msg = error_of([&] {
      run("Softmax", {f32({2, 3}, {})}, impl, {{"axis", int64_t{2}}}, 13);
    });
    EXPECT_NE(msg.find("Softmax node 'n0'"), std::string::npos) << msg;
  }
}

TEST(OpsActivationFast, MatchesReference) {
  std::mt19937 rng(13);
  const std::vector<Shape> shapes = {{7}, {2, 3, 5}, {0, 3}, {4, 64, 150}};
  struct Case {
    const char* op;
    std::map<std::string, Attribute> attrs;
    int64_t opset;
    std::vector<Tensor> extra;  // bound / slope inputs after x
  };
  const std::vector<Case> cases = {
      {"Relu", {}, 13, {}},
      {"LeakyRelu", {{"alpha", 0.1f}}, 13, {}},
      {"Sigmoid", {}, 13, {}},
      {"HardSigmoid", {}, 13, {}},
      {"HardSwish", {}, 14, {}},
      {"Elu", {}, 13, {}},
      {"Selu", {}, 13, {}},
      {"Softplus", {}, 13, {}},
      {"Softsign", {}, 13, {}},
      {"Clip", {{"min", -1.0f}, {"max", 2.0f}}, 6, {}},
      {"Clip", {}, 13, {f32({}, {-0.5f}), f32({}, {0.5f})}},
      {"PRelu", {}, 13, {f32({1}, {0.25f})}},
  };
  for (const Case& c : cases)
    for (const Shape& s : shapes) {
      SCOPED_TRACE(std::string(c.op) + " " + shape_str(s));
      std::vector<Tensor> in = {random_f32(s, rng)};
      in.insert(in.end(), c.extra.begin(), c.extra.end());
      std::string impl;
      Tensor fast = run(c.op, in, Impl::fast, c.attrs, c.opset, &impl);
      EXPECT_EQ(impl, "fast");
      expect_close(fast, run(c.op, in, Impl::reference, c.attrs, c.opset), 1e-6, 0);
    }
}

TEST(OpsActivationFast, SoftmaxMatchesReferenceOnRandomShapes) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> rank_d(1, 4), dim_d(1, 9);
  std::vector<Shape> shapes = {{64, 1000}, {2, 40, 30, 30}, {1, 300, 2}};
  for (int i = 0; i < 12; ++i) {
    Shape s(rank_d(rng));
    for (auto& d : s) d = dim_d(rng);
    shapes.push_back(s);
  }
  for (const char* op : {"Softmax", "LogSoftmax"})
    for (const Shape& s : shapes)
      for (int64_t opset : {11, 13})
        for (int64_t axis = -static_cast<int64_t>(s.size()); axis < static_cast<int64_t>(s.size());
             ++axis) {
          SCOPED_TRACE(std::string(op) + " " + shape_str(s) + " axis " + std::to_string(axis) +
                       " opset " + std::to_string(opset));
          Tensor x = random_f32(s, rng, -20.0f, 20.0f);
          std::string impl;
          Tensor fast = run(op, {x}, Impl::fast, {{"axis", axis}}, opset, &impl);
          EXPECT_EQ(impl, "fast");
          expect_close(fast, run(op, {x}, Impl::reference, {{"axis", axis}}, opset), 1e-5, 3e-7);
        }
}

// The vectorisable exp behind the fast Exp, Sigmoid and Softmax paths.
TEST(OpsActivationFast, VexpIsWithinTwoUlpOfExp) {
  float worst = 0;
  for (int i = -100000; i <= 100000; ++i) {
    const float x = static_cast<float>(i) * 0.001f;
    const float want = std::exp(x), got = vexp(x);
    if (x < -87.0f) {
      EXPECT_LE(std::fabs(got - want), 2e-38f) << x;
      continue;
    }
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  EXPECT_LT(worst, 2.4e-7f);  // 2 ulp
  EXPECT_EQ(vexp(0.0f), 1.0f);
  EXPECT_EQ(vexp(-1000.0f), 0.0f);
  EXPECT_EQ(vexp(89.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(vexp(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(vexp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_TRUE(std::isnan(vexp(std::nanf(""))));
  EXPECT_GT(vexp(88.7f), 3.0e38f);
}
