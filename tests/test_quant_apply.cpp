// Fake-quantized execution against an independent computation, config round trips and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>

#include "base/error.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "runtime/executor.h"
#include "support/onnx_builder.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

namespace {

// x[N,2,5,5] -> Conv(3 filters 3x3) -> Relu -> Flatten -> MatMul([27, 4] weight)
Graph tiny_graph() {
  OnnxBuilder b;
  b.input("x", {-1, 2, 5, 5}).output("y", {-1, 4});
  b.initializer("w", normal_f32({3, 2, 3, 3}, 1, 0.3f));
  b.initializer("m", normal_f32({27, 4}, 2, 0.2f));
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  b.node("Relu", {"c"}, {"r"}, "relu");
  b.node("Flatten", {"r"}, {"f"}, "flatten");
  b.node("MatMul", {"f", "m"}, {"y"}, "fc");
  return load_onnx_bytes(b.bytes(), "tiny");
}

// Every scheme in the conv's rows and the fc's; the fc's last row is PoT at pot_bits.
QuantConfig mixed_config(int pot_bits) {
  QuantConfig cfg;
  LayerConfig conv{"conv", {}, act_quant_for_range(-2.0f, 2.5f, 4)};
  conv.rows = {{Scheme::fixed, 4, 0.5f}, {Scheme::sp2, 4, 0.6f}, {Scheme::pot, 3, 0.7f}};
  LayerConfig fc{"fc", {}, act_quant_for_range(0, 3.0f, 8)};
  fc.rows = {{Scheme::fixed, 2, 0.3f},
             {Scheme::fixed, 8, 0.4f},
             {Scheme::sp2, 5, 0.5f},
             {Scheme::pot, pot_bits, 0.6f}};
  cfg.layers = {conv, fc};
  return cfg;
}

// Rounds v to the quantizer grid the way the definition reads.
float fq(float v, const ActQuant& q) {
  float k = std::nearbyint(v / q.scale) + q.zero_point;
  k = std::min<float>(std::max<float>(k, q.qmin), q.qmax);
  return (k - q.zero_point) * q.scale;
}

}  // namespace

TEST(QuantApply, FindsLayersWithRowAxes) {
  Graph g = tiny_graph();
  auto layers = find_quant_layers(g);
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].name, "conv");
  EXPECT_EQ(layers[0].row_axis, 0);
  EXPECT_EQ(layers[0].rows, 3);
  EXPECT_EQ(layers[1].name, "fc");
  EXPECT_EQ(layers[1].row_axis, 1);  // MatMul [K, N]: output channels on axis 1
  EXPECT_EQ(layers[1].rows, 4);
}

TEST(QuantApply, ForwardEqualsIndependentComputation) {
  Graph g = tiny_graph();
  const QuantConfig cfg = mixed_config(4);
  const LayerConfig &conv = cfg.layers[0], &fc = cfg.layers[1];
  Graph q = apply_quant(g, cfg);
  Tensor x = normal_f32({2, 2, 5, 5}, 3);
  Tensor got = Executor(q).run({x})[0];

  // Independent: quantize each weight element to its row's level set by brute force, fake
  // quantize the inputs by the formula, and run the float graph on those.
  auto brute = [](float w, const RowQuant& r) {
    const LevelSet& ls = level_set(r.scheme, r.bits);
    float best = 0;
    for (float m : ls.magnitudes)
      for (float sgn : {-1.0f, 1.0f})
        if (std::fabs(sgn * m * r.scale - w) < std::fabs(best - w)) best = sgn * m * r.scale;
    return best;
  };
  Graph ref = g;
  Tensor w = ref.constant(ref.find_value("w")).clone();
  for (int64_t i = 0; i < w.numel(); ++i)
    w.data<float>()[i] = brute(w.data<float>()[i], conv.rows[i / 18]);
  ref.values[ref.find_value("w")].constant = w;
  Tensor m = ref.constant(ref.find_value("m")).clone();
  for (int64_t i = 0; i < m.numel(); ++i)
    m.data<float>()[i] = brute(m.data<float>()[i], fc.rows[i % 4]);
  ref.values[ref.find_value("m")].constant = m;
  // Run conv on the quantized input, then quantize the flattened activation before MatMul.
  Tensor xq = x.clone();
  for (int64_t i = 0; i < xq.numel(); ++i)
    xq.data<float>()[i] = fq(xq.data<float>()[i], *conv.input);
  Executor ex(ref);
  auto env = ex.environment();
  env[ref.inputs[0]] = xq;
  const int fc_node = 3;
  ex.run_range(env, 0, fc_node);
  int f = ref.find_value("f");
  Tensor fl = env[f].clone();
  for (int64_t i = 0; i < fl.numel(); ++i) fl.data<float>()[i] = fq(fl.data<float>()[i], *fc.input);
  env[f] = fl;
  ex.run_range(env, fc_node);
  const Tensor& want = env[ref.outputs[0]];
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < got.numel(); ++i)
    EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-5) << i;
}

TEST(QuantApply, QdqFormRunsTheSameValuesFromIntegerCodes) {
  Graph g = tiny_graph();
  // PoT at 6 bits has levels down to 2^-30: its codes need the int32 container.
  const QuantConfig cfg = mixed_config(6);
  const Graph fq = apply_quant(g, cfg);
  const Graph qdq = apply_quant(g, cfg, "test", WeightForm::qdq);
  std::map<std::string, DType> codes;  // DequantizeLinear node -> its codes' type
  for (const Node& n : qdq.nodes)
    if (n.op_type == "DequantizeLinear" && qdq.is_constant(n.inputs[0]))
      codes[n.name] = qdq.constant(n.inputs[0]).dtype();
  ASSERT_EQ(codes.size(), 2u);
  EXPECT_EQ(codes["w/q/DequantizeLinear"], DType::i8);
  EXPECT_EQ(codes["m/q/DequantizeLinear"], DType::i32);
  const Tensor x = normal_f32({2, 2, 5, 5}, 3);
  const Tensor want = Executor(fq, Impl::reference).run({x})[0];
  const Tensor got = Executor(qdq, Impl::reference).run({x})[0];
  TempDir dir;
  save_onnx(qdq, dir.file("qdq.onnx"));
  const Tensor reloaded = Executor(load_onnx(dir.file("qdq.onnx"))).run({x})[0];
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < got.numel(); ++i) {
    EXPECT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-5) << i;
    EXPECT_NEAR(reloaded.data<float>()[i], want.data<float>()[i], 1e-5) << i;
  }
}

TEST(QuantApply, ConfigRoundTripsThroughJson) {
  Graph g = tiny_graph();
  UniformOptions o;
  o.wbits = 3;
  o.abits = 0;
  o.edge_bits = 0;
  o.scheme = Scheme::sp2;
  QuantConfig cfg = uniform_config(g, nullptr, o);
  cfg.layers[1].rows[2].scheme = Scheme::fixed;  // mixed rows
  cfg.layers[1].rows[2].bits = 8;
  cfg.layers[0].input = act_quant_for_range(-1, 1, 6);
  TempDir d;
  save_quant_config(cfg, d.file("q.json"));
  QuantConfig back = load_quant_config(d.file("q.json"));
  ASSERT_EQ(back.layers.size(), 2u);
  for (size_t l = 0; l < 2; ++l) {
    ASSERT_EQ(back.layers[l].rows.size(), cfg.layers[l].rows.size());
    for (size_t r = 0; r < cfg.layers[l].rows.size(); ++r) {
      EXPECT_EQ(back.layers[l].rows[r].scheme, cfg.layers[l].rows[r].scheme);
      EXPECT_EQ(back.layers[l].rows[r].bits, cfg.layers[l].rows[r].bits);
      EXPECT_EQ(back.layers[l].rows[r].scale, cfg.layers[l].rows[r].scale);
    }
  }
  ASSERT_TRUE(back.layers[0].input.has_value());
  EXPECT_EQ(back.layers[0].input->scale, cfg.layers[0].input->scale);
  EXPECT_EQ(back.layers[0].input->zero_point, cfg.layers[0].input->zero_point);
  EXPECT_FALSE(back.layers[1].input.has_value());
}

TEST(QuantApply, BadConfigsAreRefused) {
  Graph g = tiny_graph();
  TempDir d;
  auto write = [&](const std::string& text) {
    std::string p = d.file("bad.json");
    std::ofstream(p) << text;
    return p;
  };
  EXPECT_THROW(load_quant_config(write("{not json")), Error);
  EXPECT_THROW(load_quant_config(write(R"({"format":"mixq-quant","version":99,"layers":[]})")),
               Error);
  EXPECT_THROW(load_quant_config(write(
                   R"({"format":"mixq-quant","version":1,"layers":[{"name":"conv","weight":
                   {"scheme":"fixed","bits":12,"scales":[1,1,1]}}]})")),
               Error);
  QuantConfig wrong_rows;
  wrong_rows.layers.push_back({"conv", {{Scheme::fixed, 4, 1}}, std::nullopt});
  try {
    apply_quant(g, wrong_rows, "q.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q.json: layer 'conv' has 3 rows, config gives 1"),
              std::string::npos)
        << e.what();
  }
  QuantConfig missing;
  missing.layers.push_back({"nosuch", {}, std::nullopt});
  EXPECT_THROW(apply_quant(g, missing), Error);
}

// A config made for moved weights (compensated rounding, fine-tuning) records their hash:
// it round-trips, holds for the model with those weights and is refused on any other.
TEST(QuantApply, ConfigForMovedWeightsHoldsOnlyForThem) {
  const Graph g = tiny_graph();
  QuantConfig cfg;
  const Tensor& w = g.constant(find_quant_layers(g)[0].weight);
  cfg.layers.push_back({"conv", choose_weight_quant(w, Scheme::fixed, 4, ScaleMethod::mse), {}});
  Graph moved = g;
  const int wv = find_quant_layers(moved)[0].weight;
  Tensor changed = moved.constant(wv).clone();
  changed.data<float>()[0] += 0.01f;
  moved.values[wv].constant = changed;
  cfg.weights_hash = config_weights_hash(moved, cfg);
  EXPECT_NE(cfg.weights_hash, config_weights_hash(g, cfg));
  const QuantConfig back = parse_quant_config(to_json(cfg).dump(), "q.json");
  EXPECT_EQ(back.weights_hash, cfg.weights_hash);
  EXPECT_NO_THROW(apply_quant(moved, back, "q.json"));
  EXPECT_NE(test::error_of([&] {
              apply_quant(g, back, "q.json");
            }).find("q.json: was made for other weights"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { pack_model(g, back, "q.json"); }).find("q.json"),
            std::string::npos);
  nlohmann::json j = to_json(cfg);
  j["version"] = 1;  // the field came with version 2
  EXPECT_NE(test::error_of([&] { quant_config_from_json(j, "q.json"); }).find("version 2"),
            std::string::npos);
  j["version"] = 2;
  j["weights_hash"] = "not-a-hash";
  EXPECT_NE(test::error_of([&] { quant_config_from_json(j, "q.json"); }).find("16 hex digits"),
            std::string::npos);
  j.erase("weights_hash");
  j["version"] = 1;  // files written before version 2 still read
  EXPECT_NO_THROW(quant_config_from_json(j, "q.json"));
}

TEST(QuantApply, AverageBitsAndBytes) {
  Graph g = tiny_graph();
  auto layers = find_quant_layers(g);
  QuantConfig cfg;
  cfg.layers.push_back({"conv", std::vector<RowQuant>(3, {Scheme::fixed, 4, 1}), std::nullopt});
  cfg.layers.push_back({"fc", std::vector<RowQuant>(4, {Scheme::fixed, 8, 1}), std::nullopt});
  // 54 weights at 4 bits, 108 at 8 bits.
  EXPECT_DOUBLE_EQ(average_weight_bits(g, cfg, layers), (54.0 * 4 + 108.0 * 8) / 162);
  EXPECT_DOUBLE_EQ(weight_bytes(g, cfg), (54.0 * 4 + 108.0 * 8) / 8);
}
