#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "base/error.h"
#include "quant/observer.h"
#include "quant/quantizer.h"
#include "quant/scheme.h"

using namespace mixq;

namespace {
std::vector<double> as_double(const LevelSet& ls) {
  return std::vector<double>(ls.magnitudes.begin(), ls.magnitudes.end());
}
// Signed level count: each nonzero magnitude twice, zero once.
size_t signed_levels(const LevelSet& ls) {
  return 2 * ls.magnitudes.size() - 1;
}
}  // namespace

TEST(QuantScheme, Fixed4BitIsFifteenLevelsOfSevenths) {
  const LevelSet& ls = level_set(Scheme::fixed, 4);
  ASSERT_EQ(ls.magnitudes.size(), 8u);
  EXPECT_EQ(ls.denominator, 7);
  for (int k = 0; k < 8; ++k) EXPECT_FLOAT_EQ(ls.magnitudes[k], k / 7.0f);
  EXPECT_EQ(signed_levels(ls), 15u);
  EXPECT_EQ(signed_levels(level_set(Scheme::fixed, 8)), 255u);
  EXPECT_EQ(signed_levels(level_set(Scheme::fixed, 2)), 3u);
}

TEST(QuantScheme, Pot4BitLevels) {
  std::vector<double> want = {0, 1.0 / 64, 1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0 / 2, 1};
  EXPECT_EQ(as_double(level_set(Scheme::pot, 4)), want);
  EXPECT_EQ(level_set(Scheme::pot, 4).denominator, 64);
  std::vector<double> two = {0, 1};
  EXPECT_EQ(as_double(level_set(Scheme::pot, 2)), two);
}

TEST(QuantScheme, Sp2FourBitIsTheThirteenLevelsOfAlgorithmsMd) {
  const LevelSet& ls = level_set(Scheme::sp2, 4);
  std::vector<double> want = {0, 1.0 / 8, 1.0 / 4, 1.0 / 2, 5.0 / 8, 3.0 / 4, 1};
  EXPECT_EQ(as_double(ls), want);
  EXPECT_EQ(signed_levels(ls), 13u);
  EXPECT_EQ(ls.denominator, 8);
  std::vector<int64_t> ints = {0, 1, 2, 4, 5, 6, 8};
  EXPECT_EQ(ls.integers, ints);
}

TEST(QuantScheme, Sp2OtherWidthsAreSumsOfTwoPowers) {
  std::vector<double> three = {0, 0.5, 1};
  EXPECT_EQ(as_double(level_set(Scheme::sp2, 3)), three);
  // Every level of every width is q1 + q2 with q1, q2 zero or a power of two, over the max.
  for (int bits = 2; bits <= 8; ++bits) {
    const LevelSet& ls = level_set(Scheme::sp2, bits);
    EXPECT_EQ(ls.magnitudes.front(), 0.0f);
    EXPECT_EQ(ls.magnitudes.back(), 1.0f);
    for (int64_t k : ls.integers) {
      int ones = __builtin_popcountll(static_cast<unsigned long long>(k));
      EXPECT_LE(ones, 2) << "bits " << bits << " level " << k;
    }
    EXPECT_LE(signed_levels(ls), static_cast<size_t>(1) << bits);
  }
  // 5 bits: q1, q2 in {0, 1/2, 1/4, 1/8}: sums {0,1,2,3,4,5,6,8}/8.
  std::vector<int64_t> five = {0, 1, 2, 3, 4, 5, 6, 8};
  EXPECT_EQ(level_set(Scheme::sp2, 5).integers, five);
}

TEST(QuantScheme, IntegersTimesDenominatorAreExact) {
  for (int s = 0; s < kSchemeCount; ++s)
    for (int bits = 2; bits <= 8; ++bits) {
      const LevelSet& ls = level_set(static_cast<Scheme>(s), bits);
      for (size_t i = 0; i < ls.magnitudes.size(); ++i)
        EXPECT_FLOAT_EQ(ls.magnitudes[i],
                        static_cast<float>(static_cast<double>(ls.integers[i]) / ls.denominator));
    }
}

TEST(QuantScheme, NearestLevelProperty) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-0.2f, 1.3f);
  for (int s = 0; s < kSchemeCount; ++s)
    for (int bits = 2; bits <= 8; ++bits) {
      const LevelSet& ls = level_set(static_cast<Scheme>(s), bits);
      for (int t = 0; t < 500; ++t) {
        float x = std::fabs(u(rng));
        size_t k = ls.nearest(x);
        for (float m : ls.magnitudes) EXPECT_LE(std::fabs(ls.magnitudes[k] - x), std::fabs(m - x));
      }
    }
}

TEST(QuantScheme, EncodeDecodeRoundTrip) {
  // Quantized values re-quantize to themselves, and codes decode to the values.
  std::mt19937 rng(2);
  std::normal_distribution<float> g(0, 1);
  for (int s = 0; s < kSchemeCount; ++s)
    for (int bits = 2; bits <= 8; ++bits) {
      const LevelSet& ls = level_set(static_cast<Scheme>(s), bits);
      std::vector<float> x(256), q(256), q2(256);
      std::vector<int64_t> codes(256);
      for (float& v : x) v = g(rng);
      const float alpha = 1.7f;
      quantize_values(x.data(), 256, ls, alpha, q.data(), codes.data());
      EXPECT_NEAR(quantize_values(q.data(), 256, ls, alpha, q2.data()), 0.0, 1e-9);
      for (int i = 0; i < 256; ++i) {
        EXPECT_FLOAT_EQ(q2[i], q[i]);
        EXPECT_NEAR(static_cast<double>(codes[i]) * alpha / ls.denominator, q[i], 1e-6);
      }
    }
}

TEST(QuantScheme, BadBitsAndNamesThrow) {
  EXPECT_THROW(level_set(Scheme::fixed, 1), Error);
  EXPECT_THROW(level_set(Scheme::fixed, 9), Error);
  EXPECT_THROW(parse_scheme("fp4", "--scheme"), Error);
  EXPECT_EQ(parse_scheme("sp2", "--scheme"), Scheme::sp2);
}

TEST(QuantScale, MseBeatsMaxAbsOnGaussianRows) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0, 0.05f);
  for (int s = 0; s < kSchemeCount; ++s)
    for (int bits : {2, 3, 4}) {
      std::vector<float> x(576);
      for (float& v : x) v = g(rng);
      const LevelSet& ls = level_set(static_cast<Scheme>(s), bits);
      float a_max = choose_scale(x.data(), 576, static_cast<Scheme>(s), bits, ScaleMethod::maxabs);
      float a_mse = choose_scale(x.data(), 576, static_cast<Scheme>(s), bits, ScaleMethod::mse);
      double e_max = quantize_values(x.data(), 576, ls, a_max, nullptr);
      double e_mse = quantize_values(x.data(), 576, ls, a_mse, nullptr);
      EXPECT_LT(e_mse, e_max) << scheme_name(static_cast<Scheme>(s)) << bits;
    }
}

TEST(QuantScale, PerRowScalesFollowRows) {
  Tensor w = Tensor::from<float>({2, 3}, {1.2f, -2, 0.5f, 10, 4, -8});
  auto rows = choose_weight_quant(w, Scheme::fixed, 8, ScaleMethod::maxabs);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_FLOAT_EQ(rows[0].scale, 2);
  EXPECT_FLOAT_EQ(rows[1].scale, 10);
  auto tensor = choose_weight_quant(w, Scheme::fixed, 8, ScaleMethod::maxabs, false);
  EXPECT_FLOAT_EQ(tensor[0].scale, 10);
  // Rows along axis 1 (a [K,N] MatMul weight): columns are the rows.
  auto cols = choose_weight_quant(w, Scheme::fixed, 8, ScaleMethod::maxabs, true, 1);
  ASSERT_EQ(cols.size(), 3u);
  EXPECT_FLOAT_EQ(cols[1].scale, 4);
  // Fake quantization at 2 bits (levels -a, 0, a): exact values by hand.
  std::vector<RowQuant> two = {{Scheme::fixed, 2, 2}, {Scheme::fixed, 2, 10}};
  Tensor q = fake_quantize_weight(w, two);
  std::vector<float> want = {2, -2, 0, 10, 0, -10};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(q.data<float>()[i], want[i]) << i;
}

TEST(QuantObserver, MinMaxUnsignedAfterRelu) {
  Observer o;
  std::vector<float> x = {0, 1, 2, 3, 5.1f};
  o.observe(x.data(), 5);
  ActQuant q = o.compute(8, ObserverKind::minmax);
  EXPECT_EQ(q.qmin, 0);
  EXPECT_EQ(q.qmax, 255);
  EXPECT_EQ(q.zero_point, 0);
  EXPECT_FLOAT_EQ(q.scale, 5.1f / 255);
  ActQuant q4 = o.compute(4, ObserverKind::minmax);
  EXPECT_EQ(q4.qmax, 15);
  std::vector<float> y = {5.1f, 2.0f, -1.0f};
  q4.fake_quantize(y.data(), 3);
  EXPECT_FLOAT_EQ(y[0], 5.1f);
  EXPECT_FLOAT_EQ(y[1], 6 * 5.1f / 15);  // 2 / 0.34 = 5.88 -> 6
  EXPECT_FLOAT_EQ(y[2], 0);              // clipped at the unsigned floor
}

TEST(QuantObserver, AsymmetricRangeHasZeroPoint) {
  Observer o;
  std::vector<float> x = {-1, 0, 3};
  o.observe(x.data(), 3);
  ActQuant q = o.compute(8, ObserverKind::minmax);
  EXPECT_FLOAT_EQ(q.scale, 4.0f / 255);
  EXPECT_EQ(q.zero_point, 64);  // round(1 / (4/255)) = round(63.75)
  ActQuant s = o.compute(8, ObserverKind::minmax, 99.99, true);
  EXPECT_EQ(s.zero_point, 0);
  EXPECT_EQ(s.qmax, 127);
  EXPECT_FLOAT_EQ(s.scale, 3.0f / 127);
}

TEST(QuantObserver, PercentileAndMseClipOutliers) {
  Observer o;
  std::vector<float> x(100001);
  for (int i = 0; i <= 100000; ++i) x[i] = i / 100000.0f;  // uniform 0..1
  x[5000] = 20.0f;                                         // one outlier
  o.observe(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_FLOAT_EQ(o.max(), 20.0f);
  ActQuant p = o.compute(8, ObserverKind::percentile, 99.0);
  EXPECT_NEAR(p.hi(), 0.99, 0.01);
  ActQuant m = o.compute(4, ObserverKind::mse);
  EXPECT_LT(m.hi(), 2.0f);  // the MSE range gives up the single outlier
  EXPECT_THROW(Observer().compute(8, ObserverKind::minmax), Error);
}

TEST(QuantObserver, FastFakeQuantizeEqualsReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0, 3);
  for (ActQuant q : {act_quant_for_range(-2.5f, 6.0f, 8), act_quant_for_range(0, 4.0f, 4),
                     act_quant_for_range(-3, 3, 3, true), act_quant_for_range(-1e-3f, 1e-3f, 8)}) {
    std::vector<float> x(70000);
    for (float& v : x) v = g(rng);
    // Exact half-way points between levels, where rounding direction matters.
    for (int k = -300; k < 300; ++k) x[k + 300] = (k + 0.5f) * q.scale;
    std::vector<float> a = x, b = x;
    q.fake_quantize(a.data(), static_cast<int64_t>(a.size()));
    q.fake_quantize_reference(b.data(), static_cast<int64_t>(b.size()));
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(a[i], b[i]) << i << " x=" << x[i];
  }
}
