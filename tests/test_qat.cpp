// Quantization-aware fine-tuning (src/qat): the projection puts every weight on its row's level
// set, ADMM's Z/U updates on a hand-made case, STE training lowers the quantized loss of a tiny
// network, an ADMM run through `mixq finetune` ends on the level sets with `mixq eval --quant`
// reproducing its reported top-1, and a stopped and resumed run ends bit-identical.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <regex>

#include "base/error.h"
#include "base/rng.h"
#include "data/idx.h"
#include "eval/evaluate.h"
#include "models/builder.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "qat/project.h"
#include "qat/qat.h"
#include "quant/apply.h"
#include "quant/layers.h"
#include "support/onnx_builder.h"
#include "support/synthetic_data.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;

Tensor random_tensor(Shape s, uint64_t seed, double sd = 1) {
  Rng rng(seed);
  Tensor t(DType::f32, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = static_cast<float>(sd * rng.normal());
  return t;
}

// True when every row of w (rows along dim 0) lies on its level set at its scale: quantizing it
// again changes nothing, and every |value| / scale is one of the magnitudes.
::testing::AssertionResult on_level_sets(const Tensor& w, const std::vector<RowQuant>& rows) {
  const Tensor again = fake_quantize_weight(w, rows);
  if (std::memcmp(again.raw(), w.raw(), w.nbytes()) != 0)
    return ::testing::AssertionFailure() << "quantizing again moves a weight";
  const int64_t per = w.numel() / w.dim(0);
  for (int64_t r = 0; r < w.dim(0); ++r) {
    const LevelSet& ls = level_set(rows[r].scheme, rows[r].bits);
    for (int64_t i = 0; i < per; ++i) {
      const float m = std::fabs(w.data<float>()[r * per + i]) / rows[r].scale;
      bool hit = false;
      for (float level : ls.magnitudes) hit = hit || std::fabs(m - level) <= 1e-6f;
      if (!hit) return ::testing::AssertionFailure() << "row " << r << " value " << i << " off";
    }
  }
  return ::testing::AssertionSuccess();
}

// flatten -> gemm 16 -> relu -> gemm 4 on 1x6x6 inputs.
Graph tiny_mlp(uint64_t seed) {
  GraphBuilder b(1, 6, 6, seed);
  int x = b.flatten(b.input(), "flat");
  x = b.relu(b.gemm(x, 16, "fc1"), "relu");
  return b.finish(b.gemm(x, 4, "fc2"));
}

// Weights at `bits` fixed-point (fc2 in SP2), 4-bit activations at both layers' inputs.
QuantConfig tiny_config(const Graph& g, int bits) {
  QuantConfig c;
  for (const QuantLayer& l : find_quant_layers(g)) {
    LayerConfig lc;
    lc.name = l.name;
    lc.rows =
        choose_weight_quant(g.constant(l.weight), l.name == "fc2" ? Scheme::sp2 : Scheme::fixed,
                            bits, ScaleMethod::mse, true, l.row_axis);
    ActQuant a;
    a.bits = 4;
    const bool signed_input = l.name == "fc1";
    a.scale = signed_input ? 0.4f : 0.3f;
    a.zero_point = signed_input ? 8 : 0;
    a.qmin = 0;
    a.qmax = 15;
    lc.input = a;
    c.layers.push_back(lc);
  }
  return c;
}

QatOptions tiny_options(QatMethod m) {
  QatOptions o;
  o.method = m;
  o.train.epochs = 3;
  o.train.batch_size = 32;
  o.train.seed = 5;
  o.train.schedule.lr = 0.05;
  o.train.schedule.kind = ScheduleKind::constant;
  o.train.checkpoint_minutes = 0;
  o.refit_every = 4;
  o.admm_every = 5;
  o.rho0 = 0.05;
  return o;
}

double quantized_loss(const Graph& g, const QuantConfig& c, const Dataset& d) {
  Executor ex(apply_quant(g, c), Impl::fast, true);
  return evaluate(ex, d).loss;
}

}  // namespace

TEST(QatProject, EveryWeightLandsOnItsRowsLevelSet) {
  const Tensor w = random_tensor({6, 2, 3, 3}, 1, 0.1);
  std::vector<RowQuant> rows = {{Scheme::fixed, 4, 1}, {Scheme::sp2, 4, 1},   {Scheme::pot, 4, 1},
                                {Scheme::fixed, 2, 1}, {Scheme::fixed, 8, 1}, {Scheme::sp2, 3, 1}};
  const Tensor q = project_rows(w, rows, 0, true);
  for (const RowQuant& r : rows) EXPECT_GT(r.scale, 0.f);
  EXPECT_TRUE(on_level_sets(q, rows));
  // The scales are the MSE chooser's, and the projection is the nearest level.
  std::vector<RowQuant> fresh = rows;
  choose_row_scales(w, fresh, ScaleMethod::mse);
  for (size_t r = 0; r < rows.size(); ++r) EXPECT_EQ(fresh[r].scale, rows[r].scale);
  const Tensor again = fake_quantize_weight(w, rows);
  EXPECT_EQ(std::memcmp(again.raw(), q.raw(), q.nbytes()), 0);
}

TEST(QatAdmm, ZAndUStepsOnAHandMadeRow) {
  // One ternary row (2-bit fixed point: levels -a, 0, a).
  const Tensor w = Tensor::from<float>({1, 4}, {0.9f, -0.2f, 0.5f, -1.1f});
  Tensor u = Tensor::from<float>({1, 4}, {0.1f, 0.1f, -0.2f, 0.0f});
  Tensor z(DType::f32, {1, 4});
  std::vector<RowQuant> rows = {{Scheme::fixed, 2, 1}};
  admm_zu_step(w, z, u, rows, 0);
  // W + U = [1.0, -0.1, 0.3, -1.1]: the MSE scale of that row, then the nearest levels.
  const std::vector<float> wu = {1.0f, -0.1f, 0.3f, -1.1f};
  const float a = choose_scale(wu.data(), 4, Scheme::fixed, 2, ScaleMethod::mse);
  EXPECT_EQ(rows[0].scale, a);
  EXPECT_NEAR(a, 1.05f, 1e-5f);  // {1.0, 1.1} on +-a, the rest at 0: a = their mean
  const std::vector<float> want_z = {a, 0.0f, 0.0f, -a};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(z.data<float>()[i], want_z[i]) << i;
    // U + W - Z
    EXPECT_FLOAT_EQ(u.data<float>()[i], wu[i] - want_z[i]) << i;
  }
  // The W-step gradient: g + rho (W - Z + U).
  const Tensor g = Tensor::from<float>({1, 4}, {1.0f, 0.0f, -1.0f, 0.5f});
  const Tensor pg = admm_penalty_grad(g, w, z, u, 0.5);
  for (int i = 0; i < 4; ++i) {
    const float want =
        g.data<float>()[i] + 0.5f * (w.data<float>()[i] - z.data<float>()[i] + u.data<float>()[i]);
    EXPECT_FLOAT_EQ(pg.data<float>()[i], want) << i;
  }
  const Tensor none = admm_penalty_grad(Tensor(), w, z, u, 2.0);
  EXPECT_FLOAT_EQ(none.data<float>()[0], 2.0f * (0.9f - a + (1.0f - a)));
}

TEST(QatSte, TrainingLowersTheQuantizedLoss) {
  SyntheticDataset train(512, {1, 6, 6}, 4, 7);
  const Graph g = tiny_mlp(3);
  const QuantConfig cfg = tiny_config(g, 3);
  const double before = quantized_loss(g, cfg, train);
  QatTrainer qat(g, cfg, tiny_options(QatMethod::ste));
  ASSERT_TRUE(qat.fit(train));
  const QatResult r = qat.result();
  const double after = quantized_loss(r.model, r.config, train);
  EXPECT_LT(after, 0.6 * before) << "before " << before << ", after " << after;
  for (const QuantLayer& l : find_quant_layers(r.model))
    EXPECT_TRUE(on_level_sets(r.model.constant(l.weight), r.config.find(l.name)->rows)) << l.name;
}

TEST(QatResume, StoppedAndResumedRunEndsBitIdentical) {
  SyntheticDataset train(200, {1, 6, 6}, 4, 9);  // 7 batches per epoch
  const Graph g = tiny_mlp(4);
  const QuantConfig cfg = tiny_config(g, 4);
  for (QatMethod m : {QatMethod::ste, QatMethod::admm}) {
    SCOPED_TRACE(qat_method_name(m));
    TempDir d;
    QatTrainer whole(g, cfg, tiny_options(m));
    ASSERT_TRUE(whole.fit(train));
    QatOptions o = tiny_options(m);
    o.train.checkpoint = d.file("c.ckpt");
    o.train.max_steps = 9;  // mid-way through the second epoch, between Z/U updates
    {
      QatTrainer first(g, cfg, o);
      EXPECT_FALSE(first.fit(train));
    }
    o.train.max_steps = 0;
    o.train.resume = true;
    QatTrainer second(g, cfg, o);
    ASSERT_TRUE(second.fit(train));
    EXPECT_EQ(second.rho(), whole.rho());
    const QatResult a = whole.result(), b = second.result();
    for (const QuantLayer& l : find_quant_layers(a.model)) {
      const Tensor& x = a.model.constant(l.weight);
      const Tensor& y = b.model.constant(b.model.find_value(a.model.values[l.weight].name));
      EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << l.name;
      const auto &ra = a.config.find(l.name)->rows, &rb = b.config.find(l.name)->rows;
      for (size_t r = 0; r < ra.size(); ++r) EXPECT_EQ(ra[r].scale, rb[r].scale);
    }
    // A checkpoint of the other method is refused.
    QatOptions other = o;
    other.method = m == QatMethod::ste ? QatMethod::admm : QatMethod::ste;
    QatTrainer wrong(g, cfg, other);
    EXPECT_THROW(wrong.fit(train), Error);
  }
}

TEST(QatCli, AdmmRunEndsOnTheLevelSetsAndEvalReproducesItsTopOne) {
  TempDir d;
  // The synthetic problem as IDX files (pixels 128 + 40 x), and the tiny model as ONNX.
  SyntheticDataset syn(300, {1, 6, 6}, 4, 13);
  std::vector<uint8_t> pixels, labels;
  const Batch all = syn.get([] {
    std::vector<size_t> i(300);
    for (size_t k = 0; k < i.size(); ++k) i[k] = k;
    return i;
  }());
  for (int64_t i = 0; i < all.inputs[0].numel(); ++i)
    pixels.push_back(static_cast<uint8_t>(
        std::clamp(std::lround(128 + 40 * all.inputs[0].data<float>()[i]), 0L, 255L)));
  for (int64_t y : all.labels) labels.push_back(static_cast<uint8_t>(y));
  write_idx(d.file("x.idx"), {300, 6, 6}, pixels, false);
  write_idx(d.file("y.idx"), {300}, labels, false);
  const std::string data = "idx:" + d.file("x.idx") + "," + d.file("y.idx");
  const Graph g = tiny_mlp(6);
  save_onnx(g, d.file("m.onnx"));
  save_quant_config(tiny_config(g, 3), d.file("q.json"));
  const std::string norm = " --mean 0.5 --std 0.157 --threads 1";
  auto r = run_command(kMixq + " finetune " + d.file("m.onnx") + " --quant " + d.file("q.json") +
                       " --data " + data + " --val-data " + data + norm +
                       " --method admm --admm-every 4 --rho 0.1 --epochs 2 --batch 32 --lr 0.05" +
                       " --no-augment -o " + d.file("out"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("val top-1"), std::string::npos) << r.out;
  std::smatch m1, m2;
  const std::regex top1("top-1    ([0-9.]+) %");
  ASSERT_TRUE(std::regex_search(r.out, m1, top1)) << r.out;
  auto e = run_command(kMixq + " eval " + d.file("out/model.onnx") + " --quant " +
                       d.file("out/quant.json") + " --data " + data + norm);
  ASSERT_EQ(e.status, 0) << e.err;
  ASSERT_TRUE(std::regex_search(e.out, m2, std::regex("top-1 +([0-9.]+) %"))) << e.out;
  EXPECT_EQ(m1[1].str(), m2[1].str());
  const Graph out = load_onnx(d.file("out/model.onnx"));
  const QuantConfig q = load_quant_config(d.file("out/quant.json"));
  for (const QuantLayer& l : find_quant_layers(out))
    EXPECT_TRUE(on_level_sets(out.constant(l.weight), q.find(l.name)->rows)) << l.name;
  EXPECT_TRUE(q.info.contains("finetune"));
}

TEST(QatCli, BadFlagsAndInputsGiveOneLineErrors) {
  TempDir d;
  const Graph g = tiny_mlp(6);
  save_onnx(g, d.file("m.onnx"));
  save_quant_config(tiny_config(g, 3), d.file("q.json"));
  write_idx(d.file("x.idx"), {4, 6, 6}, std::vector<uint8_t>(144, 1), false);
  write_idx(d.file("y.idx"), {4}, {0, 1, 2, 3}, false);
  const std::string base = kMixq + " finetune " + d.file("m.onnx") +
                           " --data idx:" + d.file("x.idx") + "," + d.file("y.idx") + " -o " +
                           d.file("out");
  auto r = run_command(base + " --quant " + d.file("q.json") + " --method sgd");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--method"), std::string::npos) << r.err;
  r = run_command(base + " --quant " + d.file("q.json") + " --resume");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  r = run_command(base + " --quant " + d.file("missing.json"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("missing.json"), std::string::npos) << r.err;
  r = run_command(base + " --quant " + d.file("m.onnx"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("m.onnx"), std::string::npos) << r.err;
  for (const auto* res : {&r}) EXPECT_EQ(std::count(res->err.begin(), res->err.end(), '\n'), 1);
}
