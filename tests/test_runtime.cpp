// The runtime module: the one softmax cross-entropy (values, gradient, numerical range) and the
// output losses and agreement that evaluation, sensitivity and sweeps score outputs with.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "base/error.h"
#include "runtime/loss.h"
#include "runtime/output_compare.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

TEST(RuntimeLoss, CrossEntropyValueOnKnownLogits) {
  // Row 0: uniform logits -> ln 3. Row 1: label has the max -> correct.
  Tensor z = Tensor::from<float>({2, 3}, {0, 0, 0, 1, 3, 2});
  LossResult r = softmax_cross_entropy(z, {1, 1}, nullptr);
  const double row1 = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0)) - 3.0;
  EXPECT_NEAR(r.loss, (std::log(3.0) + row1) / 2, 1e-12);
  EXPECT_EQ(r.correct, 2u);  // ties favour the label, as eval counts top-1
}

TEST(RuntimeLoss, GradientMatchesFiniteDifferences) {
  const Shape shape = {5, 7};
  Tensor z = normal_f32(shape, 3, 2.0);
  std::vector<int64_t> labels = {0, 6, 3, 3, 1};
  Tensor g;
  softmax_cross_entropy(z, labels, &g);
  ASSERT_EQ(g.shape(), shape);
  double worst = 0;
  for (int64_t i = 0; i < z.numel(); ++i) {
    const float h = 1e-2f;
    Tensor zp = z.clone(), zm = z.clone();
    zp.data<float>()[i] += h;
    zm.data<float>()[i] -= h;
    const double dh = static_cast<double>(zp.data<float>()[i]) - zm.data<float>()[i];
    const double num = (softmax_cross_entropy(zp, labels, nullptr).loss -
                        softmax_cross_entropy(zm, labels, nullptr).loss) /
                       dh;
    const double ana = g.data<float>()[i];
    worst =
        std::max(worst, std::fabs(num - ana) / std::max({std::fabs(num), std::fabs(ana), 1e-3}));
  }
  std::cout << "max rel error " << worst << "\n";
  EXPECT_LT(worst, 1e-3);
  // Each row of the gradient sums to zero (softmax minus one-hot).
  for (int64_t i = 0; i < shape[0]; ++i) {
    double s = 0;
    for (int64_t c = 0; c < shape[1]; ++c) s += g.data<float>()[i * shape[1] + c];
    EXPECT_NEAR(s, 0, 1e-6);
  }
}

TEST(RuntimeLoss, RejectsBadLabelsAndShapes) {
  Tensor z = Tensor::from<float>({2, 3}, {0, 0, 0, 0, 0, 0});
  EXPECT_THROW(softmax_cross_entropy(z, {0, 3}, nullptr), Error);
  EXPECT_THROW(softmax_cross_entropy(z, {0}, nullptr), Error);
  EXPECT_THROW(softmax_cross_entropy(z, {-1, 0}, nullptr), Error);
}

TEST(RuntimeLoss, LogSumExpIsStableWhereTheNaiveSumOverflows) {
  const float big[] = {1000.f, 1000.f, 999.f};
  EXPECT_NEAR(log_sum_exp(big, 3), 1000.0 + std::log(2.0 + std::exp(-1.0)), 1e-9);
  const float tiny[] = {-1000.f, -1001.f};
  EXPECT_NEAR(log_sum_exp(tiny, 2), -1000.0 + std::log(1.0 + std::exp(-1.0)), 1e-9);
  const float one[] = {3.5f};
  EXPECT_DOUBLE_EQ(log_sum_exp(one, 1), 3.5);
  // The row loss is what the batch loss averages.
  Tensor z = normal_f32({4, 9}, 11, 3.0f);
  const std::vector<int64_t> labels = {8, 0, 4, 4};
  double sum = 0;
  for (int64_t i = 0; i < 4; ++i) sum += row_cross_entropy(z.data<float>() + i * 9, 9, labels[i]);
  EXPECT_NEAR(softmax_cross_entropy(z, labels, nullptr).loss, sum / 4, 1e-12);
}

TEST(RuntimeOutputLoss, LossSumsFollowTheirDefinitions) {
  Tensor out = normal_f32({3, 5}, 21), ref = normal_f32({3, 5}, 22);
  const std::vector<int64_t> labels = {4, 0, 2};
  double ce = 0, kl = 0, mse = 0;
  for (int64_t i = 0; i < 3; ++i) {
    const float* o = out.data<float>() + i * 5;
    const float* r = ref.data<float>() + i * 5;
    ce += row_cross_entropy(o, 5, labels[i]);
    const double lo = log_sum_exp(o, 5), lr = log_sum_exp(r, 5);
    double sq = 0;
    for (int c = 0; c < 5; ++c) {
      const double p = std::exp(r[c] - lr);
      kl += p * ((r[c] - lr) - (o[c] - lo));
      sq += (o[c] - r[c]) * (o[c] - r[c]);
    }
    mse += sq / 5;
  }
  EXPECT_NEAR(loss_sum(out, labels, nullptr, OutputLoss::cross_entropy), ce, 1e-9);
  EXPECT_NEAR(loss_sum(out, {}, &ref, OutputLoss::kl), kl, 1e-9);
  EXPECT_NEAR(loss_sum(out, {}, &ref, OutputLoss::mse), mse, 1e-6 * mse);  // summed in float
  // An output against itself loses nothing.
  EXPECT_NEAR(loss_sum(out, {}, &out, OutputLoss::kl), 0, 1e-12);
  EXPECT_EQ(loss_sum(out, {}, &out, OutputLoss::mse), 0);
  EXPECT_EQ(parse_loss("kl", "--loss"), OutputLoss::kl);
  EXPECT_THROW(parse_loss("hinge", "--loss"), Error);
}

TEST(RuntimeOutputLoss, ScoreRowsAndDefaultLoss) {
  const ScoreRows a = score_rows(Tensor(DType::f32, {2, 10, 1, 1}));
  EXPECT_EQ(a.samples, 2);
  EXPECT_EQ(a.rows, 1);
  EXPECT_EQ(a.width, 10);
  const ScoreRows b = score_rows(Tensor(DType::f32, {2, 7, 30}));
  EXPECT_EQ(b.rows, 7);
  EXPECT_EQ(b.width, 30);
  EXPECT_EQ(default_loss(true, Tensor(DType::f32, {2, 10})), OutputLoss::cross_entropy);
  EXPECT_EQ(default_loss(false, Tensor(DType::f32, {2, 10})), OutputLoss::kl);
  EXPECT_EQ(default_loss(false, Tensor(DType::f32, {2, 4, 8, 8})), OutputLoss::mse);
}

TEST(RuntimeAgreement, IdenticalOutputsAgreeFullyAndNoiseLowersSqnr) {
  Tensor ref = normal_f32({6, 4}, 31);
  Tensor noisy = ref.clone();
  for (int64_t i = 0; i < noisy.numel(); ++i) noisy.data<float>()[i] += 0.01f * ((i % 3) - 1.0f);
  Agreement same, near;
  same.add({ref}, {ref}, "test");
  near.add({noisy}, {ref}, "test");
  EXPECT_EQ(same.result().samples, 6u);
  EXPECT_EQ(same.result().top1, 1.0);
  EXPECT_NEAR(same.result().kl, 0, 1e-12);
  ASSERT_EQ(near.result().sqnr_db.size(), 1u);
  EXPECT_GT(near.result().sqnr_db[0], 20);
  EXPECT_TRUE(std::isfinite(near.result().sqnr_db[0]));
  Agreement wrong;
  EXPECT_THROW(wrong.add({normal_f32({6, 5}, 1)}, {ref}, "test"), Error);
}
