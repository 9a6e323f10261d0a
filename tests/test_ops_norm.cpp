// BatchNormalization, InstanceNormalization, LRN: reference against hand results, the fast
// BatchNormalization against the reference on random ranks and layouts, training mode
// statistics, and errors naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "base/error.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

using namespace mixq;
using mixq::test::Arg;
using mixq::test::f32;
using mixq::test::feeds_of;
using mixq::test::one_node;

namespace {

// Uniform in [-1, 1).
Tensor random_f32(const Shape& s, std::mt19937& rng) {
  return mixq::test::random_f32(s, rng, -1.f, 1.f);
}
using mixq::test::random_f32;

using Attrs = std::map<std::string, Attribute>;

std::vector<Tensor> run_all(const std::string& op, const std::vector<Arg>& args, Attrs attrs,
                            Impl impl = Impl::reference, size_t outputs = 1,
                            std::string* chosen = nullptr) {
  Executor ex(one_node(op, args, std::move(attrs), 15, outputs), impl);
  if (chosen) *chosen = ex.impl_name(0);
  return ex.run(feeds_of(args));
}

Tensor run(const std::string& op, const std::vector<Arg>& args, Attrs attrs = {},
           Impl impl = Impl::reference, std::string* chosen = nullptr) {
  return run_all(op, args, std::move(attrs), impl, 1, chosen)[0];
}

void expect_near(const Tensor& got, const Tensor& want, double rtol = 1e-4, double atol = 1e-5) {
  test::expect_close(got, want, rtol, atol);
}

Tensor to_nhwc(const Tensor& x) {
  const Shape& s = x.shape();
  const int64_t n = s[0], c = s[1], pos = x.numel() / std::max<int64_t>(n * c, 1);
  Shape o{n};
  o.insert(o.end(), s.begin() + 2, s.end());
  o.push_back(c);
  Tensor y(DType::f32, o);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j)
      for (int64_t q = 0; q < pos; ++q)
        y.data<float>()[(i * pos + q) * c + j] = x.data<float>()[(i * c + j) * pos + q];
  return y;
}

TEST(OpsNorm, BatchNormHandComputed) {
  Tensor x = f32({1, 2, 1, 2}, {1, 3, 5, 9});
  Tensor scale = f32({2}, {1, 2}), bias = f32({2}, {0, 1});
  Tensor mean = f32({2}, {1, 1}), var = f32({2}, {4, 16});
  // c0: (x - 1) / 2; c1: 2 * (x - 1) / 4 + 1.
  for (Impl impl : {Impl::reference, Impl::fast}) {
    std::string chosen;
    Tensor y =
        run("BatchNormalization", {{x}, {scale, true}, {bias, true}, {mean, true}, {var, true}},
            {{"epsilon", 0.f}}, impl, &chosen);
    expect_near(y, f32({1, 2, 1, 2}, {0, 1, 3, 5}), 1e-6, 1e-6);
    EXPECT_EQ(chosen, impl == Impl::fast ? "fast" : "ref");
  }
}

TEST(OpsNorm, BatchNormFastMatchesReference) {
  std::mt19937 rng(31);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < 30; ++i) {
    const int rank = pick(2, 5);
    Shape xs{pick(1, 4), pick(1, 9)};
    while (static_cast<int>(xs.size()) < rank) xs.push_back(pick(1, 6));
    const int64_t c = xs[1];
    Tensor x = random_f32(xs, rng, -3, 3);
    std::vector<Arg> args{{x},
                          {random_f32({c}, rng), i % 2 == 0},
                          {random_f32({c}, rng), i % 2 == 0},
                          {random_f32({c}, rng), i % 2 == 0},
                          {random_f32({c}, rng, 0.1f, 2.f), i % 2 == 0}};
    Attrs a{{"epsilon", 1e-3f}};
    Tensor want = run("BatchNormalization", args, a);
    expect_near(run("BatchNormalization", args, a, Impl::fast), want);
    if (rank >= 3) {
      a["mixq_layout"] = std::string("NHWC");
      args[0].t = to_nhwc(x);
      expect_near(run("BatchNormalization", args, a, Impl::fast), to_nhwc(want));
      expect_near(run("BatchNormalization", args, a), to_nhwc(want));
    }
  }
}

TEST(OpsNorm, BatchNormTrainingModeStatistics) {
  // One channel over a batch of two: batch mean 2, population variance 1.
  Tensor x = f32({2, 1, 1}, {1, 3});
  std::vector<Arg> args{
      {x}, {f32({1}, {2})}, {f32({1}, {0.5f})}, {f32({1}, {10})}, {f32({1}, {5})}};
  Attrs a{{"training_mode", int64_t{1}}, {"momentum", 0.5f}, {"epsilon", 0.f}};
  Executor ex(one_node("BatchNormalization", args, a, 15, 3), Impl::fast);
  EXPECT_EQ(ex.impl_name(0), "ref");
  auto out = ex.run({args[0].t, args[1].t, args[2].t, args[3].t, args[4].t});
  expect_near(out[0], f32({2, 1, 1}, {-1.5f, 2.5f}), 1e-6, 1e-6);
  expect_near(out[1], f32({1}, {6}), 1e-6, 1e-6);  // 10 * 0.5 + 2 * 0.5
  expect_near(out[2], f32({1}, {3}), 1e-6, 1e-6);  // 5 * 0.5 + 1 * 0.5
}

TEST(OpsNorm, InstanceNormHandComputed) {
  // Per (n, c): values 1, 3 -> mean 2, variance 1 -> -1, +1 before scale and shift.
  Tensor x = f32({1, 2, 2}, {1, 3, 10, 14});
  Tensor y = run("InstanceNormalization", {{x}, {f32({2}, {1, 3}), true}, {f32({2}, {0, 1}), true}},
                 {{"epsilon", 0.f}});
  expect_near(y, f32({1, 2, 2}, {-1, 1, -2, 4}), 1e-6, 1e-6);
}

TEST(OpsNorm, LrnHandComputed) {
  // size 3: channel c sums squares of c-1..c+1.
  Tensor x = f32({1, 3, 1, 1}, {1, 2, 3});
  Tensor y =
      run("LRN", {{x}}, {{"size", int64_t{3}}, {"alpha", 3.f}, {"beta", 1.f}, {"bias", 1.f}});
  // denominators: 1 + (1 + 4) = 6, 1 + 14 = 15, 1 + 13 = 14.
  expect_near(y, f32({1, 3, 1, 1}, {1.f / 6, 2.f / 15, 3.f / 14}), 1e-6, 1e-7);
  // size 2 looks at the channel itself and one after (floor before, ceil after).
  Tensor y2 =
      run("LRN", {{x}}, {{"size", int64_t{2}}, {"alpha", 2.f}, {"beta", 0.5f}, {"bias", 0.f}});
  expect_near(y2, f32({1, 3, 1, 1}, {1.f / std::sqrt(5.f), 2.f / std::sqrt(13.f), 1.f}), 1e-6,
              1e-7);
}

TEST(OpsNorm, LayerNormHandComputed) {
  // Rows [1, 3] and [2, 6]: means 2 and 4, standard deviations 1 and 2 -> -1, +1 each.
  Tensor x = f32({2, 2}, {1, 3, 2, 6});
  auto out = run_all("LayerNormalization", {{x}, {f32({2}, {2, 3}), true}, {f32({1}, {1}), true}},
                     {{"epsilon", 0.f}}, Impl::fast, 3);
  expect_near(out[0], f32({2, 2}, {-1, 4, -1, 4}), 1e-6, 1e-6);
  expect_near(out[1], f32({2, 1}, {2, 4}), 1e-6, 1e-6);
  expect_near(out[2], f32({2, 1}, {1, 0.5f}), 1e-6, 1e-6);
  // axis 0 normalizes everything: mean 3, variance 3.5.
  Tensor y = run("LayerNormalization", {{x}, {f32({}, {1}), true}}, {{"axis", int64_t{0}}});
  const double sd = std::sqrt(3.5 + 1e-5);
  expect_near(y, f32({2, 2}, {float(-2 / sd), float(0 / sd), float(-1 / sd), float(3 / sd)}));
}

TEST(OpsNorm, BadInputThrowsNamingTheNode) {
  std::mt19937 rng(1);
  Tensor p3 = random_f32({3}, rng), p2 = random_f32({2}, rng);
  for (Impl impl : {Impl::reference, Impl::fast}) {
    try {
      run("BatchNormalization", {{random_f32({4}, rng)}, {p3}, {p3}, {p3}, {p3}}, {}, impl);
      ADD_FAILURE() << "no error for rank 1";
    } catch (const Error& e) {
      EXPECT_EQ(e.where(), "BatchNormalization node 'n0'");
      EXPECT_NE(std::string(e.what()).find("rank"), std::string::npos) << e.what();
    }
    try {
      run("BatchNormalization", {{random_f32({1, 3, 2}, rng)}, {p3}, {p2}, {p3}, {p3}}, {}, impl);
      ADD_FAILURE() << "no error for a short parameter";
    } catch (const Error& e) {
      EXPECT_EQ(e.where(), "BatchNormalization node 'n0'");
    }
  }
  EXPECT_THROW(run("LRN", {{random_f32({1, 3, 2}, rng)}}, {}), Error);  // size is required
  EXPECT_THROW(run("InstanceNormalization", {{random_f32({1, 3, 2}, rng)}, {p2}, {p2}}), Error);
  EXPECT_THROW(run("LayerNormalization", {{random_f32({2, 3}, rng)}, {p2}}), Error);
}

}  // namespace
