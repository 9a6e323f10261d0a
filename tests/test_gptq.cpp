// Error-compensating rounding: the input gram against the layer it describes, the compensated
// weights against a plain column-by-column reference, and their output error against
// round-to-nearest on the same grids, for every scheme and row mix.
#include <gtest/gtest.h>

#include "quant/gptq.h"
#include "quant/rounding.h"
#include "quant/rows.h"
#include "support/op_runner.h"

namespace mixq {
namespace {

using test::Arg;
using test::normal_f32;
using test::one_node;
using Attrs = std::map<std::string, Attribute>;
using Ints = std::vector<int64_t>;

// The gram of layer n0 of g on input x.
InputGram gram_of(const Graph& g, const Tensor& x) {
  const auto layers = find_quant_layers(g);
  EXPECT_EQ(layers.size(), 1u);
  InputGram gram = make_input_gram(g, layers[0]);
  accumulate_input_gram(g, layers[0], x, gram);
  return gram;
}

// w_r^T H w_r must be the energy of output channel r: the gram holds exactly the windows the
// convolution multiplies, padding, strides, dilations and groups included.
void expect_conv_gram_matches_output(const Shape& xs, const Shape& ws, const Attrs& attrs) {
  SCOPED_TRACE(shape_str(xs) + " * " + shape_str(ws));
  const Tensor x = normal_f32(xs, 1), w = normal_f32(ws, 2);
  const Graph g = one_node("Conv", {Arg(x), Arg(w, true)}, attrs);
  const InputGram gram = gram_of(g, x);
  Executor ex(g, Impl::reference);
  const Tensor y = ex.run({x})[0];
  const int64_t co = ws[0], per = co / gram.groups, pos = y.numel() / (y.dim(0) * co);
  for (int64_t r = 0; r < co; ++r) {
    double energy = 0;
    for (int64_t n = 0; n < y.dim(0); ++n)
      for (int64_t p = 0; p < pos; ++p) {
        const double v = y.data<float>()[(n * co + r) * pos + p];
        energy += v * v;
      }
    const double* h = gram.group(r / per);
    const float* wr = w.data<float>() + r * gram.k;
    double quad = 0;
    for (int64_t i = 0; i < gram.k; ++i)
      for (int64_t j = 0; j < gram.k; ++j) quad += wr[i] * h[i * gram.k + j] * wr[j];
    EXPECT_NEAR(quad, energy, 1e-4 * energy) << "row " << r;
  }
  EXPECT_EQ(gram.rows, static_cast<double>(xs[0] * pos));
}

TEST(InputGram, ConvGramIsTheOutputEnergy) {
  expect_conv_gram_matches_output({2, 3, 7, 6}, {4, 3, 3, 3}, {{"pads", Ints{1, 0, 2, 1}}});
  expect_conv_gram_matches_output(
      {2, 4, 9, 9}, {6, 2, 3, 2},
      {{"group", int64_t{2}}, {"strides", Ints{2, 3}}, {"dilations", Ints{2, 1}}});
  expect_conv_gram_matches_output(
      {1, 5, 8, 8}, {5, 1, 3, 3},
      {{"group", int64_t{5}}, {"auto_pad", std::string("SAME_UPPER")}, {"strides", Ints{2, 2}}});
  expect_conv_gram_matches_output({3, 2, 11}, {3, 2, 4}, {{"pads", Ints{2, 1}}});
}

TEST(InputGram, GemmAndMatMulGramIsXtX) {
  const Tensor x = normal_f32({3, 5, 6}, 3), w = normal_f32({6, 4}, 4);
  const InputGram gram = gram_of(one_node("MatMul", {Arg(x), Arg(w, true)}), x);
  ASSERT_EQ(gram.k, 6);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 6; ++j) {
      double want = 0;
      for (int64_t r = 0; r < 15; ++r)
        want += double(x.data<float>()[r * 6 + i]) * x.data<float>()[r * 6 + j];
      EXPECT_NEAR(gram.group(0)[i * 6 + j], want, 1e-4);
    }
  const Tensor x2 = normal_f32({8, 6}, 5), w2 = normal_f32({3, 6}, 6);
  const Graph gemm = one_node("Gemm", {Arg(x2), Arg(w2, true)}, {{"transB", int64_t{1}}});
  EXPECT_EQ(gram_of(gemm, x2).rows, 8);
}

// A layer with correlated inputs (as real activations are): x = z M for a random mixing M.
struct Layer {
  Tensor w;
  InputGram gram;
};

Layer correlated_layer(int64_t rows, int64_t k, int row_axis, uint32_t seed) {
  const Tensor z = normal_f32({256, k}, seed), m = normal_f32({k, k}, seed + 1, 0.3f);
  Tensor x(DType::f32, {256, k});
  for (int64_t n = 0; n < 256; ++n)
    for (int64_t j = 0; j < k; ++j) {
      double s = z.data<float>()[n * k + j];
      for (int64_t i = 0; i < k; ++i) s += z.data<float>()[n * k + i] * m.data<float>()[i * k + j];
      x.data<float>()[n * k + j] = static_cast<float>(s);
    }
  Layer l;
  l.w = normal_f32(row_axis == 0 ? Shape{rows, k} : Shape{k, rows}, seed + 2, 0.1f);
  const Graph g = row_axis == 0
                      ? one_node("Gemm", {Arg(x), Arg(l.w, true)}, {{"transB", int64_t{1}}})
                      : one_node("MatMul", {Arg(x), Arg(l.w, true)});
  l.gram = gram_of(g, x);
  return l;
}

struct Case {
  const char* name;
  std::function<std::vector<RowQuant>(const Tensor&, int)> rows;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  for (Scheme s : {Scheme::fixed, Scheme::pot, Scheme::sp2})
    for (int bits : {3, 4})
      for (bool per_row : {true, false})
        c.push_back({"scheme", [=](const Tensor& w, int axis) {
                       return choose_weight_quant(w, s, bits, ScaleMethod::mse, per_row, axis);
                     }});
  c.push_back({"msq", [](const Tensor& w, int axis) {
                 MsqOptions m;
                 m.ratio = 1.5;
                 m.high_share = 0.1;
                 return msq_rows(w, 4, m, ScaleMethod::mse, axis);
               }});
  return c;
}

TEST(Gptq, LowersOutputErrorOnEveryGrid) {
  for (int axis : {0, 1}) {
    const Layer l = correlated_layer(24, 40, axis, 7);
    int i = 0;
    for (const Case& c : cases()) {
      SCOPED_TRACE(std::string(c.name) + " case " + std::to_string(i++) + " axis " +
                   std::to_string(axis));
      const auto rows = c.rows(l.w, axis);
      const Tensor rtn = fake_quantize_weight(l.w, rows, axis);
      const Tensor q = gptq_quantize_weight(l.w, rows, axis, l.gram);
      EXPECT_LT(output_error(l.w, q, axis, l.gram), 0.9 * output_error(l.w, rtn, axis, l.gram));
      // On the grid: nearest rounding with the same rows gives the same values back.
      test::expect_close(fake_quantize_weight(q, rows, axis), q, 0, 0);
    }
  }
}

TEST(Gptq, BlockedEqualsColumnByColumnReference) {
  for (int axis : {0, 1}) {
    const Layer l = correlated_layer(16, 300, axis, 11);
    for (const Case& c : cases()) {
      const auto rows = c.rows(l.w, axis);
      GptqOptions o;
      o.block = 64;  // several blocks and a ragged last one
      const Tensor fast = gptq_quantize_weight(l.w, rows, axis, l.gram, o);
      const Tensor ref = gptq_quantize_weight_reference(l.w, rows, axis, l.gram, o);
      const double ef = output_error(l.w, fast, axis, l.gram),
                   er = output_error(l.w, ref, axis, l.gram);
      EXPECT_NEAR(ef, er, 1e-3 * er);
      int64_t differ = 0;
      for (int64_t i = 0; i < fast.numel(); ++i)
        differ += std::fabs(fast.data<float>()[i] - ref.data<float>()[i]) > 1e-6f;
      EXPECT_LE(differ, fast.numel() / 1000) << c.name;
    }
  }
}

TEST(Gptq, DeadInputsAndGroupsAreHandled) {
  // A depthwise conv whose second channel is always zero: its weights round to nearest.
  Tensor x = normal_f32({4, 2, 6, 6}, 21);
  for (int64_t i = 36; i < 72; ++i)
    for (int64_t n = 0; n < 4; ++n) x.data<float>()[n * 72 + i] = 0;
  const Tensor w = normal_f32({2, 1, 3, 3}, 22);
  const Graph g = one_node("Conv", {Arg(x), Arg(w, true)}, {{"group", int64_t{2}}});
  const InputGram gram = gram_of(g, x);
  const auto rows = choose_weight_quant(w, Scheme::fixed, 3, ScaleMethod::mse, true, 0);
  const Tensor q = gptq_quantize_weight(w, rows, 0, gram);
  const Tensor rtn = fake_quantize_weight(w, rows, 0);
  for (int64_t i = 9; i < 18; ++i) EXPECT_EQ(q.data<float>()[i], rtn.data<float>()[i]);
  EXPECT_LE(output_error(w, q, 0, gram), output_error(w, rtn, 0, gram));
}

TEST(Gptq, RoundWeightsReplacesOnlyConfiguredLayers) {
  const Layer l = correlated_layer(8, 12, 0, 31);
  Graph g =
      one_node("Gemm", {Arg(normal_f32({2, 12}, 1)), Arg(l.w, true)}, {{"transB", int64_t{1}}});
  QuantConfig cfg;
  cfg.layers.push_back({"n0", choose_weight_quant(l.w, Scheme::fixed, 3, ScaleMethod::mse), {}});
  WeightRounding r;
  r.method = Rounding::gptq;
  r.grams = std::make_shared<const InputGrams>(InputGrams{{"n0", l.gram}});
  const Graph out = round_weights(g, cfg, r);
  // Computed once: a second rounding of the same layer and quantizer comes from the cache.
  EXPECT_EQ(r.cache->weights.size(), 1u);
  round_weights(g, cfg, r);
  EXPECT_EQ(r.cache->weights.size(), 1u);
  const Tensor& q = out.constant(find_quant_layers(out)[0].weight);
  test::expect_close(q, gptq_quantize_weight(l.w, cfg.layers[0].rows, 0, l.gram), 0, 0);
  WeightRounding no_grams;
  no_grams.method = Rounding::gptq;
  EXPECT_NE(test::error_of([&] { round_weights(g, cfg, no_grams); }), "no error");
  EXPECT_EQ(parse_rounding("gptq", "--rounding"), Rounding::gptq);
  EXPECT_EQ(parse_rounding("adaround", "--rounding"), Rounding::adaround);
  EXPECT_NE(test::error_of([&] { parse_rounding("brecq", "--rounding"); }).find("--rounding"),
            std::string::npos);
}

// Learned rounding starts from GPTQ's solution and keeps it unless it finds a lower output
// error; at 2-3 bits it does find one. Its values stay on every row's grid.
TEST(LearnedRounding, LowersGptqsOutputErrorOnEveryGrid) {
  auto all = cases();
  for (int bits : {2, 3})
    all.push_back({"fixed", [=](const Tensor& w, int axis) {
                     return choose_weight_quant(w, Scheme::fixed, bits, ScaleMethod::mse, true,
                                                axis);
                   }});
  LearnedRoundingOptions o;
  o.iterations = 300;
  for (int axis : {0, 1})
    for (size_t i = 0; i < all.size(); ++i) {
      SCOPED_TRACE(std::string(all[i].name) + " case " + std::to_string(i) + " axis " +
                   std::to_string(axis));
      const Layer l = correlated_layer(6, 40, axis, 50 + static_cast<uint32_t>(i));
      const auto rows = all[i].rows(l.w, axis);
      const Tensor g = gptq_quantize_weight(l.w, rows, axis, l.gram);
      const Tensor q = learned_quantize_weight(l.w, rows, axis, l.gram, {}, o);
      test::expect_close(fake_quantize_weight(q, rows, axis), q, 0, 0);
      const double eg = output_error(l.w, g, axis, l.gram), el = output_error(l.w, q, axis, l.gram);
      EXPECT_LE(el, eg);
      if (i >= all.size() - 2) {  // the 2- and 3-bit per-row cases
        EXPECT_LT(el, 0.9 * eg);
      }
    }
  // Rows at min_bits and above keep GPTQ's rounding.
  const Layer l = correlated_layer(4, 16, 0, 7);
  const auto rows = choose_weight_quant(l.w, Scheme::fixed, 8, ScaleMethod::mse);
  test::expect_close(learned_quantize_weight(l.w, rows, 0, l.gram),
                     gptq_quantize_weight(l.w, rows, 0, l.gram), 0, 0);
}

}  // namespace
}  // namespace mixq
