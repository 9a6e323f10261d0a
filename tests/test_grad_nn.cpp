// Backward passes of the compute-heavy op families: Conv and ConvTranspose, Gemm and MatMul,
// pooling, BatchNormalization. Reference backwards against central differences in double
// precision on small shapes and attribute variants; oneDNN backwards against the reference in
// float on larger, network-like shapes; BatchNormalization's running statistics against hand
// values; fused nodes refusing a backward.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <map>
#include <random>

#include "base/error.h"
#include "ops/kernel.h"
#include "runtime/executor.h"
#include "support/gradcheck.h"
#include "runtime/backprop.h"

using namespace mixq;
using namespace mixq::test;

namespace {

using Attrs = std::map<std::string, Attribute>;
using Ints = std::vector<int64_t>;

Tensor rnd(const Shape& s, uint32_t seed, double sd = 1.0) {
  return random_tensor(DType::f64, s, seed, sd);
}
// |normal| + lo: variances.
Tensor positive(const Shape& s, uint32_t seed, double lo = 0.5) {
  Tensor t = rnd(s, seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = std::fabs(t.data<double>()[i]) + lo;
  return t;
}

OpSpec spec(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int64_t opset = 13,
            size_t outputs = 1) {
  OpSpec s;
  s.op = op;
  s.inputs = std::move(inputs);
  s.attrs = std::move(attrs);
  s.opset = opset;
  s.outputs = outputs;
  return s;
}

std::string shapes_of(const OpSpec& s) {
  std::string r;
  for (const Tensor& t : s.inputs) {
    if (!r.empty()) r += " ";
    r += shape_str(t.shape());
  }
  return r;
}

void expect_grad(const OpSpec& s, const std::string& what) {
  const GradCheckResult r = grad_check(s);
  std::cout << "  " << s.op << " " << what << " (" << shapes_of(s) << "): max rel error "
            << r.max_rel_error << "\n";
  EXPECT_LT(r.max_rel_error, 1e-3) << s.op << " " << what << ": " << r.worst;
}

Tensor to_f32(const Tensor& t) {
  if (t.dtype() != DType::f64) return t.clone();
  Tensor r(DType::f32, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.data<float>()[i] = static_cast<float>(t.get_double(i));
  return r;
}

bool held(const OpSpec& s, size_t i) {
  return std::find(s.constant_inputs.begin(), s.constant_inputs.end(), i) !=
         s.constant_inputs.end();
}

// The node of s in float32: float inputs not held constant are graph inputs.
Graph graph_of(const OpSpec& s) {
  Graph g;
  g.opset = s.opset;
  Node n;
  n.name = s.op + "_under_test";
  n.op_type = s.op;
  n.attrs = s.attrs;
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    const Tensor& t = s.inputs[i];
    if (!t.defined()) {
      n.inputs.push_back(-1);
    } else if (t.dtype() == DType::f64 && !held(s, i)) {
      int v = g.add_value("in" + std::to_string(i), DType::f32);
      g.values[v].shape = t.shape();
      g.values[v].shape_known = true;
      g.inputs.push_back(v);
      n.inputs.push_back(v);
    } else {
      n.inputs.push_back(g.add_constant("in" + std::to_string(i), to_f32(t)));
    }
  }
  for (size_t o = 0; o < s.outputs; ++o)
    n.outputs.push_back(g.add_value("out" + std::to_string(o)));
  g.outputs.push_back(n.outputs[0]);
  g.nodes.push_back(n);
  g.sort();
  return g;
}

// The implementation the fast executor picks (so fast-vs-reference tests compare two paths).
std::string fast_impl(const OpSpec& s) {
  Executor ex(graph_of(s), Impl::fast);
  return ex.impl_name(0);
}

void expect_fast(const OpSpec& s, const std::string& what, const std::string& impl = "dnnl") {
  ASSERT_EQ(fast_impl(s), impl) << what;
  const double d = fast_vs_reference_backward(s);
  std::cout << "  " << s.op << " " << what << " (" << shapes_of(s)
            << "): fast vs reference backward " << d << "\n";
  EXPECT_LT(d, 1e-4) << s.op << " " << what;
}

// One forward and backward in float32 with the kernel's training flag set; dY of output 0 is
// random (seeded), the other outputs get no gradient.
struct Pass {
  std::vector<Tensor> outs, grads;
};
Pass run_pass(const OpSpec& s, Impl impl, bool training, uint32_t seed = 3) {
  Graph g = graph_of(s);
  Executor ex(g, impl);
  ex.kernel(0).set_training(training);
  auto env = ex.environment();
  size_t k = 0;
  for (size_t i = 0; i < s.inputs.size(); ++i)
    if (s.inputs[i].defined() && s.inputs[i].dtype() == DType::f64 && !held(s, i))
      env[g.inputs[k++]] = to_f32(s.inputs[i]);
  ex.run_range(env);
  Pass p;
  for (int o : g.nodes[0].outputs) p.outs.push_back(env[o]);
  std::vector<Tensor> genv(g.values.size());
  const int y = g.nodes[0].outputs[0];
  genv[y] = random_tensor(DType::f32, env[y].shape(), seed);
  Backprop bp(ex, g.inputs);
  bp.run(env, genv);
  for (int v : g.inputs) p.grads.push_back(genv[v]);
  return p;
}

double max_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.numel() && i < b.numel(); ++i)
    worst = std::max(worst, std::fabs(a.get_double(i) - b.get_double(i)) /
                                std::max(1.0, std::fabs(b.get_double(i))));
  return worst;
}

// Fast against reference with both kernels in training mode.
void expect_fast_training(const OpSpec& s, const std::string& what) {
  const Pass f = run_pass(s, Impl::fast, true), r = run_pass(s, Impl::reference, true);
  double d = 0, o = 0;
  for (size_t i = 0; i < f.grads.size(); ++i) d = std::max(d, max_diff(f.grads[i], r.grads[i]));
  for (size_t i = 0; i < f.outs.size(); ++i) o = std::max(o, max_diff(f.outs[i], r.outs[i]));
  std::cout << "  " << s.op << " " << what << " (" << shapes_of(s)
            << "): fast vs reference backward, training mode " << d << " (outputs " << o << ")\n";
  EXPECT_LT(d, 1e-4) << s.op << " " << what;
  EXPECT_LT(o, 1e-4) << s.op << " " << what << ": training forward";
}

// Backward of a fused node must refuse with an Error naming the node.
void expect_no_fused_backward(const OpSpec& s) {
  for (Impl impl : {Impl::fast, Impl::reference}) {
    Graph g = graph_of(s);
    std::string chosen;
    auto k = Registry::get().make(g.nodes[0], g, impl, &chosen);
    EXPECT_FALSE(k->has_backward()) << chosen;
    std::vector<Tensor> ins;
    for (const Tensor& t : s.inputs) ins.push_back(to_f32(t));
    std::vector<const Tensor*> in;
    for (const Tensor& t : ins) in.push_back(&t);
    Tensor y, dx;
    k->forward(in, {&y});
    std::vector<const Tensor*> gout{&y};
    try {
      k->backward(in, {&y}, gout, {&dx});
      ADD_FAILURE() << "fused " << s.op << " (" << chosen << ") ran a backward";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("fused"), std::string::npos) << e.what();
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Conv

TEST(GradNnConv, ReferenceMatchesNumeric2d) {
  expect_grad(spec("Conv", {rnd({1, 2, 4, 4}, 1), rnd({3, 2, 3, 3}, 2), rnd({3}, 3)},
                   {{"pads", Ints{1, 1, 1, 1}}}),
              "3x3 pads 1 bias");
  expect_grad(spec("Conv", {rnd({1, 2, 5, 5}, 4), rnd({2, 2, 3, 3}, 5)},
                   {{"strides", Ints{2, 2}}, {"pads", Ints{1, 0, 0, 1}}}),
              "strides 2, asymmetric pads");
  expect_grad(spec("Conv", {rnd({1, 1, 6, 6}, 6), rnd({2, 1, 3, 3}, 7), rnd({2}, 8)},
                   {{"dilations", Ints{2, 2}}, {"pads", Ints{2, 1, 2, 1}}}),
              "dilations 2");
  expect_grad(spec("Conv", {rnd({2, 4, 3, 3}, 9), rnd({4, 2, 2, 2}, 10), rnd({4}, 11)},
                   {{"group", int64_t{2}}}),
              "group 2");
  expect_grad(spec("Conv", {rnd({1, 3, 5, 5}, 12), rnd({3, 1, 3, 3}, 13), rnd({3}, 14)},
                   {{"group", int64_t{3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}),
              "depthwise strides 2");
  expect_grad(spec("Conv", {rnd({1, 2, 5, 5}, 15), rnd({2, 2, 3, 3}, 16)},
                   {{"auto_pad", std::string("SAME_UPPER")}, {"strides", Ints{2, 2}}}),
              "SAME_UPPER strides 2");
}

TEST(GradNnConv, ReferenceMatchesNumeric1d3d) {
  expect_grad(spec("Conv", {rnd({2, 2, 7}, 21), rnd({3, 2, 3}, 22), rnd({3}, 23)},
                   {{"strides", Ints{2}}, {"dilations", Ints{2}}, {"pads", Ints{1, 2}}}),
              "1-D strides 2 dilations 2");
  expect_grad(spec("Conv", {rnd({1, 2, 3, 3, 3}, 24), rnd({2, 2, 2, 2, 2}, 25), rnd({2}, 26)},
                   {{"pads", Ints{1, 0, 1, 0, 1, 0}}}),
              "3-D pads");
}

TEST(GradNnConv, ConvTransposeReferenceMatchesNumeric) {
  expect_grad(
      spec("ConvTranspose", {rnd({1, 2, 3, 3}, 31), rnd({2, 3, 3, 3}, 32), rnd({3}, 33)},
           {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}, {"output_padding", Ints{1, 1}}}),
      "strides 2 pads 1 output_padding 1");
  expect_grad(spec("ConvTranspose", {rnd({1, 4, 2, 2}, 34), rnd({4, 1, 3, 3}, 35)},
                   {{"group", int64_t{2}}, {"dilations", Ints{2, 2}}}),
              "group 2 dilations 2");
  expect_grad(spec("ConvTranspose", {rnd({2, 2, 4}, 36), rnd({2, 2, 3}, 37)},
                   {{"strides", Ints{3}}, {"output_shape", Ints{13}}}),
              "1-D output_shape");
}

TEST(GradNnConv, FastMatchesReferenceResNetShapes) {
  expect_fast(spec("Conv", {rnd({8, 16, 8, 8}, 41), rnd({16, 16, 3, 3}, 42, 0.1), rnd({16}, 43)},
                   {{"pads", Ints{1, 1, 1, 1}}}),
              "3x3 batch 8");
  expect_fast(spec("Conv", {rnd({8, 16, 8, 8}, 44), rnd({32, 16, 3, 3}, 45, 0.1)},
                   {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}),
              "3x3 strides 2, no bias");
  expect_fast(spec("Conv", {rnd({8, 16, 8, 8}, 46), rnd({32, 16, 1, 1}, 47, 0.2)},
                   {{"strides", Ints{2, 2}}}),
              "1x1 downsample");
  expect_fast(spec("Conv", {rnd({8, 3, 16, 16}, 48), rnd({8, 3, 7, 7}, 49, 0.1), rnd({8}, 50)},
                   {{"strides", Ints{2, 2}}, {"pads", Ints{3, 3, 3, 3}}}),
              "7x7 stem");
}

TEST(GradNnConv, FastMatchesReferenceGroupsDilations1d3d) {
  expect_fast(spec("Conv", {rnd({4, 8, 9, 9}, 51), rnd({8, 1, 3, 3}, 52), rnd({8}, 53)},
                   {{"group", int64_t{8}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}),
              "depthwise");
  expect_fast(spec("Conv", {rnd({2, 6, 10, 10}, 54), rnd({6, 3, 3, 3}, 55, 0.2)},
                   {{"group", int64_t{2}}, {"dilations", Ints{2, 2}}, {"pads", Ints{2, 1, 2, 0}}}),
              "group 2 dilations 2");
  expect_fast(
      spec("Conv", {rnd({4, 4, 12}, 56), rnd({6, 4, 3}, 57), rnd({6}, 58)}, {{"pads", Ints{1, 1}}}),
      "1-D");
  expect_fast(spec("Conv", {rnd({2, 3, 4, 5, 6}, 59), rnd({4, 3, 3, 3, 3}, 60, 0.2)},
                   {{"pads", Ints{1, 1, 1, 1, 1, 1}}, {"strides", Ints{1, 2, 1}}}),
              "3-D");
}

TEST(GradNnConv, FastMatchesReferenceRandomGeometries) {
  std::mt19937 rng(7);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int t = 0; t < 6; ++t) {
    const int64_t group = pick(1, 2), cg = pick(1, 4), mg = pick(1, 4), k = pick(1, 3),
                  s = pick(1, 2), d = pick(1, 2), pad = pick(0, k - 1), n = pick(1, 4),
                  h = pick(5, 9), w = pick(5, 9);
    Attrs a{{"strides", Ints{s, s}},
            {"dilations", Ints{d, 1}},
            {"pads", Ints{pad, 0, 0, pad}},
            {"group", group}};
    std::vector<Tensor> in{rnd({n, group * cg, h, w}, 100 + t),
                           rnd({group * mg, cg, k, k}, 200 + t, 0.3)};
    if (t % 2 == 0) in.push_back(rnd({group * mg}, 300 + t));
    expect_fast(spec("Conv", in, a), "random geometry " + std::to_string(t));
  }
}

TEST(GradNnConv, FusedNodesHaveNoBackward) {
  expect_no_fused_backward(spec("Conv", {rnd({1, 2, 4, 4}, 61), rnd({2, 2, 3, 3}, 62)},
                                {{"mixq_activation", std::string("Relu")}}));
  expect_no_fused_backward(spec("Conv", {rnd({1, 4, 4, 2}, 63), rnd({2, 2, 3, 3}, 64)},
                                {{"mixq_layout", std::string("NHWC")}}));
}

// ---------------------------------------------------------------------------------------------
// Gemm and MatMul

TEST(GradNnGemm, ReferenceMatchesNumericTransposesAndBroadcasts) {
  const int64_t m = 3, k = 4, n = 5;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const Shape as = ta ? Shape{k, m} : Shape{m, k}, bs = tb ? Shape{n, k} : Shape{k, n};
      expect_grad(
          spec("Gemm", {rnd(as, 1 + ta), rnd(bs, 3 + tb), rnd({n}, 5)},
               {{"transA", int64_t{ta}}, {"transB", int64_t{tb}}, {"alpha", 0.5f}, {"beta", 2.f}}),
          "transA " + std::to_string(ta) + " transB " + std::to_string(tb) +
              " alpha 0.5 beta 2, C [N]");
    }
  expect_grad(spec("Gemm", {rnd({m, k}, 6), rnd({k, n}, 7), rnd({m, 1}, 8)}, {{"beta", -1.5f}}),
              "C [M,1]");
  expect_grad(
      spec("Gemm", {rnd({m, k}, 9), rnd({n, k}, 10), rnd({m, n}, 11)}, {{"transB", int64_t{1}}}),
      "C [M,N]");
  expect_grad(spec("Gemm", {rnd({k, m}, 12), rnd({k, n}, 13), rnd({}, 14)},
                   {{"transA", int64_t{1}}, {"beta", 0.25f}}),
              "C scalar");
  expect_grad(spec("Gemm", {rnd({m, k}, 15), rnd({k, n}, 16)}, {{"alpha", 3.f}}), "no C");
}

TEST(GradNnGemm, MatMulReferenceMatchesNumeric) {
  expect_grad(spec("MatMul", {rnd({3, 4}, 21), rnd({4, 5}, 22)}), "2-D");
  expect_grad(spec("MatMul", {rnd({2, 3, 4}, 23), rnd({2, 4, 5}, 24)}), "batched");
  expect_grad(spec("MatMul", {rnd({2, 3, 4}, 25), rnd({4, 5}, 26)}), "B broadcast");
  expect_grad(spec("MatMul", {rnd({4}, 27), rnd({2, 4, 3}, 28)}), "1-D A, batched B");
  expect_grad(spec("MatMul", {rnd({3, 4}, 29), rnd({4}, 30)}), "1-D B");
  expect_grad(spec("MatMul", {rnd({2, 1, 3, 4}, 31), rnd({3, 4, 2}, 32)}), "both broadcast");
}

TEST(GradNnGemm, FastMatchesReference) {
  const int64_t m = 16, k = 24, n = 20;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const Shape as = ta ? Shape{k, m} : Shape{m, k}, bs = tb ? Shape{n, k} : Shape{k, n};
      expect_fast(spec("Gemm", {rnd(as, 41 + ta), rnd(bs, 43 + tb), rnd({n}, 45)},
                       {{"transA", int64_t{ta}}, {"transB", int64_t{tb}}}),
                  "transA " + std::to_string(ta) + " transB " + std::to_string(tb));
    }
  expect_fast(spec("Gemm", {rnd({m, k}, 46), rnd({k, n}, 47), rnd({m, 1}, 48)},
                   {{"alpha", 0.7f}, {"beta", -2.f}}),
              "alpha 0.7 beta -2, C [M,1]");
  expect_fast(spec("Gemm", {rnd({m, k}, 49), rnd({n, k}, 50)}, {{"transB", int64_t{1}}}), "no C");
}

TEST(GradNnGemm, MatMulFastMatchesReference) {
  expect_fast(spec("MatMul", {rnd({16, 24}, 51), rnd({24, 20}, 52)}), "2-D");
  expect_fast(spec("MatMul", {rnd({4, 8, 6}, 53), rnd({4, 6, 5}, 54)}), "batched");
  expect_fast(spec("MatMul", {rnd({4, 8, 6}, 55), rnd({6, 5}, 56)}), "shared B");
  expect_fast(spec("MatMul", {rnd({6}, 57), rnd({3, 6, 4}, 58)}), "1-D A, batched B");
  expect_fast(spec("MatMul", {rnd({2, 3, 5, 6}, 59), rnd({3, 6, 4}, 60)}), "B broadcast, rank 3");
  expect_fast(spec("MatMul", {rnd({5, 6}, 61), rnd({6}, 62)}), "1-D B");
}

// ---------------------------------------------------------------------------------------------
// Pooling

TEST(GradNnPool, MaxPoolReferenceMatchesNumeric) {
  expect_grad(spec("MaxPool", {rnd({1, 2, 4, 4}, 1)},
                   {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}),
              "2x2 strides 2");
  expect_grad(
      spec("MaxPool", {rnd({2, 2, 5, 5}, 2)},
           {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}}),
      "3x3 strides 2 pads 1");
  expect_grad(
      spec("MaxPool", {rnd({1, 2, 6, 6}, 3)},
           {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t{1}}}),
      "ceil_mode");
  expect_grad(spec("MaxPool", {rnd({1, 2, 5, 5}, 4)},
                   {{"kernel_shape", Ints{2, 2}}, {"dilations", Ints{2, 2}}}),
              "dilations 2");
  expect_grad(spec("MaxPool", {rnd({2, 3, 8}, 5)},
                   {{"kernel_shape", Ints{3}}, {"strides", Ints{2}}, {"pads", Ints{1, 1}}}),
              "1-D");
  expect_grad(spec("MaxPool", {rnd({1, 2, 4, 4, 4}, 6)},
                   {{"kernel_shape", Ints{2, 2, 2}}, {"strides", Ints{2, 2, 2}}}),
              "3-D");
  expect_grad(spec("MaxPool", {rnd({1, 2, 4, 4}, 7)},
                   {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}}, 12, 2),
              "with Indices output");
}

TEST(GradNnPool, AveragePoolReferenceMatchesNumeric) {
  for (int64_t include : {0, 1}) {
    const std::string cip = " count_include_pad " + std::to_string(include);
    expect_grad(spec("AveragePool", {rnd({1, 2, 5, 5}, 11)},
                     {{"kernel_shape", Ints{3, 3}},
                      {"strides", Ints{2, 2}},
                      {"pads", Ints{1, 1, 1, 1}},
                      {"count_include_pad", include}}),
                "3x3 strides 2 pads 1" + cip);
    expect_grad(spec("AveragePool", {rnd({1, 2, 6, 6}, 12)},
                     {{"kernel_shape", Ints{3, 3}},
                      {"strides", Ints{2, 2}},
                      {"pads", Ints{1, 0, 1, 0}},
                      {"ceil_mode", int64_t{1}},
                      {"count_include_pad", include}}),
                "ceil_mode pads" + cip);
    expect_grad(
        spec("AveragePool", {rnd({2, 2, 7}, 13)},
             {{"kernel_shape", Ints{3}}, {"pads", Ints{2, 1}}, {"count_include_pad", include}}),
        "1-D" + cip);
  }
  expect_grad(spec("AveragePool", {rnd({1, 2, 4, 4, 4}, 14)},
                   {{"kernel_shape", Ints{2, 2, 2}}, {"strides", Ints{2, 1, 2}}}),
              "3-D");
}

TEST(GradNnPool, GlobalPoolsReferenceMatchNumeric) {
  expect_grad(spec("GlobalAveragePool", {rnd({2, 3, 3, 3}, 21)}), "2-D");
  expect_grad(spec("GlobalMaxPool", {rnd({2, 3, 3, 3}, 22)}), "2-D");
  expect_grad(spec("GlobalAveragePool", {rnd({2, 3, 5}, 23)}), "1-D");
  expect_grad(spec("GlobalMaxPool", {rnd({1, 2, 2, 3, 4}, 24)}), "3-D");
}

TEST(GradNnPool, FastMatchesReference) {
  const Attrs stem{
      {"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}};
  expect_fast(spec("MaxPool", {rnd({8, 16, 8, 8}, 31)}, stem), "3x3 strides 2 pads 1");
  expect_fast(spec("MaxPool", {rnd({8, 16, 8, 8}, 32)},
                   {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}),
              "2x2 strides 2");
  expect_fast(
      spec("MaxPool", {rnd({4, 8, 9, 9}, 33)},
           {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t{1}}}),
      "ceil_mode");
  expect_fast(spec("MaxPool", {rnd({4, 8, 10}, 34)},
                   {{"kernel_shape", Ints{3}}, {"strides", Ints{2}}, {"dilations", Ints{2}}}),
              "1-D dilations 2");
  for (int64_t include : {0, 1})
    expect_fast(spec("AveragePool", {rnd({8, 16, 8, 8}, 35)},
                     {{"kernel_shape", Ints{3, 3}},
                      {"strides", Ints{2, 2}},
                      {"pads", Ints{1, 1, 1, 1}},
                      {"count_include_pad", include}}),
                "3x3 strides 2 pads 1 count_include_pad " + std::to_string(include));
  expect_fast(
      spec("AveragePool", {rnd({4, 8, 9, 9}, 36)},
           {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t{1}}}),
      "ceil_mode exclude padding");
  expect_fast(spec("AveragePool", {rnd({2, 4, 4, 6, 6}, 37)},
                   {{"kernel_shape", Ints{2, 3, 3}}, {"pads", Ints{0, 1, 1, 0, 1, 1}}}),
              "3-D");
  expect_fast(spec("GlobalAveragePool", {rnd({8, 16, 4, 4}, 38)}), "");
  expect_fast(spec("GlobalMaxPool", {rnd({8, 16, 4, 4}, 39)}), "");
}

TEST(GradNnPool, FastMaxPoolUsesTheTrainingForwardWorkspace) {
  const Attrs stem{
      {"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}};
  expect_fast_training(spec("MaxPool", {rnd({8, 16, 8, 8}, 41)}, stem), "3x3 strides 2 pads 1");
  expect_fast_training(spec("GlobalMaxPool", {rnd({4, 8, 5, 5}, 42)}), "global");
  // The training forward gives the inference forward's values.
  const OpSpec s = spec("MaxPool", {rnd({2, 4, 7, 7}, 43)}, stem);
  EXPECT_EQ(max_diff(run_pass(s, Impl::fast, true).outs[0], run_pass(s, Impl::fast, false).outs[0]),
            0.0);
}

TEST(GradNnPool, FusedLayoutHasNoBackward) {
  expect_no_fused_backward(
      spec("MaxPool", {rnd({1, 4, 4, 2}, 51)},
           {{"kernel_shape", Ints{2, 2}}, {"mixq_layout", std::string("NHWC")}}));
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization

OpSpec bn(const Shape& x, int64_t c, uint32_t seed, Attrs attrs = {}, int64_t opset = 15,
          size_t outputs = 1, bool hold_stats = true) {
  OpSpec s = spec("BatchNormalization",
                  {rnd(x, seed, 2.0), rnd({c}, seed + 1), rnd({c}, seed + 2), rnd({c}, seed + 3),
                   positive({c}, seed + 4)},
                  std::move(attrs), opset, outputs);
  if (hold_stats) s.constant_inputs = {3, 4};
  return s;
}

TEST(GradNnNorm, BatchNormInferenceMatchesNumeric) {
  // Every input differentiable, the running statistics included (frozen-BN fine-tuning).
  expect_grad(bn({2, 3, 2, 2}, 3, 1, {}, 15, 1, false), "inference, all inputs");
  expect_grad(bn({4, 2, 3}, 2, 7, {{"epsilon", 1e-3f}}, 9, 1, false), "inference rank 3");
  // Opset 7 with spatial = 0: one parameter per channel and position.
  OpSpec s = spec(
      "BatchNormalization",
      {rnd({3, 2, 3}, 8), rnd({2, 3}, 9), rnd({2, 3}, 10), rnd({2, 3}, 11), positive({2, 3}, 12)},
      {{"spatial", int64_t{0}}}, 7);
  expect_grad(s, "inference, per-position parameters");
}

TEST(GradNnNorm, BatchNormTrainingMatchesNumeric) {
  const Attrs train{{"training_mode", int64_t{1}}, {"momentum", 0.8f}};
  expect_grad(bn({2, 3, 2, 2}, 3, 11, train, 15, 1), "training mode");
  // Loss through the running statistics outputs too.
  expect_grad(bn({2, 3, 2, 2}, 3, 21, train, 15, 3), "training mode, running stats outputs");
  expect_grad(bn({6, 4}, 4, 31, train, 15, 3), "training mode rank 2");
  expect_grad(bn({2, 2, 2, 2, 2}, 2, 41, train, 15, 1), "training mode rank 5");
  // Before opset 14: training when the statistics outputs are used, saved mean/var included.
  expect_grad(bn({3, 2, 2, 2}, 2, 51, {}, 12, 5), "opset 12 five outputs");
}

TEST(GradNnNorm, BatchNormFastMatchesReference) {
  expect_fast(bn({8, 16, 4, 4}, 16, 71), "inference", "fast");
  // Gradients for the running statistics inputs: the fast kernel hands over to the reference.
  expect_fast(bn({8, 16, 4, 4}, 16, 61, {}, 15, 1, false), "inference, all inputs", "fast");
  // Training mode as mixq's trainer sets it (nodes with training_mode = 1 run the reference).
  ASSERT_EQ(fast_impl(bn({8, 16, 4, 4}, 16, 81)), "fast");
  expect_fast_training(bn({8, 16, 4, 4}, 16, 81), "training mode");
  expect_fast_training(bn({8, 16, 4, 4}, 16, 91, {}, 15, 3), "training mode, 3 outputs");
  expect_fast_training(bn({16, 6}, 6, 101), "training mode rank 2");
  expect_fast_training(bn({4, 3, 2, 2, 3}, 3, 111, {}, 12, 1), "training mode rank 5");
}

// x = [1, 2, 3, 6] in one channel: batch mean 3, biased variance 3.5, unbiased 14/3.
TEST(GradNnNorm, BatchNormRunningStatisticsMatchHandValues) {
  auto make = [](bool node_training) {
    Attrs a{{"momentum", 0.9f}, {"epsilon", 0.f}};
    if (node_training) a["training_mode"] = int64_t{1};
    OpSpec s = spec("BatchNormalization",
                    {Tensor::from<double>({2, 1, 1, 2}, {1, 2, 3, 6}),
                     Tensor::from<double>({1}, {2}), Tensor::from<double>({1}, {0.5}),
                     Tensor::from<double>({1}, {1}), Tensor::from<double>({1}, {2})},
                    a, 15, 3);
    s.constant_inputs = {3, 4};
    return s;
  };
  const std::vector<double> x{1, 2, 3, 6};
  for (Impl impl : {Impl::reference, Impl::fast})
    for (auto [node_training, trainer] : {std::pair{true, false}, {true, true}, {false, true}}) {
      SCOPED_TRACE(std::string(impl == Impl::fast ? "fast" : "reference") +
                   (node_training ? ", training_mode 1" : "") + (trainer ? ", set_training" : ""));
      const Pass p = run_pass(make(node_training), impl, trainer);
      for (int i = 0; i < 4; ++i)
        EXPECT_NEAR(p.outs[0].get_double(i), (x[i] - 3) / std::sqrt(3.5) * 2 + 0.5, 1e-5);
      EXPECT_NEAR(p.outs[1].get_double(0), 0.9 * 1 + 0.1 * 3, 1e-6);
      // ONNX's reference updates with the biased variance, PyTorch (mixq's trainer) unbiased.
      EXPECT_NEAR(p.outs[2].get_double(0), 0.9 * 2 + 0.1 * (trainer ? 14.0 / 3 : 3.5), 1e-6);
    }
  // Not in training mode: running statistics normalise.
  OpSpec inf = make(false);
  inf.outputs = 1;
  const Pass p = run_pass(inf, Impl::fast, false);
  EXPECT_NEAR(p.outs[0].get_double(3), (6 - 1) / std::sqrt(2.0) * 2 + 0.5, 1e-5);
}

TEST(GradNnNorm, FusedLayoutHasNoBackward) {
  OpSpec s = bn({1, 2, 2, 3}, 3, 121, {{"mixq_layout", std::string("NHWC")}});
  expect_no_fused_backward(s);
}
