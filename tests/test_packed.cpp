// The packed format: SP2 exponent fields, bit-exact round trips of every scheme and width on both
// row axes, and refusal of corrupt, truncated and foreign files.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "base/error.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "quant/calibrate.h"
#include "quant/layers.h"
#include "quant/quantizer.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"

using namespace mixq;
using namespace mixq::test;

namespace {

// x[N,2,5,5] -> Conv(6 filters 3x3, bias, stride 2) -> Relu -> Flatten -> MatMul([24, 5])
Graph tiny_graph() {
  OnnxBuilder b;
  b.input("x", {-1, 2, 5, 5}).output("y", {-1, 5});
  b.initializer("w", random_tensor(DType::f32, {6, 2, 3, 3}, 1, 0.3));
  b.initializer("bias", random_tensor(DType::f32, {6}, 2, 0.1));
  b.initializer("m", random_tensor(DType::f32, {24, 5}, 3, 0.2));
  OnnxBuilder::attr(b.node("Conv", {"x", "w", "bias"}, {"c"}, "conv"), "strides",
                    std::vector<int64_t>{2, 2});
  b.node("Relu", {"c"}, {"r"}, "relu");
  b.node("Flatten", {"r"}, {"f"}, "flatten");
  b.node("MatMul", {"f", "m"}, {"y"}, "fc");
  return load_onnx_bytes(b.bytes(), "tiny");
}

// Rows cycling through every scheme and width, scales by MSE.
QuantConfig mixed_config(const Graph& g, int offset) {
  QuantConfig cfg;
  for (const QuantLayer& l : find_quant_layers(g)) {
    LayerConfig lc;
    lc.name = l.name;
    for (int64_t r = 0; r < l.rows; ++r) {
      const int k = static_cast<int>(r) + offset;
      lc.rows.push_back({static_cast<Scheme>(k % kSchemeCount), kMinBits + k % 7, 1.0f});
    }
    choose_row_scales(g.constant(l.weight), lc.rows, ScaleMethod::mse, l.row_axis);
    lc.input = act_quant_for_range(0, 2.0f, 8);
    cfg.layers.push_back(lc);
  }
  return cfg;
}

}  // namespace

TEST(Packed, Sp2StoresItsTwoExponentFields) {
  // 4-bit SP2: q1 in {0, 1/2, 1/4, 1/8} (field a, 2 bits), q2 in {0, 1/2} (field b, 1 bit).
  const LevelSet& ls = level_set(Scheme::sp2, 4);
  auto index_of = [&](float m) {
    return static_cast<size_t>(std::find(ls.magnitudes.begin(), ls.magnitudes.end(), m) -
                               ls.magnitudes.begin());
  };
  EXPECT_EQ(level_field(Scheme::sp2, 4, index_of(0.625f)), (3u << 1) | 1u);  // 1/8 + 1/2
  EXPECT_EQ(level_field(Scheme::sp2, 4, index_of(0.25f)), 2u << 1);          // 1/4 + 0
  EXPECT_EQ(level_field(Scheme::sp2, 4, index_of(1.0f)), (1u << 1) | 1u);    // 1/2 + 1/2
  // Every field decodes to a level whose field decodes to the same level.
  for (Scheme s : {Scheme::fixed, Scheme::pot, Scheme::sp2})
    for (int bits = kMinBits; bits <= kMaxBits; ++bits) {
      const LevelSet& l = level_set(s, bits);
      for (size_t i = 0; i < l.magnitudes.size(); ++i)
        EXPECT_EQ(field_level(s, bits, level_field(s, bits, i)), static_cast<int64_t>(i))
            << scheme_name(s) << bits;
      EXPECT_EQ(field_level(s, bits, 1u << (bits - 1)), -1);  // the sign bit is not a field
    }
}

TEST(Packed, RoundTripIsBitExactForEverySchemeAndWidth) {
  const Graph g = tiny_graph();
  for (int offset = 0; offset < 7; ++offset) {
    const QuantConfig cfg = mixed_config(g, offset);
    const PackedModel m = parse_packed(serialize_packed(pack_model(g, cfg)), "test");
    ASSERT_EQ(m.layers.size(), 2u);
    const auto layers = find_quant_layers(g);
    for (size_t i = 0; i < 2; ++i) {
      const PackedLayer& p = m.layers[i];
      EXPECT_EQ(p.name, layers[i].name);
      EXPECT_EQ(p.row_axis, layers[i].row_axis);
      ASSERT_EQ(p.rows.size(), cfg.layers[i].rows.size());
      for (size_t r = 0; r < p.rows.size(); ++r) {
        EXPECT_EQ(p.rows[r].scheme, cfg.layers[i].rows[r].scheme);
        EXPECT_EQ(p.rows[r].bits, cfg.layers[i].rows[r].bits);
        EXPECT_EQ(p.rows[r].scale, cfg.layers[i].rows[r].scale);
      }
      const Tensor want =
          fake_quantize_weight(g.constant(layers[i].weight), cfg.layers[i].rows, p.row_axis);
      const Tensor got = unpack_weight(p);
      ASSERT_EQ(got.shape(), want.shape());
      for (int64_t e = 0; e < got.numel(); ++e)
        ASSERT_EQ(got.data<float>()[e], want.data<float>()[e]) << p.name << " element " << e;
      ASSERT_TRUE(p.input.has_value());
      EXPECT_EQ(p.input->scale, cfg.layers[i].input->scale);
    }
    // The conv keeps its bias and geometry; rows are packed at their own widths.
    EXPECT_EQ(m.layers[0].bias.size(), 6u);
    EXPECT_EQ(m.layers[0].attrs.at("strides"), nlohmann::json({2, 2}));
    EXPECT_TRUE(m.layers[1].bias.empty());
    EXPECT_EQ(m.layers[0].codes.size(), packed_code_bytes(cfg.layers[0].rows, 18));
  }
}

TEST(Packed, RefusesCorruptTruncatedAndForeignFiles) {
  const Graph g = tiny_graph();
  const std::string good = serialize_packed(pack_model(g, mixed_config(g, 0)));
  TempDir dir;
  auto message = [&](const std::string& bytes) {
    const std::string path = dir.file("bad.mixq");
    std::ofstream(path, std::ios::binary) << bytes;
    try {
      load_packed(path);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(good.substr(0, good.size() / 2)).find("checksum"), std::string::npos);
  std::string flipped = good;
  flipped[good.size() - 20] ^= 0x10;
  EXPECT_NE(message(flipped).find("checksum"), std::string::npos);
  EXPECT_NE(message("not a packed file at all, but long enough").find("magic"), std::string::npos);
  EXPECT_NE(message("").find("magic"), std::string::npos);
  std::string future = good;
  future[8] = 9;
  EXPECT_NE(message(future).find("version"), std::string::npos);
  EXPECT_EQ(message(good), "no error");
}
