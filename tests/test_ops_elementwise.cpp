// Elementwise ops: values against hand results or a direct scalar formula, numpy broadcasting
// edge cases, fast-vs-reference agreement on random shapes, and errors naming the node.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "base/error.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

namespace {

Tensor i64(Shape s, std::vector<int64_t> v) {
  return Tensor::from<int64_t>(std::move(s), v);
}
Tensor i32(Shape s, std::vector<int32_t> v) {
  return Tensor::from<int32_t>(std::move(s), v);
}
Tensor boolean(Shape s, std::vector<bool> v) {
  Tensor t(DType::boolean, std::move(s));
  for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i];
  return t;
}

// This file's default range.
Tensor random_f32(const Shape& s, std::mt19937& rng) {
  return mixq::test::random_f32(s, rng, -2.0f, 2.0f);
}

// Index into a tensor of shape `s` broadcast to `out`, from the output's flat index.
int64_t source_index(int64_t flat, const Shape& out, const Shape& s) {
  int64_t idx = 0, stride = 1;
  for (size_t k = 0; k < out.size(); ++k) {
    const size_t d = out.size() - 1 - k;
    const int64_t coord = flat % out[d];
    flat /= out[d];
    if (k < s.size()) {
      const int64_t sd = s[s.size() - 1 - k];
      idx += (sd == 1 ? 0 : coord) * stride;
      stride *= sd;
    }
  }
  return idx;
}

// Expected f(a, b) under broadcasting, computed index by index.
Tensor expected_binary(const Tensor& a, const Tensor& b, const Shape& out,
                       const std::function<double(double, double)>& f) {
  Tensor t(DType::f32, out);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = static_cast<float>(f(a.get_double(source_index(i, out, a.shape())),
                                              b.get_double(source_index(i, out, b.shape()))));
  return t;
}

const Impl kBoth[] = {Impl::reference, Impl::fast};

}  // namespace

TEST(OpsElementwiseArith, FloatHandValues) {
  Tensor a = f32({4}, {1.5f, -2, 3, 0.25f}), b = f32({4}, {0.5f, 4, -3, 2});
  for (Impl impl : kBoth) {
    expect_close(run("Add", {a, b}, impl), f32({4}, {2, 2, 0, 2.25f}));
    expect_close(run("Sub", {a, b}, impl), f32({4}, {1, -6, 6, -1.75f}));
    expect_close(run("Mul", {a, b}, impl), f32({4}, {0.75f, -8, -9, 0.5f}));
    expect_close(run("Div", {a, b}, impl), f32({4}, {3, -0.5f, -1, 0.125f}));
  }
}

TEST(OpsElementwiseArith, DoubleAndInt64) {
  Tensor a = Tensor::from<double>({3}, {1.25, -4, 9}), b = Tensor::from<double>({3}, {2, 8, -3});
  expect_close(run("Mul", {a, b}), Tensor::from<double>({3}, {2.5, -32, -27}));
  // Shape arithmetic as exporters write it: int64 with a scalar.
  expect_close(run("Mul", {i64({2}, {3, 224}), i64({}, {2})}), i64({2}, {6, 448}));
  expect_close(run("Sub", {i64({2}, {3, 224}), i64({}, {5})}), i64({2}, {-2, 219}));
}

TEST(OpsElementwiseArith, IntegerDivTruncatesTowardZero) {
  expect_close(run("Div", {i32({5}, {7, -7, 7, -7, INT32_MIN}), i32({5}, {2, 2, -2, -2, -1})}),
               i32({5}, {3, -3, -3, 3, INT32_MIN}));
  expect_close(run("Div", {i64({2}, {-9, 9}), i64({}, {4})}), i64({2}, {-2, 2}));
  Tensor u = Tensor::from<uint8_t>({2}, {200, 7});
  expect_close(run("Div", {u, Tensor::from<uint8_t>({2}, {3, 2})}),
               Tensor::from<uint8_t>({2}, {66, 3}));
}

TEST(OpsElementwiseArith, IntegerOverflowWraps) {
  expect_close(run("Add", {i32({1}, {INT32_MAX}), i32({1}, {1})}), i32({1}, {INT32_MIN}));
  expect_close(run("Add", {Tensor::from<uint8_t>({1}, {250}), Tensor::from<uint8_t>({1}, {10})}),
               Tensor::from<uint8_t>({1}, {4}));
  expect_close(run("Mul", {Tensor::from<int16_t>({1}, {300}), Tensor::from<int16_t>({1}, {300})}),
               Tensor::from<int16_t>({1}, {static_cast<int16_t>(90000 - 65536 * 1)}));
}

TEST(OpsElementwiseArith, IntegerDivisionByZeroThrowsNamingNode) {
  std::string msg = error_of([] { run("Div", {i64({2}, {1, 2}), i64({2}, {1, 0})}); });
  EXPECT_NE(msg.find("Div node 'n0'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("division by zero"), std::string::npos) << msg;
}

TEST(OpsElementwiseArith, PowMixedTypes) {
  for (Impl impl : kBoth)
    expect_close(run("Pow", {f32({3}, {2, 3, 4}), f32({3}, {2, 0.5f, -1})}, impl),
                 f32({3}, {4, std::sqrt(3.0f), 0.25f}));
  expect_close(run("Pow", {i64({4}, {2, -3, 5, 2}), i64({4}, {10, 3, 0, -1})}),
               i64({4}, {1024, -27, 1, 0}));
  expect_close(run("Pow", {f32({2}, {2, 3}), i64({2}, {3, -1})}), f32({2}, {8, 1.0f / 3}));
  expect_close(run("Pow", {i32({2}, {4, 2}), f32({2}, {0.5f, 3})}), i32({2}, {2, 8}));
  // Broadcast exponent: x ** [1, 2] over rows.
  expect_close(run("Pow", {f32({2, 2}, {2, 3, 4, 5}), f32({2}, {1, 2})}),
               f32({2, 2}, {2, 9, 4, 25}));
}

// Sub is not commutative, so these also check that operands keep their order.
TEST(OpsElementwiseBroadcast, EdgeCases) {
  struct Case {
    Shape a, b, out;
  };
  const Case cases[] = {
      {{2, 3, 4}, {4}, {2, 3, 4}},     // rank mismatch
      {{4}, {2, 3, 4}, {2, 3, 4}},     // rank mismatch, other side
      {{3, 1}, {1, 4}, {3, 4}},        // size-1 dims on both sides
      {{2, 1, 3}, {4, 1}, {2, 4, 3}},  // both, with rank mismatch
      {{}, {2, 3}, {2, 3}},            // rank-0 scalar
      {{1, 1}, {3}, {1, 3}},           // size-1 everywhere on one side
      {{0, 3}, {1, 3}, {0, 3}},        // 0-size dim
      {{2, 0}, {2, 1}, {2, 0}},        // 0-size dim against 1
      {{1}, {0}, {0}},                 // 0-size output from a 1
      {{2, 3, 1, 5}, {3, 4, 1}, {2, 3, 4, 5}},
  };
  std::mt19937 rng(1);
  for (const Case& c : cases) {
    Tensor a = random_f32(c.a, rng), b = random_f32(c.b, rng);
    Tensor want = expected_binary(a, b, c.out, [](double x, double y) { return x - y; });
    for (Impl impl : kBoth) {
      SCOPED_TRACE(shape_str(c.a) + " - " + shape_str(c.b));
      expect_close(run("Sub", {a, b}, impl), want, 1e-6, 1e-6);
    }
  }
}

TEST(OpsElementwiseBroadcast, IncompatibleShapesThrowNamingNode) {
  for (Impl impl : kBoth) {
    std::string msg = error_of([&] { run("Add", {f32({2, 3}, {}), f32({4}, {})}, impl); });
    EXPECT_NE(msg.find("Add node 'n0'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[2,3]"), std::string::npos) << msg;
    msg = error_of([&] { run("Max", {f32({2}, {}), f32({2}, {}), f32({3}, {})}, impl); });
    EXPECT_NE(msg.find("Max node 'n0'"), std::string::npos) << msg;
  }
  std::string msg = error_of([] {
    run("Where", {boolean({2}, {true, false}), f32({3}, {}), f32({1}, {})});
  });
  EXPECT_NE(msg.find("Where node 'n0'"), std::string::npos) << msg;
  msg = error_of([] { run("Equal", {i64({2}, {}), i64({0}, {})}); });
  EXPECT_NE(msg.find("Equal node 'n0'"), std::string::npos) << msg;
}

TEST(OpsElementwiseVariadic, MaxMinSumMeanBroadcast) {
  Tensor a = f32({2, 3}, {1, -5, 3, 0, 8, -2}), b = f32({3}, {2, -1, 0}), c = f32({}, {1});
  auto fold = [&](const std::function<double(double, double)>& f) {
    Tensor ab = expected_binary(a, b, {2, 3}, f);
    return expected_binary(ab, c, {2, 3}, f);
  };
  auto mx = [](double x, double y) { return std::max(x, y); };
  auto mn = [](double x, double y) { return std::min(x, y); };
  auto add = [](double x, double y) { return x + y; };
  expect_close(run("Max", {a, b, c}), fold(mx));
  expect_close(run("Min", {a, b, c}), fold(mn));
  expect_close(run("Sum", {a, b, c}), fold(add));
  Tensor mean = fold(add);
  for (int64_t i = 0; i < mean.numel(); ++i) mean.data<float>()[i] /= 3;
  expect_close(run("Mean", {a, b, c}), mean);
  // One input is a copy; two f32 inputs take the fast path.
  expect_close(run("Max", {a}), a);
  std::string impl;
  expect_close(run("Min", {a, b}, Impl::fast, {}, 13, &impl), expected_binary(a, b, {2, 3}, mn));
  EXPECT_EQ(impl, "fast");
  expect_close(run("Max", {i64({3}, {1, 9, -4}), i64({1}, {2})}), i64({3}, {2, 9, 2}));
  expect_close(run("Sum", {i32({2}, {1, 2}), i32({2}, {3, 4}), i32({2}, {5, 6})}),
               i32({2}, {9, 12}));
}

TEST(OpsElementwiseVariadic, MaxMinPropagateNaN) {
  const float nan = std::nanf("");
  for (Impl impl : kBoth) {
    Tensor r = run("Max", {f32({2}, {nan, 1}), f32({2}, {1, nan})}, impl);
    EXPECT_TRUE(std::isnan(r.data<float>()[0]) && std::isnan(r.data<float>()[1]));
    r = run("Min", {f32({2}, {nan, 1}), f32({2}, {1, nan})}, impl);
    EXPECT_TRUE(std::isnan(r.data<float>()[0]) && std::isnan(r.data<float>()[1]));
  }
}

TEST(OpsElementwiseCompare, BoolOutputsWithBroadcast) {
  Tensor a = f32({2, 2}, {1, 2, 3, 4}), b = f32({2}, {2, 3});
  // a vs b row-wise: [1?2, 2?3; 3?2, 4?3]
  expect_close(run("Equal", {a, b}), boolean({2, 2}, {false, false, false, false}));
  expect_close(run("Less", {a, b}), boolean({2, 2}, {true, true, false, false}));
  expect_close(run("Greater", {a, b}), boolean({2, 2}, {false, false, true, true}));
  expect_close(run("LessOrEqual", {a, f32({}, {3})}), boolean({2, 2}, {true, true, true, false}));
  expect_close(run("GreaterOrEqual", {a, f32({}, {3})}),
               boolean({2, 2}, {false, false, true, true}));
  expect_close(run("Equal", {i64({3}, {1, -1, 7}), i64({1}, {7})}),
               boolean({3}, {false, false, true}));
  expect_close(run("Equal", {boolean({2}, {true, false}), boolean({2}, {true, true})}),
               boolean({2}, {true, false}));
}

TEST(OpsElementwiseLogic, NotAndOrXorWhere) {
  Tensor p = boolean({2, 2}, {true, true, false, false}), q = boolean({2}, {true, false});
  expect_close(run("Not", {p}), boolean({2, 2}, {false, false, true, true}));
  expect_close(run("And", {p, q}), boolean({2, 2}, {true, false, false, false}));
  expect_close(run("Or", {p, q}), boolean({2, 2}, {true, true, true, false}));
  expect_close(run("Xor", {p, q}), boolean({2, 2}, {false, true, true, false}));
  // cond [2,1] x [1,3] y scalar -> [2,3]
  Tensor cond = boolean({2, 1}, {true, false});
  expect_close(run("Where", {cond, f32({1, 3}, {1, 2, 3}), f32({}, {-1})}),
               f32({2, 3}, {1, 2, 3, -1, -1, -1}));
  expect_close(
      run("Where", {boolean({3}, {false, true, false}), i64({3}, {1, 2, 3}), i64({3}, {7, 8, 9})}),
      i64({3}, {7, 2, 9}));
  expect_close(run("Where", {q, boolean({2}, {false, false}), boolean({}, {true})}),
               boolean({2}, {false, true}));
}

TEST(OpsElementwiseUnary, FloatFunctionsMatchFormula) {
  const std::vector<float> xs = {-2.5f, -1, -0.3f, 0, 0.3f, 0.5f, 1, 2.5f, 7};
  const std::vector<float> pos = {0.01f, 0.3f, 0.5f, 1, 2.5f, 7, 100};
  const std::vector<float> unit = {-0.9f, -0.5f, 0, 0.3f, 0.99f};
  const std::vector<float> ge1 = {1, 1.5f, 3, 10};
  struct Case {
    const char* op;
    const std::vector<float>* in;
    double (*f)(double);
  };
  const Case cases[] = {
      {"Neg", &xs, [](double x) { return -x; }},
      {"Abs", &xs, [](double x) { return std::fabs(x); }},
      {"Exp", &xs, [](double x) { return std::exp(x); }},
      {"Log", &pos, [](double x) { return std::log(x); }},
      {"Sqrt", &pos, [](double x) { return std::sqrt(x); }},
      {"Reciprocal", &pos, [](double x) { return 1 / x; }},
      {"Floor", &xs, [](double x) { return std::floor(x); }},
      {"Ceil", &xs, [](double x) { return std::ceil(x); }},
      {"Tanh", &xs, [](double x) { return std::tanh(x); }},
      {"Erf", &xs, [](double x) { return std::erf(x); }},
      {"Sign", &xs, [](double x) { return x > 0   ? 1.0
                                          : x < 0 ? -1.0
                                                  : 0.0; }},
      {"Sin", &xs, [](double x) { return std::sin(x); }},
      {"Cos", &xs, [](double x) { return std::cos(x); }},
      {"Tan", &unit, [](double x) { return std::tan(x); }},
      {"Asin", &unit, [](double x) { return std::asin(x); }},
      {"Acos", &unit, [](double x) { return std::acos(x); }},
      {"Atan", &xs, [](double x) { return std::atan(x); }},
      {"Sinh", &xs, [](double x) { return std::sinh(x); }},
      {"Cosh", &xs, [](double x) { return std::cosh(x); }},
      {"Asinh", &xs, [](double x) { return std::asinh(x); }},
      {"Acosh", &ge1, [](double x) { return std::acosh(x); }},
      {"Atanh", &unit, [](double x) { return std::atanh(x); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    const auto& in = *c.in;
    const int64_t n = static_cast<int64_t>(in.size());
    std::vector<float> want;
    for (float x : in) want.push_back(static_cast<float>(c.f(x)));
    for (Impl impl : kBoth) expect_close(run(c.op, {f32({n}, in)}, impl), f32({n}, want), 1e-6);
    std::vector<double> wd;
    for (float x : in) wd.push_back(c.f(x));
    std::vector<double> ind(in.begin(), in.end());
    expect_close(run(c.op, {Tensor::from<double>({n}, ind)}), Tensor::from<double>({n}, wd), 1e-12);
  }
}

TEST(OpsElementwiseUnary, RoundHalfToEven) {
  Tensor x = f32({9}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, 2.6f, -2.6f});
  for (Impl impl : kBoth)
    expect_close(run("Round", {x}, impl), f32({9}, {0, 2, 2, -0.0f, -2, -2, 2, 3, -3}), 0, 0);
}

TEST(OpsElementwiseUnary, IntegerNegAbsSign) {
  expect_close(run("Neg", {i32({3}, {5, -7, INT32_MIN})}), i32({3}, {-5, 7, INT32_MIN}));
  expect_close(run("Abs", {i64({3}, {5, -7, 0})}), i64({3}, {5, 7, 0}));
  expect_close(run("Sign", {i64({3}, {5, -7, 0})}), i64({3}, {1, -1, 0}));
  expect_close(run("Abs", {Tensor::from<int8_t>({2}, {-128, -3})}),
               Tensor::from<int8_t>({2}, {-128, 3}));
}

TEST(OpsElementwiseUnary, UnsupportedTypeIsRefused) {
  // Exp of int64 has no implementation; building the executor says so and names the node.
  std::string msg = error_of([] { run("Exp", {i64({1}, {1})}); });
  EXPECT_NE(msg.find("Exp node 'n0'"), std::string::npos) << msg;
  msg = error_of([] { run("Add", {f32({1}, {1}), i64({1}, {1})}); });
  EXPECT_NE(msg.find("Add node 'n0'"), std::string::npos) << msg;
}

// Every fast binary path against the reference on the layouts it specialises (both operand
// orders) and on random broadcast shapes that fall back to the general loop.
TEST(OpsElementwiseFast, BinaryMatchesReference) {
  const std::vector<std::pair<Shape, Shape>> layouts = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}},   // same shape
      {{2, 3, 4, 5}, {}},             // rank-0 scalar
      {{1}, {2, 3, 4, 5}},            // one-element operand first
      {{2, 3, 4, 5}, {3, 1, 1}},      // per-channel [C,1,1]
      {{1, 3, 1, 1}, {2, 3, 4, 5}},   // per-channel [1,C,1,1] first
      {{2, 3, 4, 5}, {5}},            // trailing bias
      {{4, 5}, {2, 3, 4, 5}},         // trailing block first
      {{2, 1, 4, 1}, {1, 3, 1, 5}},   // general: both sides broadcast
      {{2, 16, 32, 33}, {16, 1, 1}},  // large enough for the parallel loops
      {{2, 16, 32, 33}, {2, 16, 32, 33}},
      {{1}, {2, 16, 32, 33}},
      {{300, 130}, {130}},
  };
  std::mt19937 rng(7);
  std::vector<std::pair<Shape, Shape>> shapes = layouts;
  std::uniform_int_distribution<int> rank_d(1, 4), dim_d(1, 6), coin(0, 2);
  for (int i = 0; i < 20; ++i) {
    Shape big(rank_d(rng));
    for (auto& d : big) d = dim_d(rng);
    Shape small = big;
    for (auto& d : small)
      if (coin(rng) == 0) d = 1;
    small.erase(small.begin(), small.begin() + std::uniform_int_distribution<int>(
                                                   0, static_cast<int>(small.size()))(rng));
    if (coin(rng)) std::swap(big, small);
    shapes.push_back({big, small});
  }
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum"}) {
    for (const auto& [sa, sb] : shapes) {
      SCOPED_TRACE(std::string(op) + " " + shape_str(sa) + " " + shape_str(sb));
      const bool pow = std::string(op) == "Pow";
      Tensor a = random_f32(sa, rng, pow ? 0.1f : -2.0f, 2.0f);
      Tensor b = random_f32(sb, rng, pow ? -3.0f : 0.5f, pow ? 3.0f : 2.0f);
      std::string impl;
      Tensor fast = run(op, {a, b}, Impl::fast, {}, 13, &impl);
      EXPECT_EQ(impl, "fast");
      expect_close(fast, run(op, {a, b}, Impl::reference), 1e-6, 0);
    }
  }
}

TEST(OpsElementwiseFast, UnaryMatchesReference) {
  std::mt19937 rng(3);
  for (const char* op : {"Neg", "Abs", "Reciprocal", "Exp", "Log", "Sqrt", "Floor", "Ceil", "Round",
                         "Tanh", "Erf"}) {
    for (Shape s : {Shape{7}, Shape{2, 3, 5}, Shape{3, 128, 129}, Shape{0, 4}}) {
      SCOPED_TRACE(std::string(op) + " " + shape_str(s));
      Tensor x = random_f32(s, rng, -4.0f, 4.0f);  // negatives give NaN for Log / Sqrt
      std::string impl;
      Tensor fast = run(op, {x}, Impl::fast, {}, 13, &impl);
      EXPECT_EQ(impl, "fast");
      expect_close(fast, run(op, {x}, Impl::reference), 1e-6, 0);
    }
  }
}

namespace {

Tensor u8_values(const Tensor& t) {
  Tensor out(DType::f32, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i)
    out.data<float>()[i] = t.dtype() == DType::u8 ? t.data<uint8_t>()[i] : t.data<int8_t>()[i];
  return out;
}

}  // namespace

// QuantizeLinear rounds half to even and saturates; values with no integer (NaN, or 0/0 from a
// zero scale) give the zero point, infinities saturate, on both implementations.
TEST(OpsQuantize, SaturatesAndMapsNanToTheZeroPoint) {
  const Tensor x = f32({8}, {0.5f, 1.5f, -3.f, 1000.f, -1000.f, NAN, INFINITY, -INFINITY});
  const Tensor zp_u8 = Tensor::from<uint8_t>({}, std::vector<uint8_t>{10});
  const Tensor zp_i8 = Tensor::from<int8_t>({}, std::vector<int8_t>{-3});
  for (Impl impl : {Impl::reference, Impl::fast}) {
    expect_close(u8_values(run("QuantizeLinear", {x, f32({}, {1.f}), zp_u8}, impl)),
                 f32({8}, {10, 12, 7, 255, 0, 10, 255, 0}));
    expect_close(u8_values(run("QuantizeLinear", {x, f32({}, {1.f}), zp_i8}, impl)),
                 f32({8}, {-3, -1, -6, 127, -128, -3, 127, -128}));
    // A zero scale: 0/0 is NaN (the zero point), x/0 is +-Inf (saturated).
    expect_close(
        u8_values(run("QuantizeLinear", {f32({3}, {0.f, 2.f, -2.f}), f32({}, {0.f}), zp_u8}, impl)),
        f32({3}, {10, 255, 0}));
  }
}
