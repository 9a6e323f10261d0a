// CLADO measurements: Omega of a tiny network equals losses evaluated directly, the incremental
// runs execute fewer MACs than full passes, and a resumed run equals an uninterrupted one.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/file_io.h"
#include "data/array_dataset.h"
#include "data/batch_iterator.h"
#include "eval/evaluate.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "search/sensitivity.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"
#include "support/synthetic_data.h"

using namespace mixq;
using namespace mixq::test;

namespace {

// x[N,2,6,6] -> conv a -> relu -> conv b -> relu -> conv c (+ skip from a) -> relu -> GAP ->
// Flatten -> Gemm(4 -> 3): five quantizable layers with a branch.
Graph tiny_net() {
  OnnxBuilder b;
  b.input("x", {-1, 2, 6, 6}).output("y", {-1, 3});
  auto conv = [&](const std::string& name, const std::string& in, const std::string& out,
                  int64_t cin, uint32_t seed) {
    b.initializer(name + "_w", random_tensor(DType::f32, {4, cin, 3, 3}, seed, 0.4));
    b.initializer(name + "_b", random_tensor(DType::f32, {4}, seed + 100, 0.1));
    auto& n = b.node("Conv", {in, name + "_w", name + "_b"}, {out}, name);
    OnnxBuilder::attr(n, "pads", std::vector<int64_t>{1, 1, 1, 1});
  };
  conv("a", "x", "a_out", 2, 1);
  b.node("Relu", {"a_out"}, {"a_r"}, "ra");
  conv("b", "a_r", "b_out", 4, 2);
  b.node("Relu", {"b_out"}, {"b_r"}, "rb");
  conv("c", "b_r", "c_out", 4, 3);
  b.node("Add", {"c_out", "a_r"}, {"sum"}, "add");
  b.node("Relu", {"sum"}, {"c_r"}, "rc");
  conv("d", "c_r", "d_out", 4, 4);
  b.node("GlobalAveragePool", {"d_out"}, {"p"}, "gap");
  b.node("Flatten", {"p"}, {"f"}, "flatten");
  b.initializer("fc_w", random_tensor(DType::f32, {3, 4}, 5, 0.5));
  b.initializer("fc_b", random_tensor(DType::f32, {3}, 6, 0.1));
  auto& g = b.node("Gemm", {"f", "fc_w", "fc_b"}, {"y"}, "fc");
  OnnxBuilder::attr(g, "transB", int64_t{1});
  return load_onnx_bytes(b.bytes(), "tiny");
}

// Mean cross-entropy over the sensitivity subset for a config, evaluated from scratch.
double direct_loss(const Graph& g, const QuantConfig& cfg, const Dataset& data,
                   const std::vector<size_t>& subset) {
  Executor ex(apply_quant(g, cfg), Impl::reference);
  Batch b = data.get(subset);
  Metrics m;
  m.add(ex.run({b.inputs[0]})[0], b.labels, "direct");
  return m.result().loss;
}

// Mean divergence of a config's outputs from the float model's, evaluated from scratch.
double direct_divergence(const Graph& g, const QuantConfig& cfg, const Dataset& data,
                         const std::vector<size_t>& subset, OutputLoss kind) {
  Executor ex(apply_quant(g, cfg), Impl::reference), fp(g, Impl::reference);
  const Batch b = data.get(subset);
  const Tensor ref = fp.run(b.inputs)[0];
  return loss_sum(ex.run(b.inputs)[0], {}, &ref, kind) / static_cast<double>(subset.size());
}

}  // namespace

TEST(Sensitivity, UnlabelledDataMeasuresDivergenceFromTheFloatModel) {
  Graph g = tiny_net();
  SyntheticDataset labelled(48, {2, 6, 6}, 3, 11);
  const ArrayDataset data({}, {labelled.get_batch(0, 48).inputs[0]}, Tensor(), "npy:mem");
  ASSERT_FALSE(data.labelled());
  auto space = make_search_space(g, parse_candidates("w2,w8", "test"), true, 8);
  ObserveOptions oo;
  oo.samples = 48;
  const ActivationStats stats = observe_activations(g, data, oo);
  const InputQuants inputs = input_quants(space, stats);
  auto subset = random_subset(data.size(), 32, 4);
  for (OutputLoss kind : {OutputLoss::kl, OutputLoss::mse}) {
    SensitivityOptions so;
    so.samples = 32;
    so.chunk = 16;
    so.seed = 4;
    if (kind == OutputLoss::mse) so.loss = kind;  // KL is the default for class scores
    const SensitivityData d = measure_sensitivity(g, space, stats, data, so);
    EXPECT_EQ(d.header.value("loss", ""), loss_name(kind));
    const double L0 = direct_divergence(
        g, assignment_config(g, space, {-1, -1, -1, -1, -1}, &inputs), data, subset, kind);
    EXPECT_NEAR(d.L0(), L0, 1e-6);
    EXPECT_GT(d.single_delta(0, 0), 0);  // 2-bit weights move the outputs further away
    for (size_t s : {0, 2, 4}) {
      std::vector<int> choice(5, -1);
      choice[s] = 0;
      EXPECT_NEAR(
          d.single_delta(s, 0),
          direct_divergence(g, assignment_config(g, space, choice, &inputs), data, subset, kind) -
              L0,
          1e-5)
          << loss_name(kind) << " layer " << s;
    }
  }
  // Cross-entropy needs labels: a one-line error naming the data.
  SensitivityOptions ce;
  ce.samples = 16;
  ce.loss = OutputLoss::cross_entropy;
  try {
    measure_sensitivity(g, space, stats, data, ce);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("npy:mem"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("has no labels"), std::string::npos) << e.what();
  }
}

// With compensated rounding every single and pair is the loss of the model whose weights
// round_weights gives, and the file records how its grams were collected.
TEST(Sensitivity, CompensatedRoundingMeasuresTheRoundedWeights) {
  Graph g = tiny_net();
  SyntheticDataset data(96, {2, 6, 6}, 3, 7);
  auto space = make_search_space(g, parse_candidates("w2,w8", "test"), true, 8);
  ObserveOptions oo;
  oo.samples = 64;
  ActivationStats stats = observe_activations(g, data, oo);
  SensitivityOptions so;
  so.samples = 40;
  so.seed = 3;
  so.rounding = make_rounding(Rounding::gptq, g, data, oo);
  EXPECT_EQ(so.rounding.samples, 64u);
  SensitivityData d = measure_sensitivity(g, space, stats, data, so);
  EXPECT_EQ(d.header.at("rounding"), rounding_to_json(so.rounding));
  EXPECT_EQ(rounding_from_json(d.header.at("rounding"), "f").samples, 64u);
  const auto subset = random_subset(data.size(), 40, 3);
  const InputQuants inputs = input_quants(space, stats);
  auto loss = [&](std::vector<int> choice) {
    const QuantConfig cfg = assignment_config(g, space, choice, &inputs);
    return direct_loss(round_weights(g, cfg, so.rounding), cfg, data, subset);
  };
  const double L0 = loss({-1, -1, -1, -1, -1});
  EXPECT_NEAR(d.L0(), L0, 1e-5);
  EXPECT_NEAR(d.single_delta(2, 0), loss({-1, -1, 0, -1, -1}) - L0, 2e-5);
  EXPECT_NEAR(d.pair_delta(1, 0, 3, 0), loss({-1, 0, -1, 0, -1}) - L0, 2e-5);
  // Different from nearest rounding: the measurement did use the compensated weights.
  const QuantConfig one = assignment_config(g, space, {-1, -1, 0, -1, -1}, &inputs);
  EXPECT_GT(std::fabs(direct_loss(g, one, data, subset) - L0 - d.single_delta(2, 0)), 1e-4);
}

TEST(Sensitivity, OmegaEqualsDirectLossEvaluations) {
  Graph g = tiny_net();
  SyntheticDataset data(96, {2, 6, 6}, 3, 7);
  auto space = make_search_space(g, parse_candidates("w2,w3,w8", "test"), true, 8);
  ASSERT_EQ(space.num_searched(), 5u);
  ObserveOptions oo;
  oo.samples = 64;
  ActivationStats stats = observe_activations(g, data, oo);
  SensitivityOptions so;
  so.samples = 40;
  so.chunk = 16;  // three chunks: 16, 16, 8
  so.seed = 3;
  SensitivityData d = measure_sensitivity(g, space, stats, data, so);
  ASSERT_TRUE(d.complete());
  EXPECT_EQ(d.chunks, 3u);
  auto subset = random_subset(data.size(), 40, 3);

  // -1: the layer's weights stay float (the base); activations always quantized.
  const InputQuants inputs = input_quants(space, stats);
  auto config_for = [&](std::vector<int> choice) {
    return assignment_config(g, space, choice, &inputs);
  };
  const double L0 = direct_loss(g, config_for({-1, -1, -1, -1, -1}), data, subset);
  EXPECT_NEAR(d.L0(), L0, 1e-5);
  for (size_t s = 0; s < 5; ++s)
    for (size_t c = 0; c < 3; ++c) {
      std::vector<int> choice(5, -1);
      choice[s] = static_cast<int>(c);
      EXPECT_NEAR(d.single_delta(s, c), direct_loss(g, config_for(choice), data, subset) - L0, 2e-5)
          << s << "," << c;
    }
  for (auto [s, t] : {std::pair{0, 1}, {0, 4}, {1, 2}, {2, 3}, {3, 4}})
    for (size_t c = 0; c < 3; ++c)
      for (size_t e = 0; e < 3; ++e) {
        std::vector<int> choice(5, -1);
        choice[s] = static_cast<int>(c);
        choice[t] = static_cast<int>(e);
        EXPECT_NEAR(d.pair_delta(s, c, t, e), direct_loss(g, config_for(choice), data, subset) - L0,
                    2e-5)
            << s << "," << c << " " << t << "," << e;
      }
  // Omega reproduces single + pair terms: x' Omega x = d_s + d_t + cross for a two-layer choice.
  auto om = d.omega();
  const size_t n = d.n();
  const size_t a = 1 * 3 + 0, b = 3 * 3 + 2;
  const double pred = om[a * n + a] + om[b * n + b] + 2 * om[a * n + b];
  EXPECT_NEAR(pred, d.pair_delta(1, 0, 3, 2), 1e-9);
  // Only descendants run: fewer MACs than a full forward per evaluation.
  EXPECT_LT(d.executed_macs, 0.9 * d.naive_macs);
}

TEST(Sensitivity, ResumeEqualsUninterrupted) {
  Graph g = tiny_net();
  SyntheticDataset data(64, {2, 6, 6}, 3, 9);
  auto space = make_search_space(g, parse_candidates("w2,w4", "test"), false, 8);
  ObserveOptions oo;
  oo.samples = 32;
  ActivationStats stats = observe_activations(g, data, oo);
  TempDir dir;
  SensitivityOptions so;
  so.samples = 48;
  so.chunk = 16;
  so.checkpoint = dir.file("full.omega");
  SensitivityData full = measure_sensitivity(g, space, stats, data, so);

  // Interrupt after four units of work, then resume.
  so.checkpoint = dir.file("part.omega");
  int units = 0;
  so.progress = [&](const std::string&) {
    if (++units == 4) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(measure_sensitivity(g, space, stats, data, so), std::runtime_error);
  SensitivityData partial = load_sensitivity(dir.file("part.omega"));
  EXPECT_FALSE(partial.complete());
  so.progress = nullptr;
  so.resume = true;
  SensitivityData resumed = measure_sensitivity(g, space, stats, data, so);
  ASSERT_TRUE(resumed.complete());
  EXPECT_EQ(resumed.omega(), full.omega());  // bit-identical
  // The file on disk holds the same numbers.
  EXPECT_EQ(load_sensitivity(dir.file("part.omega")).omega(), full.omega());

  // Resuming with other settings is refused.
  so.samples = 32;
  EXPECT_THROW(measure_sensitivity(g, space, stats, data, so), Error);
}

// Resume is keyed by content: the same model from another path resumes; a changed model or
// other data at the same paths is refused, naming what differs.
TEST(Sensitivity, ResumeDecidesByContentNotPath) {
  Graph g = tiny_net();
  g.source = "/first/place/model.onnx";
  SyntheticDataset data(64, {2, 6, 6}, 3, 9);
  auto space = make_search_space(g, parse_candidates("w2,w4", "test"), false, 8);
  ObserveOptions oo;
  oo.samples = 32;
  ActivationStats stats = observe_activations(g, data, oo);
  TempDir dir;
  SensitivityOptions so;
  so.samples = 32;
  so.chunk = 16;
  so.checkpoint = dir.file("run.omega");
  int units = 0;
  so.progress = [&](const std::string&) {
    if (++units == 3) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(measure_sensitivity(g, space, stats, data, so), std::runtime_error);
  so.progress = nullptr;
  so.resume = true;
  const std::string saved = read_file(so.checkpoint);

  auto refusal = [&](const Graph& model, const Dataset& d) -> std::string {
    write_file_atomic(so.checkpoint, saved);
    try {
      measure_sensitivity(model, space, stats, d, so);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  // A weight changed in place: same path, other content.
  Graph changed = g;
  for (auto& v : changed.values)
    if (v.name == "b_w") {
      v.constant = v.constant->clone();  // copies of a graph share constant buffers
      v.constant->data<float>()[0] += 0.5f;
    }
  const std::string model_msg = refusal(changed, data);
  EXPECT_NE(model_msg.find("run.omega"), std::string::npos) << model_msg;
  EXPECT_NE(model_msg.find("was measured on a different model"), std::string::npos) << model_msg;
  // Other images under the same settings.
  SyntheticDataset other(64, {2, 6, 6}, 3, 10);
  const std::string data_msg = refusal(g, other);
  EXPECT_NE(data_msg.find("was measured on different data"), std::string::npos) << data_msg;
  // The same model read from another path resumes to the uninterrupted result.
  Graph moved = g;
  moved.source = "/elsewhere/copy.onnx";
  write_file_atomic(so.checkpoint, saved);
  SensitivityData resumed = measure_sensitivity(moved, space, stats, data, so);
  ASSERT_TRUE(resumed.complete());
  so.resume = false;
  so.checkpoint = dir.file("fresh.omega");
  EXPECT_EQ(resumed.omega(), measure_sensitivity(g, space, stats, data, so).omega());
}

TEST(Sensitivity, CorruptFilesAreRefused) {
  TempDir dir;
  auto write = [&](const std::string& bytes) {
    std::ofstream(dir.file("f.omega"), std::ios::binary) << bytes;
    return dir.file("f.omega");
  };
  EXPECT_THROW(load_sensitivity(write("")), Error);
  EXPECT_THROW(load_sensitivity(write("NOTOMEGA12345678")), Error);
  EXPECT_THROW(load_sensitivity(write(std::string("MIXQOMG1") + std::string(8, '\xff'))), Error);
}

TEST(Sensitivity, CandidatesParse) {
  auto c = parse_candidates("w2,w4-sp2,w8", "--candidates");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[1].bits, 4);
  EXPECT_EQ(c[1].scheme, Scheme::sp2);
  EXPECT_THROW(parse_candidates("w9", "--candidates"), Error);
  EXPECT_THROW(parse_candidates("x4", "--candidates"), Error);
  EXPECT_THROW(parse_candidates("w4,w4", "--candidates"), Error);
  EXPECT_THROW(parse_candidates("w4-fp", "--candidates"), Error);
}
