// Training building blocks: optimizer steps against hand-computed values,
// learning-rate schedules, augmentation, checkpoint files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/rng.h"
#include "support/onnx_builder.h"
#include "train/augment.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/schedule.h"

using namespace mixq;

namespace {

Tensor random_f32(const Shape& shape, uint64_t seed, double sd = 1.0) {
  Rng rng(seed);
  Tensor t(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = static_cast<float>(rng.normal() * sd);
  return t;
}

}  // namespace

namespace {

// Runs steps of one optimizer on a single scalar parameter with the given gradients.
std::vector<float> run_scalar(const OptimizerOptions& o, ParamKind kind, double lr,
                              const std::vector<float>& grads, float p0 = 1.0f) {
  Optimizer opt(o, {kind});
  Tensor p = Tensor::from<float>({1}, {p0});
  std::vector<float> out;
  for (float g : grads) {
    Tensor gt = Tensor::from<float>({1}, {g});
    const uint64_t before = p.storage_id();
    opt.step({&p}, {&gt}, lr);
    EXPECT_NE(p.storage_id(), before) << "parameters must come back as new tensors";
    out.push_back(p.data<float>()[0]);
  }
  return out;
}

}  // namespace

TEST(TrainOptimizer, SgdMomentumAndWeightDecayByHand) {
  OptimizerOptions o;
  o.momentum = 0.9;
  o.weight_decay = 0.01;
  // d1 = 0.5 + 0.01 * 1 = 0.51, buf = 0.51, p = 1 - 0.1 * 0.51 = 0.949
  // d2 = 0.5 + 0.01 * 0.949 = 0.50949, buf = 0.9 * 0.51 + 0.50949 = 0.96849, p = 0.852151
  auto p = run_scalar(o, ParamKind::weight, 0.1, {0.5f, 0.5f});
  EXPECT_NEAR(p[0], 0.949f, 1e-6);
  EXPECT_NEAR(p[1], 0.852151f, 1e-6);
  // Biases are not decayed by default: 1 - 0.1 * 0.5, then buf = 0.95 ... 0.9 * 0.5 + 0.5
  auto b = run_scalar(o, ParamKind::bias, 0.1, {0.5f, 0.5f});
  EXPECT_NEAR(b[0], 0.95f, 1e-6);
  EXPECT_NEAR(b[1], 0.855f, 1e-6);
  o.decay_all = true;
  EXPECT_NEAR(run_scalar(o, ParamKind::bn_scale, 0.1, {0.5f})[0], 0.949f, 1e-6);
}

TEST(TrainOptimizer, SgdNesterovAndPlain) {
  OptimizerOptions o;
  o.momentum = 0.9;
  o.nesterov = true;
  // buf = 0.5, step = 0.5 + 0.9 * 0.5 = 0.95, p = 1 - 0.095
  EXPECT_NEAR(run_scalar(o, ParamKind::weight, 0.1, {0.5f})[0], 0.905f, 1e-6);
  o.momentum = 0;
  o.nesterov = false;
  auto p = run_scalar(o, ParamKind::weight, 0.1, {0.5f, -1.0f});
  EXPECT_NEAR(p[0], 0.95f, 1e-6);
  EXPECT_NEAR(p[1], 1.05f, 1e-6);
}

TEST(TrainOptimizer, AdamTwoStepsByHand) {
  OptimizerOptions o;
  o.kind = OptimizerKind::adam;
  // t=1: m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25: p = 1 - 0.01 * 0.5 / 0.5 = 0.99
  // t=2 (g = -0.25): m = 0.02, v = 0.00031225, m^ = 0.105263, v^ = 0.156203: p = 0.987337
  auto p = run_scalar(o, ParamKind::weight, 0.01, {0.5f, -0.25f});
  EXPECT_NEAR(p[0], 0.99f, 1e-6);
  EXPECT_NEAR(p[1], 0.98733663f, 2e-6);
  // AdamW: p * (1 - lr * wd) first, then the same step: 0.999 - 0.01 = 0.989.
  o.kind = OptimizerKind::adamw;
  o.weight_decay = 0.1;
  EXPECT_NEAR(run_scalar(o, ParamKind::weight, 0.01, {0.5f})[0], 0.989f, 1e-6);
}

TEST(TrainOptimizer, SkipsParametersWithoutGradient) {
  Optimizer opt({}, {ParamKind::weight, ParamKind::weight});
  Tensor a = Tensor::from<float>({2}, {1, 2}), b = Tensor::from<float>({2}, {3, 4});
  Tensor ga = Tensor::from<float>({2}, {1, 1}), none;
  const uint64_t id_b = b.storage_id();
  opt.step({&a, &b}, {&ga, &none}, 0.5);
  EXPECT_EQ(b.storage_id(), id_b);
  EXPECT_FALSE(opt.state(1)[0].second->defined());
  EXPECT_TRUE(opt.state(0)[0].second->defined());
  EXPECT_EQ(opt.steps(), 1);
}

TEST(TrainOptimizer, RejectsBadOptions) {
  EXPECT_THROW(parse_optimizer("rmsprop"), Error);
  OptimizerOptions o;
  o.momentum = 1.5;
  EXPECT_THROW(Optimizer(o, {ParamKind::weight}), Error);
}

TEST(TrainSchedule, ConstantStepAndCosineValues) {
  ScheduleOptions o;
  o.lr = 0.1;
  o.kind = ScheduleKind::constant;
  EXPECT_DOUBLE_EQ(LrSchedule(o, 10, 5).at(37), 0.1);
  o.kind = ScheduleKind::step;
  o.step_epochs = 2;
  o.gamma = 0.5;
  LrSchedule step(o, 10, 10);
  EXPECT_DOUBLE_EQ(step.at(0), 0.1);
  EXPECT_DOUBLE_EQ(step.at(19), 0.1);
  EXPECT_DOUBLE_EQ(step.at(20), 0.05);
  EXPECT_DOUBLE_EQ(step.at(45), 0.025);
  o.kind = ScheduleKind::cosine;
  o.lr = 1;
  LrSchedule cos(o, 10, 10);
  EXPECT_EQ(cos.total_steps(), 100);
  EXPECT_DOUBLE_EQ(cos.at(0), 1);
  EXPECT_NEAR(cos.at(25), 0.5 * (1 + std::cos(M_PI / 4)), 1e-12);
  EXPECT_NEAR(cos.at(50), 0.5, 1e-12);
  EXPECT_NEAR(cos.at(100), 0, 1e-12);
  EXPECT_NEAR(cos.at(1000), 0, 1e-12);
  o.min_lr = 0.1;
  EXPECT_NEAR(LrSchedule(o, 10, 10).at(50), 0.55, 1e-12);
}

TEST(TrainSchedule, LinearWarmupThenCosine) {
  ScheduleOptions o;
  o.lr = 1;
  o.warmup_epochs = 1;
  LrSchedule s(o, 10, 10);
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(4), 0.5);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(55), 0.5, 1e-12);  // halfway through the 90 steps after warm-up
  o.lr = -1;
  EXPECT_THROW(LrSchedule(o, 10, 10), Error);
  EXPECT_THROW(parse_schedule("linear"), Error);
}

TEST(TrainAugment, DefaultPadding) {
  EXPECT_EQ(default_crop_pad(32, 32), 4);
  EXPECT_EQ(default_crop_pad(28, 28), 2);
  EXPECT_EQ(default_crop_pad(8, 8), 1);
}

TEST(TrainAugment, SameSeedSameImagesOtherEpochOtherImages) {
  const Tensor src = random_f32({16, 3, 12, 10}, 5);
  AugmentOptions o;
  o.pad = 2;
  o.flip = true;
  o.fill = {-1.f, -2.f, -3.f};
  Tensor a = src.clone(), b = src.clone(), c = src.clone(), d = src.clone();
  augment_batch(a, o, 7, 3, 100);
  augment_batch(b, o, 7, 3, 100);
  augment_batch(c, o, 7, 4, 100);
  augment_batch(d, o, 8, 3, 100);
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
  EXPECT_NE(std::memcmp(a.raw(), c.raw(), a.nbytes()), 0);
  EXPECT_NE(std::memcmp(a.raw(), d.raw(), a.nbytes()), 0);
  EXPECT_NE(std::memcmp(a.raw(), src.raw(), a.nbytes()), 0);
  // Sample i depends only on its position: augmenting the second half alone gives the same.
  Tensor half(DType::f32, {8, 3, 12, 10});
  std::memcpy(half.raw(), src.data<float>() + 8 * 360, 8 * 360 * sizeof(float));
  augment_batch(half, o, 7, 3, 108);
  EXPECT_EQ(std::memcmp(half.raw(), a.data<float>() + 8 * 360, half.nbytes()), 0);
}

TEST(TrainAugment, CropShiftsAndFillsFlipMirrors) {
  // A 1-channel ramp image: every pixel value is unique, so each output pixel is either a
  // source pixel from a consistent shift (mirrored or not) or the fill.
  const int64_t n = 32, h = 6, w = 5;
  Tensor src(DType::f32, {n, 1, h, w});
  for (int64_t i = 0; i < src.numel(); ++i) src.data<float>()[i] = static_cast<float>(i % (h * w));
  AugmentOptions o;
  o.pad = 2;
  o.flip = true;
  o.fill = {-9.f};
  Tensor a = src.clone();
  augment_batch(a, o, 1, 0, 0);
  int flipped = 0, shifted = 0;
  for (int64_t s = 0; s < n; ++s) {
    const float* p = a.data<float>() + s * h * w;
    bool found = false;
    for (int fl = 0; fl < 2 && !found; ++fl)
      for (int64_t dy = -2; dy <= 2 && !found; ++dy)
        for (int64_t dx = -2; dx <= 2 && !found; ++dx) {
          bool ok = true;
          for (int64_t y = 0; y < h && ok; ++y)
            for (int64_t x = 0; x < w && ok; ++x) {
              const int64_t sy = y + dy, sx = (fl ? w - 1 - x : x) + dx;
              const float want = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? sy * w + sx : -9.f;
              ok = p[y * w + x] == want;
            }
          if (ok) {
            found = true;
            flipped += fl;
            shifted += dy != 0 || dx != 0;
          }
        }
    EXPECT_TRUE(found) << "sample " << s << " is not a padded crop of the source";
  }
  EXPECT_GT(flipped, 4);
  EXPECT_LT(flipped, 28);
  EXPECT_GT(shifted, 20);
  // Off: untouched.
  Tensor b = src.clone();
  augment_batch(b, AugmentOptions{}, 1, 0, 0);
  EXPECT_EQ(std::memcmp(b.raw(), src.raw(), b.nbytes()), 0);
}

TEST(TrainCheckpoint, RoundTripsTensorsAndMeta) {
  Checkpoint c;
  c.meta["position"] = {{"epoch", 3}, {"step", 12345}};
  c.meta["loss_sum"] = 0.1 + 0.2;  // not exactly representable: must round-trip bit for bit
  c.meta["seed"] = uint64_t{0xFFFFFFFFFFFFFFFFull};
  c.add("param:w", random_f32({3, 4, 5}, 1));
  c.add("empty", Tensor(DType::f32, {0}));
  c.add("count", Tensor::from<int64_t>({2}, {-5, 7}));
  const std::string bytes = serialize_checkpoint(c);
  Checkpoint d = parse_checkpoint(bytes, "mem");
  EXPECT_EQ(d.meta, c.meta);
  EXPECT_EQ(d.meta["loss_sum"].get<double>(), 0.1 + 0.2);
  ASSERT_EQ(d.tensors.size(), 3u);
  const Tensor* w = d.find("param:w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape(), (Shape{3, 4, 5}));
  EXPECT_EQ(std::memcmp(w->raw(), c.find("param:w")->raw(), w->nbytes()), 0);
  EXPECT_EQ(d.find("count")->to_ints(), (std::vector<int64_t>{-5, 7}));
  EXPECT_EQ(d.find("missing"), nullptr);

  test::TempDir dir;
  save_checkpoint(dir.file("c.ckpt"), c);
  EXPECT_EQ(load_checkpoint(dir.file("c.ckpt")).meta, c.meta);
}

TEST(TrainCheckpoint, RejectsCorruptTruncatedAndForeignFiles) {
  Checkpoint c;
  c.add("w", random_f32({64}, 2));
  const std::string bytes = serialize_checkpoint(c);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  EXPECT_THROW(parse_checkpoint(flipped, "x"), Error);
  EXPECT_THROW(parse_checkpoint(bytes.substr(0, bytes.size() - 9), "x"), Error);
  EXPECT_THROW(parse_checkpoint("not a checkpoint at all, just text", "x"), Error);
  std::string other_version = bytes;
  other_version[8] = 2;
  try {
    parse_checkpoint(other_version, "f.ckpt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_checkpoint("/nonexistent/dir/c.ckpt"), Error);
}
