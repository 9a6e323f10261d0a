// MSQ / RMSMP row assignment: split counts, which rows get the shift scheme and the 8-bit rows,
// the forward pass of a mixed layer against an independent computation, config round trips and
// the command line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "quant/rows.h"
#include "runtime/executor.h"
#include "support/cli_check.h"
#include "support/onnx_builder.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;

// Rows of [rows, k] with different spreads (row r scaled by 0.2 + (r * 7 % rows) / rows).
Tensor spread_rows(int64_t rows, int64_t k, uint32_t seed) {
  Tensor t = normal_f32({rows, k}, seed);
  for (int64_t r = 0; r < rows; ++r) {
    const float s = 0.2f + static_cast<float>(r * 7 % rows) / static_cast<float>(rows);
    for (int64_t i = 0; i < k; ++i) t.data<float>()[r * k + i] *= s;
  }
  return t;
}

struct Counts {
  int64_t fixed = 0, shift = 0, high = 0;
};
Counts count(const std::vector<RowQuant>& rows, int bits, int high_bits = 8) {
  Counts c;
  for (const RowQuant& r : rows) {
    if (r.scheme == Scheme::fixed && r.bits == bits) ++c.fixed;
    if (r.scheme != Scheme::fixed && r.bits == bits) ++c.shift;
    if (r.scheme == Scheme::fixed && r.bits == high_bits) ++c.high;
  }
  return c;
}

// Level magnitudes from the definitions in ALGORITHMS.md, written out independently of
// quant/scheme.cpp.
std::vector<double> levels(Scheme s, int bits) {
  std::vector<double> m;
  if (s == Scheme::fixed) {
    const int top = (1 << (bits - 1)) - 1;
    for (int k = 0; k <= top; ++k) m.push_back(static_cast<double>(k) / top);
  } else if (s == Scheme::pot) {
    m.push_back(0);
    for (int j = 0; j <= (1 << (bits - 1)) - 2; ++j) m.push_back(std::ldexp(1.0, -j));
  } else {
    EXPECT_EQ(bits, 4) << "only 4-bit SP2 is written out here";
    m = {0, 0.125, 0.25, 0.5, 0.625, 0.75, 1};
  }
  return m;
}

// Nearest level by brute force (ties to the smaller magnitude), times the sign and scale.
double brute(double w, const RowQuant& r) {
  const auto m = levels(r.scheme, r.bits);
  const double a = std::fabs(w) / r.scale;
  double best = m[0];
  for (double v : m)
    if (std::fabs(a - v) < std::fabs(a - best)) best = v;
  return std::copysign(best * r.scale, w);
}

// x[N,1,6,6] -> Conv(8 filters 3x3) -> Relu -> Conv(12 filters 3x3) -> Relu
//   -> GlobalAveragePool -> Flatten -> Gemm(12 -> 10, transB)
OnnxBuilder three_layer_model() {
  OnnxBuilder b;
  b.input("x", {-1, 1, 6, 6}).output("y", {-1, 10});
  b.initializer("w1", spread_rows(8, 9, 11).reshaped({8, 1, 3, 3}));
  b.initializer("w2", spread_rows(12, 72, 12).reshaped({12, 8, 3, 3}));
  b.initializer("fc_w", normal_f32({10, 12}, 13, 0.3f));
  b.node("Conv", {"x", "w1"}, {"c1"}, "conv1");
  b.node("Relu", {"c1"}, {"r1"}, "relu1");
  b.node("Conv", {"r1", "w2"}, {"c2"}, "conv2");
  b.node("Relu", {"c2"}, {"r2"}, "relu2");
  b.node("GlobalAveragePool", {"r2"}, {"p"}, "gap");
  b.node("Flatten", {"p"}, {"f"}, "flatten");
  auto& fc = b.node("Gemm", {"f", "fc_w"}, {"y"}, "fc");
  OnnxBuilder::attr(fc, "transB", int64_t{1});
  return b;
}

// n random 6x6 images and labels as raw IDX files; returns the data spec.
std::string write_idx(const TempDir& d, int n) {
  auto be32 = [](std::ofstream& f, uint32_t v) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
    f.write(b, 4);
  };
  std::mt19937 rng(5);
  std::ofstream img(d.file("images.idx"), std::ios::binary),
      lab(d.file("labels.idx"), std::ios::binary);
  be32(img, 0x803), be32(img, n), be32(img, 6), be32(img, 6);
  be32(lab, 0x801), be32(lab, n);
  for (int i = 0; i < n * 36; ++i) img.put(static_cast<char>(rng() % 256));
  for (int i = 0; i < n; ++i) lab.put(static_cast<char>(i % 10));
  return "idx:" + d.file("images.idx") + "," + d.file("labels.idx");
}

}  // namespace

TEST(RowsSplit, ExactCounts) {
  // round(rows x r / (1 + r)).
  EXPECT_EQ(shift_row_count(16, 1.5), 10);  // 9.6
  EXPECT_EQ(shift_row_count(32, 1.5), 19);  // 19.2
  EXPECT_EQ(shift_row_count(64, 1.5), 38);  // 38.4
  EXPECT_EQ(shift_row_count(16, 2), 11);    // 10.67
  EXPECT_EQ(shift_row_count(64, 2), 43);    // 42.67
  EXPECT_EQ(shift_row_count(10, 1), 5);
  EXPECT_EQ(shift_row_count(3, 1), 2);  // 1.5 rounds up
  EXPECT_EQ(shift_row_count(1, 1.5), 1);
  EXPECT_EQ(shift_row_count(1, 0.5), 0);  // 0.33
  EXPECT_EQ(shift_row_count(0, 1.5), 0);
  EXPECT_EQ(shift_row_count(64, 0), 0);
  EXPECT_EQ(high_row_count(16, 0.05), 1);  // 0.8
  EXPECT_EQ(high_row_count(64, 0.05), 3);  // 3.2
  EXPECT_EQ(high_row_count(8, 0.05), 0);   // 0.4
  EXPECT_EQ(high_row_count(64, 0), 0);
  EXPECT_THROW(shift_row_count(4, -1), Error);
  EXPECT_THROW(high_row_count(4, 1.5), Error);

  struct Case {
    int64_t rows;
    double ratio, share;
    int64_t fixed, shift, high;
  };
  for (const Case& c :
       {Case{16, 1.5, 0, 6, 10, 0}, Case{32, 1.5, 0, 13, 19, 0}, Case{64, 2, 0, 21, 43, 0},
        Case{64, 1.5, 0.05, 24, 37, 3}, Case{16, 1.5, 0.05, 6, 9, 1}, Case{10, 0, 0.2, 8, 0, 2},
        Case{7, 1, 0, 3, 4, 0}}) {
    MsqOptions o;
    o.ratio = c.ratio;
    o.high_share = c.share;
    auto rows = msq_rows(normal_f32({c.rows, 18}, 7), 4, o, ScaleMethod::mse);
    const Counts n = count(rows, 4);
    EXPECT_EQ(n.fixed, c.fixed) << c.rows << " rows 1:" << c.ratio << " share " << c.share;
    EXPECT_EQ(n.shift, c.shift) << c.rows << " rows 1:" << c.ratio << " share " << c.share;
    EXPECT_EQ(n.high, c.high) << c.rows << " rows 1:" << c.ratio << " share " << c.share;
    for (const RowQuant& r : rows) EXPECT_GT(r.scale, 0);
  }
}

TEST(RowsSplit, LowestVarianceRowsGetTheShiftScheme) {
  // Row r holds +-s[r] alternately: variance s[r]^2.
  const std::vector<float> s = {3, 1, 5, 2, 6, 4};
  Tensor w(DType::f32, {6, 8});
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t i = 0; i < 8; ++i) w.data<float>()[r * 8 + i] = i % 2 ? s[r] : -s[r];
  const auto var = row_variances(w);
  for (int64_t r = 0; r < 6; ++r) EXPECT_NEAR(var[r], s[r] * s[r], 1e-9);

  MsqOptions o;
  o.ratio = 1;  // 3 of 6: the rows with s = 1, 2, 3
  auto rows = msq_rows(w, 4, o, ScaleMethod::mse);
  const std::vector<Scheme> want = {Scheme::sp2, Scheme::sp2,   Scheme::fixed,
                                    Scheme::sp2, Scheme::fixed, Scheme::fixed};
  for (int64_t r = 0; r < 6; ++r) {
    EXPECT_EQ(rows[r].scheme, want[r]) << "row " << r;
    EXPECT_EQ(rows[r].bits, 4);
  }
  o.ratio = 2;  // 4 of 6, PoT: s = 1..4
  o.shift = Scheme::pot;
  rows = msq_rows(w, 3, o, ScaleMethod::maxabs);
  const std::vector<Scheme> want_pot = {Scheme::pot, Scheme::pot,   Scheme::fixed,
                                        Scheme::pot, Scheme::fixed, Scheme::pot};
  for (int64_t r = 0; r < 6; ++r) {
    EXPECT_EQ(rows[r].scheme, want_pot[r]) << "row " << r;
    EXPECT_EQ(rows[r].bits, 3);
    EXPECT_FLOAT_EQ(rows[r].scale, s[r]);  // maxabs
  }

  // The same weight stored [K, N] (MatMul): rows along axis 1.
  Tensor wt(DType::f32, {8, 6});
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t i = 0; i < 8; ++i) wt.data<float>()[i * 6 + r] = w.data<float>()[r * 8 + i];
  o.shift = Scheme::sp2;
  o.ratio = 1;
  rows = msq_rows(wt, 4, o, ScaleMethod::mse, 1);
  for (int64_t r = 0; r < 6; ++r) EXPECT_EQ(rows[r].scheme, want[r]) << "row " << r;

  // Equal variances: the lower row index first.
  Tensor flat(DType::f32, {5, 4});
  for (int64_t i = 0; i < flat.numel(); ++i) flat.data<float>()[i] = i % 2 ? 1.0f : -1.0f;
  rows = msq_rows(flat, 4, o, ScaleMethod::mse);  // round(2.5) = 3
  for (int64_t r = 0; r < 5; ++r) EXPECT_EQ(rows[r].scheme, r < 3 ? Scheme::sp2 : Scheme::fixed);
}

TEST(RowsSplit, HighPrecisionRowsHaveTheLargestError) {
  Tensor w = spread_rows(40, 50, 21);
  // Independent scores: each row's own MSE scale at 4-bit fixed, squared error by brute force.
  std::vector<double> score(40, 0);
  for (int64_t r = 0; r < 40; ++r) {
    const float* x = w.data<float>() + r * 50;
    const RowQuant q{Scheme::fixed, 4, choose_scale(x, 50, Scheme::fixed, 4, ScaleMethod::mse)};
    for (int64_t i = 0; i < 50; ++i) score[r] += std::pow(x[i] - brute(x[i], q), 2);
  }
  const auto got = row_error_energy(w, 4, ScaleMethod::mse);
  for (int64_t r = 0; r < 40; ++r) EXPECT_NEAR(got[r], score[r], 1e-6 * (1 + score[r]));

  MsqOptions o;
  o.ratio = 1.5;
  o.high_share = 0.1;  // 4 rows
  const auto rows = msq_rows(w, 4, o, ScaleMethod::mse);
  std::vector<double> sorted = score;
  std::sort(sorted.rbegin(), sorted.rend());
  const double threshold = sorted[3];
  int high = 0;
  for (int64_t r = 0; r < 40; ++r) {
    const bool is_high = rows[r].bits == 8;
    high += is_high;
    EXPECT_EQ(is_high, score[r] >= threshold) << "row " << r << " score " << score[r];
    if (is_high) {
      EXPECT_EQ(rows[r].scheme, Scheme::fixed);
    }
  }
  EXPECT_EQ(high, 4);
  // The other 36 rows split 1:1.5: round(36 x 0.6) = 22 SP2 rows, the lowest-variance ones.
  const Counts n = count(rows, 4);
  EXPECT_EQ(n.shift, 22);
  EXPECT_EQ(n.fixed, 14);
  const auto var = row_variances(w);
  double max_sp2 = 0, min_fixed = 1e30;
  for (int64_t r = 0; r < 40; ++r) {
    if (rows[r].scheme == Scheme::sp2) max_sp2 = std::max(max_sp2, var[r]);
    if (rows[r].scheme == Scheme::fixed && rows[r].bits == 4)
      min_fixed = std::min(min_fixed, var[r]);
  }
  EXPECT_LE(max_sp2, min_fixed);

  // Deterministic: the same weight gives the same rows.
  const auto again = msq_rows(w, 4, o, ScaleMethod::mse);
  for (int64_t r = 0; r < 40; ++r) {
    EXPECT_EQ(again[r].scheme, rows[r].scheme);
    EXPECT_EQ(again[r].bits, rows[r].bits);
    EXPECT_EQ(again[r].scale, rows[r].scale);
  }
}

TEST(RowsApply, MixedLayerEqualsPerRowComputation) {
  // x[N,20] -> Gemm(12 rows, transB) with mixed rows: fixed 4, SP2 4, PoT 4 and fixed 8.
  const Tensor w = spread_rows(12, 20, 31);
  OnnxBuilder b;
  b.input("x", {-1, 20}).output("y", {-1, 12});
  b.initializer("w", w);
  auto& n = b.node("Gemm", {"x", "w"}, {"y"}, "fc");
  OnnxBuilder::attr(n, "transB", int64_t{1});
  Graph g = load_onnx_bytes(b.bytes(), "fc");

  for (Scheme shift : {Scheme::sp2, Scheme::pot}) {
    MsqOptions o;
    o.ratio = 1.5;
    o.shift = shift;
    o.high_share = 0.2;  // 2 rows at 8 bits, then 6 shift and 4 fixed
    QuantConfig cfg;
    cfg.layers.push_back({"fc", msq_rows(w, 4, o, ScaleMethod::mse), std::nullopt});
    const Counts c = count(cfg.layers[0].rows, 4);
    ASSERT_EQ(c.high, 2);
    ASSERT_EQ(c.shift, 6);
    ASSERT_EQ(c.fixed, 4);
    Graph q = apply_quant(g, cfg);
    Tensor x = normal_f32({3, 20}, 32);
    Tensor got = Executor(q).run({x})[0];
    ASSERT_EQ(got.shape(), (Shape{3, 12}));
    for (int64_t s = 0; s < 3; ++s)
      for (int64_t r = 0; r < 12; ++r) {
        double want = 0;
        for (int64_t i = 0; i < 20; ++i)
          want += x.data<float>()[s * 20 + i] *
                  brute(w.data<float>()[r * 20 + i], cfg.layers[0].rows[r]);
        EXPECT_NEAR(got.data<float>()[s * 12 + r], want, 1e-4) << "sample " << s << " row " << r;
      }
  }
}

TEST(RowsConfig, UniformConfigMixesMiddleRowsAndRoundTrips) {
  Graph g = load_onnx_bytes(three_layer_model().bytes(), "three");
  UniformOptions u;
  u.wbits = 4;
  u.abits = 0;
  u.msq.ratio = 1.5;
  u.msq.high_share = 0.1;
  QuantConfig cfg = uniform_config(g, nullptr, u);
  ASSERT_EQ(cfg.layers.size(), 3u);
  // Edges: 8-bit fixed. Middle (12 rows): 1 at 8 bits, round(11 x 0.6) = 7 SP2, 4 fixed.
  for (size_t e : {size_t{0}, size_t{2}})
    for (const RowQuant& r : cfg.layers[e].rows) {
      EXPECT_EQ(r.scheme, Scheme::fixed);
      EXPECT_EQ(r.bits, 8);
    }
  const Counts c = count(cfg.layers[1].rows, 4);
  EXPECT_EQ(c.high, 1);
  EXPECT_EQ(c.shift, 7);
  EXPECT_EQ(c.fixed, 4);
  EXPECT_EQ(cfg.info["method"], "rmsmp");
  EXPECT_EQ(cfg.info["msq"]["ratio"], 1.5);

  // No edge bits: every layer mixed (conv1: 8 rows, 0 high, 5 SP2).
  u.edge_bits = 0;
  u.msq.shift = Scheme::pot;
  QuantConfig all = uniform_config(g, nullptr, u);
  const Counts first = count(all.layers[0].rows, 4), last = count(all.layers[2].rows, 4);
  EXPECT_EQ(first.high, 1);   // round(0.8)
  EXPECT_EQ(first.shift, 4);  // round(7 x 0.6)
  EXPECT_EQ(last.high, 1);    // fc: 10 rows
  EXPECT_EQ(last.shift, 5);   // round(9 x 0.6)
  for (const RowQuant& r : all.layers[2].rows)
    EXPECT_TRUE(r.scheme == Scheme::fixed || r.scheme == Scheme::pot);

  TempDir d;
  save_quant_config(cfg, d.file("q.json"));
  const QuantConfig back = load_quant_config(d.file("q.json"));
  ASSERT_EQ(back.layers.size(), cfg.layers.size());
  for (size_t l = 0; l < cfg.layers.size(); ++l) {
    ASSERT_EQ(back.layers[l].rows.size(), cfg.layers[l].rows.size());
    for (size_t r = 0; r < cfg.layers[l].rows.size(); ++r) {
      EXPECT_EQ(back.layers[l].rows[r].scheme, cfg.layers[l].rows[r].scheme);
      EXPECT_EQ(back.layers[l].rows[r].bits, cfg.layers[l].rows[r].bits);
      EXPECT_EQ(back.layers[l].rows[r].scale, cfg.layers[l].rows[r].scale);
    }
  }
  EXPECT_EQ(back.info["msq"]["shift_scheme"], "sp2");

  u.per_row = false;
  EXPECT_THROW(uniform_config(g, nullptr, u), Error);
}

TEST(RowsCli, BadFlagsAreUsageErrors) {
  TempDir d;
  three_layer_model().save(d.file("m.onnx"));
  const std::string q = kMixq + " quantize " + d.file("m.onnx") + " --calib-data fmnist:train ";
  const std::string c = kMixq + " calibrate " + d.file("m.onnx") + " --data fmnist:train -o " +
                        d.file("q.json") + " ";
  expect_clean_error(run_command(q + "--ratio 1:x"), "--ratio", 2);
  expect_clean_error(run_command(q + "--ratio 1:-2"), "--ratio", 2);
  expect_clean_error(run_command(c + "--ratio abc"), "--ratio", 2);
  expect_clean_error(run_command(q + "--device xc9z999"), "--device", 2);
  expect_clean_error(run_command(c + "--device nosuch"), "XC7Z020", 2);  // lists the devices
  expect_clean_error(run_command(q + "--device xc7z020 --ratio 1:2"), "--device", 2);
  expect_clean_error(run_command(q + "--ratio 1:1.5 --wbits 0"), "--ratio", 2);
  expect_clean_error(run_command(q + "--ratio 1:1.5 --scheme sp2"), "--ratio", 2);
  expect_clean_error(run_command(q + "--device 7z045 --per-tensor"), "--device", 2);
  expect_clean_error(run_command(q + "--high-precision-share 0.05 --wbits 0"),
                     "--high-precision-share", 2);
  expect_clean_error(run_command(q + "--high-precision-share 1.5"), "--high-precision-share", 2);
  expect_clean_error(run_command(q + "--shift-scheme fixed"), "--shift-scheme", 2);
  expect_clean_error(run_command(q + "--high-bits 9"), "--high-bits", 2);
}

TEST(RowsCli, QuantizeWritesMixedRowsAndEvalRunsThem) {
  TempDir d;
  three_layer_model().save(d.file("m.onnx"));
  const std::string data = write_idx(d, 20);
  auto r = run_command(kMixq + " quantize " + d.file("m.onnx") + " --calib-data " + data +
                       " --data " + data + " --wbits 4 --abits 8 --device xc7z020" +
                       " --high-precision-share 0.1 --threads 1 -o " + d.file("out"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("top-1"), std::string::npos) << r.out;
  const QuantConfig cfg = load_quant_config(d.file("out/quant.json"));
  ASSERT_EQ(cfg.layers.size(), 3u);
  EXPECT_EQ(cfg.info["msq"]["ratio"], 1.5);  // XC7Z020's balanced ratio at 4 bits
  const Counts c = count(cfg.layers[1].rows, 4);
  EXPECT_EQ(c.high, 1);
  EXPECT_EQ(c.shift, 7);
  EXPECT_EQ(c.fixed, 4);

  auto e = run_command(kMixq + " eval " + d.file("out/model.onnx") + " --quant " +
                       d.file("out/quant.json") + " --data " + data + " --threads 1");
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_NE(e.out.find("top-1"), std::string::npos) << e.out;

  auto k =
      run_command(kMixq + " calibrate " + d.file("m.onnx") + " --data " + data +
                  " --abits 0 --ratio 1:2 --shift-scheme pot --threads 1 -o " + d.file("c.json"));
  ASSERT_EQ(k.status, 0) << k.err;
  const QuantConfig pot = load_quant_config(d.file("c.json"));
  int64_t n_pot = 0;
  for (const RowQuant& row : pot.layers[1].rows) n_pot += row.scheme == Scheme::pot;
  EXPECT_EQ(n_pot, 8);  // round(12 x 2/3)
}
