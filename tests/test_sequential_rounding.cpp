// Rounding on the quantized model's inputs: the cross gram X^T Y against the convolution it
// describes, and round_weights_sequential against per-layer rounding on a small network.
#include <gtest/gtest.h>

#include "quant/apply.h"
#include "quant/rounding.h"
#include "support/op_runner.h"
#include "support/synthetic_data.h"
#include "support/tiny_nets.h"

namespace mixq {
namespace {

using test::Arg;
using test::normal_f32;
using test::one_node;
using Ints = std::vector<int64_t>;

// u_r^T H_xy v_r must be the inner product of output channel r of conv(x, U) and conv(y, V):
// the cross gram pairs exactly the windows the convolution multiplies in both inputs.
TEST(InputGram, CrossGramPairsTheSameWindows) {
  const Shape xs{2, 4, 7, 6}, ws{6, 2, 3, 2};
  const std::map<std::string, Attribute> attrs{
      {"group", int64_t{2}}, {"pads", Ints{1, 0, 2, 1}}, {"strides", Ints{2, 1}}};
  const Tensor x = normal_f32(xs, 1), y = normal_f32(xs, 2), u = normal_f32(ws, 3),
               v = normal_f32(ws, 4);
  const Graph gu = one_node("Conv", {Arg(x), Arg(u, true)}, attrs);
  const Graph gv = one_node("Conv", {Arg(x), Arg(v, true)}, attrs);
  const QuantLayer l = find_quant_layers(gu)[0];
  InputGram xx = make_input_gram(gu, l), xy = xx, plain = xx;
  accumulate_cross_gram(gu, l, x, y, xx, xy);
  accumulate_input_gram(gu, l, x, plain);
  EXPECT_EQ(xx.h, plain.h);
  EXPECT_EQ(xy.rows, plain.rows);
  const Tensor ox = Executor(gu, Impl::reference).run({x})[0];
  const Tensor oy = Executor(gv, Impl::reference).run({y})[0];
  const int64_t co = ws[0], per = co / xy.groups, pos = ox.numel() / (ox.dim(0) * co);
  for (int64_t r = 0; r < co; ++r) {
    double dot = 0;
    for (int64_t n = 0; n < ox.dim(0); ++n)
      for (int64_t p = 0; p < pos; ++p)
        dot += double(ox.data<float>()[(n * co + r) * pos + p]) *
               oy.data<float>()[(n * co + r) * pos + p];
    const double* h = xy.group(r / per);
    const float *ur = u.data<float>() + r * xy.k, *vr = v.data<float>() + r * xy.k;
    double quad = 0;
    for (int64_t i = 0; i < xy.k; ++i)
      for (int64_t j = 0; j < xy.k; ++j) quad += ur[i] * h[i * xy.k + j] * vr[j];
    EXPECT_NEAR(quad, dot, 1e-4 * (1 + std::abs(dot))) << "row " << r;
  }
}

// The squared distance of the quantized model's outputs from the float model's on the data.
double output_distance(const Graph& f, const Graph& q, const Dataset& data) {
  const Tensor x = data.get_batch(0, data.size()).inputs[0];
  const Tensor a = Executor(f, Impl::reference).run({x})[0];
  const Tensor b = Executor(q, Impl::reference).run({x})[0];
  double d = 0;
  for (int64_t j = 0; j < a.numel(); ++j) {
    const double e = double(a.data<float>()[j]) - b.data<float>()[j];
    d += e * e;
  }
  return d;
}

TEST(Rounding, SequentialRoundingAnswersTheQuantizedInputs) {
  const Graph g = test::conv_chain_net(4);
  test::SyntheticDataset data(48, {2, 6, 6}, 3, 9);
  ObserveOptions o;
  o.samples = 48;
  o.batch = 16;
  const ActivationStats stats = observe_activations(g, data, o);
  UniformOptions u;
  u.wbits = 3;
  u.abits = 4;
  u.edge_bits = 0;
  const QuantConfig cfg = uniform_config(g, &stats, u);

  WeightRounding nearest;
  const Graph same = round_weights_sequential(g, cfg, nearest, data, o);
  for (const QuantLayer& l : find_quant_layers(g))
    test::expect_close(same.constant(l.weight), g.constant(l.weight), 0, 0);

  for (Rounding m : {Rounding::gptq, Rounding::adaround}) {
    SCOPED_TRACE(rounding_name(m));
    WeightRounding per_layer = make_rounding(m, g, data, o);
    per_layer.learned.iterations = 200;
    std::vector<size_t> progress;
    ObserveOptions po = o;
    po.progress = [&](size_t done, size_t total) {
      EXPECT_EQ(total, 5u);
      progress.push_back(done);
    };
    const Graph seq = round_weights_sequential(g, cfg, per_layer, data, po);
    EXPECT_EQ(progress, (std::vector<size_t>{1, 2, 3, 4, 5}));
    // On the grid: nearest rounding with the same config reproduces the weights.
    const Graph q = apply_quant(seq, cfg);
    const auto layers = find_quant_layers(g), q_layers = find_quant_layers(q);
    ASSERT_EQ(layers.size(), q_layers.size());
    for (size_t i = 0; i < layers.size(); ++i)
      test::expect_close(q.constant(q_layers[i].weight), seq.constant(layers[i].weight), 0, 0);
    // Errors of earlier layers are answered, not compounded: the model's outputs stay closer to
    // the float model's than with every layer rounded on the float model's inputs.
    const double d_seq = output_distance(g, q, data);
    const double d_layer =
        output_distance(g, apply_quant(round_weights(g, cfg, per_layer), cfg), data);
    EXPECT_LT(d_seq, d_layer);
  }
}

}  // namespace
}  // namespace mixq
