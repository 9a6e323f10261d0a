// The training loop end to end on small synthetic data: a tiny CNN learns (loss far below
// chance), a run stopped mid-epoch and resumed from its checkpoint ends bit-identical to an
// uninterrupted one, and the exported model matches the trained graph's inference output.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/file_io.h"
#include "base/rng.h"
#include "models/builder.h"
#include "models/models.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "support/onnx_builder.h"
#include "train/tensor_dataset.h"
#include "train/trainer.h"

using namespace mixq;

namespace {

// Four classes of 1x8x8 images: a bright 3x3 blob in the class's quadrant (at a random spot
// inside it) over Gaussian noise.
TensorDataset blobs(size_t n, uint64_t seed) {
  Rng rng(seed);
  Tensor x(DType::f32, {static_cast<int64_t>(n), 1, 8, 8});
  std::vector<int64_t> y(n);
  float* p = x.data<float>();
  for (size_t i = 0; i < n; ++i) {
    y[i] = static_cast<int64_t>(rng.below(4));
    float* img = p + i * 64;
    for (int k = 0; k < 64; ++k) img[k] = static_cast<float>(0.5 * rng.normal());
    const int64_t oy = (y[i] / 2) * 4 + static_cast<int64_t>(rng.below(2));
    const int64_t ox = (y[i] % 2) * 4 + static_cast<int64_t>(rng.below(2));
    for (int64_t dy = 0; dy < 3; ++dy)
      for (int64_t dx = 0; dx < 3; ++dx) img[(oy + dy) * 8 + ox + dx] += 2.0f;
  }
  return TensorDataset(std::move(x), std::move(y), 4, "blobs");
}

// conv3x3(8)-BN-relu, maxpool, conv3x3(8)-BN-relu, global average pool, fc 4.
Graph tiny_cnn(uint64_t seed) {
  GraphBuilder b(1, 8, 8, seed);
  int x = b.conv_bn(b.input(), 8, 3, 1, 1, true, "c1");
  x = b.maxpool(x, 2, 2, "pool");
  x = b.conv_bn(x, 8, 3, 1, 1, true, "c2");
  x = b.flatten(b.global_avgpool(x, "gap"), "flat");
  return b.finish(b.gemm(x, 4, "fc"));
}

TrainOptions small_options() {
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 32;
  o.seed = 11;
  o.schedule.lr = 0.1;
  o.optimizer.weight_decay = 5e-4;
  o.checkpoint_minutes = 0;
  return o;
}

// Every parameter and running statistic, bitwise.
void expect_same_state(const Trainer& a, const Trainer& b) {
  const Trainables& t = a.trainables();
  std::vector<int> values;
  for (const Param& p : t.params) values.push_back(p.value);
  for (const BnStats& s : t.bn) values.insert(values.end(), {s.mean_in, s.var_in});
  for (int v : values) {
    const std::string& name = a.graph().values[v].name;
    const Tensor& x = a.value(name);
    const Tensor& y = b.value(name);
    ASSERT_EQ(x.shape(), y.shape()) << name;
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << name << " differs";
  }
}

}  // namespace

TEST(TrainLoop, TinyCnnLearnsBlobs) {
  TensorDataset train = blobs(512, 1), test = blobs(256, 2);
  TrainOptions o = small_options();
  o.epochs = 4;
  o.schedule.lr = 0.2;
  std::vector<EpochSummary> epochs;
  o.on_epoch = [&](const EpochSummary& s) { epochs.push_back(s); };
  Trainer t(tiny_cnn(3), o);
  ASSERT_TRUE(t.fit(train, &test));
  ASSERT_EQ(epochs.size(), 4u);
  for (const auto& e : epochs)
    std::cout << "epoch " << e.epoch + 1 << " loss " << e.loss << " train " << e.accuracy << " val "
              << *e.val_top1 << "\n";
  // Chance is ln 4 = 1.386 and 25 %.
  EXPECT_LT(epochs.back().loss, 0.35);
  EXPECT_GT(*epochs.back().val_top1, 0.9);
  EXPECT_LT(epochs.back().loss, epochs.front().loss);
  EXPECT_EQ(t.steps(), 4 * 16);
}

TEST(TrainLoop, ResumedRunIsBitIdenticalToUninterrupted) {
  TensorDataset train = blobs(200, 4);  // 7 batches per epoch, the last one partial
  for (OptimizerKind kind : {OptimizerKind::sgd, OptimizerKind::adam}) {
    TrainOptions o = small_options();
    o.optimizer.kind = kind;
    o.optimizer.nesterov = true;
    o.schedule.lr = kind == OptimizerKind::sgd ? 0.05 : 0.003;
    o.schedule.warmup_epochs = 0.5;
    o.augment.pad = 1;
    o.augment.flip = true;
    Trainer whole(tiny_cnn(5), o);
    ASSERT_TRUE(whole.fit(train));

    test::TempDir dir;
    o.checkpoint = dir.file("run.ckpt");
    o.max_steps = 10;  // stops in the middle of the second epoch
    Trainer first(tiny_cnn(5), o);
    EXPECT_FALSE(first.fit(train));
    EXPECT_EQ(first.steps(), 10);
    o.max_steps = 0;
    o.resume = true;
    Trainer second(tiny_cnn(5), o);  // the same model: a resume checks its content
    ASSERT_TRUE(second.fit(train));
    EXPECT_EQ(second.steps(), whole.steps());
    expect_same_state(whole, second);

    // Resuming from the epoch-end checkpoint of a finished run does nothing more.
    Trainer third(tiny_cnn(5), o);
    ASSERT_TRUE(third.fit(train));
    EXPECT_EQ(third.steps(), whole.steps());
  }
}

TEST(TrainLoop, TimedCheckpointsAndStopFlagResumeMidEpoch) {
  TensorDataset train = blobs(200, 4);
  test::TempDir dir;
  TrainOptions o = small_options();
  o.epochs = 2;
  o.checkpoint = dir.file("run.ckpt");
  o.checkpoint_minutes = 1e-9;  // a checkpoint after every batch
  // The checkpoint of batch 3 (written after it), kept aside while the run goes on.
  o.on_batch = [&](const BatchProgress& p) {
    if (p.epoch == 0 && p.batch == 4) {
      const Checkpoint c = load_checkpoint(o.checkpoint);
      EXPECT_EQ(c.meta["position"]["batch"], 3);
      save_checkpoint(dir.file("mid.ckpt"), c);
    }
  };
  Trainer whole(tiny_cnn(5), o);
  ASSERT_TRUE(whole.fit(train));
  o.on_batch = nullptr;
  o.checkpoint = dir.file("mid.ckpt");
  o.resume = true;
  Trainer resumed(tiny_cnn(5), o);
  ASSERT_TRUE(resumed.fit(train));
  expect_same_state(whole, resumed);

  // The stop flag (what mixq train's signal handler sets) saves and stops between batches.
  std::atomic<bool> stop{false};
  o.resume = false;
  o.checkpoint = dir.file("stopped.ckpt");
  o.stop = &stop;
  o.on_batch = [&](const BatchProgress& p) { stop = p.batch == 5; };
  Trainer stopped(tiny_cnn(5), o);
  EXPECT_FALSE(stopped.fit(train));
  EXPECT_EQ(load_checkpoint(o.checkpoint).meta["position"]["step"], 5);
}

TEST(TrainLoop, ResumeRefusesAnotherRun) {
  TensorDataset train = blobs(64, 4);
  test::TempDir dir;
  TrainOptions o = small_options();
  o.epochs = 1;
  o.checkpoint = dir.file("run.ckpt");
  Trainer(tiny_cnn(1), o).fit(train);
  o.resume = true;
  o.batch_size = 16;
  try {
    Trainer(tiny_cnn(1), o).fit(train);
    FAIL() << "a different batch size must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size"), std::string::npos) << e.what();
  }
  o.batch_size = 32;
  ModelSpec other;
  other.height = other.width = 8;
  other.classes = 4;
  EXPECT_THROW(Trainer(build_model("lenet", other), o).fit(train), Error);
  o.checkpoint = dir.file("missing.ckpt");
  EXPECT_THROW(Trainer(tiny_cnn(1), o).fit(train), Error);
}

// A checkpoint resumes only the model and data it was written for, by content: other weights
// under the same names and shapes, or other samples of the same count, are refused; the same
// model rebuilt (another Graph object, another source path) resumes.
TEST(TrainLoop, ResumeDecidesByContent) {
  TensorDataset train = blobs(64, 4);
  test::TempDir dir;
  TrainOptions o = small_options();
  o.checkpoint = dir.file("run.ckpt");
  o.max_steps = 2;
  EXPECT_FALSE(Trainer(tiny_cnn(1), o).fit(train));
  const std::string saved = read_file(o.checkpoint);
  o.resume = true;
  auto refusal = [&](Graph g, const TensorDataset& data) -> std::string {
    write_file_atomic(o.checkpoint, saved);
    try {
      Trainer(std::move(g), o).fit(data);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string model_msg = refusal(tiny_cnn(2), train);
  EXPECT_NE(model_msg.find("run.ckpt: was written for a different model"), std::string::npos)
      << model_msg;
  const std::string data_msg = refusal(tiny_cnn(1), blobs(64, 5));
  EXPECT_NE(data_msg.find("run.ckpt: was written for different training data"), std::string::npos)
      << data_msg;
  Graph same = tiny_cnn(1);
  same.source = "/another/path/model.onnx";
  EXPECT_EQ(refusal(std::move(same), train), "");
}

TEST(TrainLoop, ExportedModelMatchesTrainedGraph) {
  TensorDataset train = blobs(128, 6);
  TrainOptions o = small_options();
  o.epochs = 2;
  Trainer t(tiny_cnn(2), o);
  ASSERT_TRUE(t.fit(train));
  test::TempDir dir;
  save_onnx(t.inference_graph(true), dir.file("m.onnx"));
  Graph back = load_onnx(dir.file("m.onnx"));
  for (const Node& n : back.nodes) EXPECT_NE(n.op_type, "BatchNormalization");
  const Tensor x = train.get_batch(0, 64).inputs[0];
  const Tensor want = Executor(t.inference_graph(false), Impl::reference).run({x})[0];
  const Tensor got = Executor(back, Impl::fast).run({x})[0];
  ASSERT_EQ(got.shape(), (Shape{64, 4}));
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst,
                     std::fabs(static_cast<double>(want.data<float>()[i]) - got.data<float>()[i]));
  std::cout << "max abs difference " << worst << "\n";
  EXPECT_LT(worst, 1e-3);
}

TEST(TrainLoop, DataThatDoesNotFitIsAnError) {
  TensorDataset wrong = blobs(16, 1);
  ModelSpec s;  // expects 1x28x28
  TrainOptions o = small_options();
  Trainer t(build_model("lenet", s), o);
  EXPECT_THROW(t.fit(wrong), Error);
}
