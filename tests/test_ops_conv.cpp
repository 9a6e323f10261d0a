// Conv and ConvTranspose: reference against hand-computed cases, the oneDNN path against the
// reference on random geometries, batch changes, runtime weights, fused Relu/sum, channels-last
// layout, and errors naming the node.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "base/error.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

using namespace mixq;
using mixq::test::Arg;
using mixq::test::f32;
using mixq::test::feeds_of;
using mixq::test::one_node;

namespace {

// Uniform in [-1, 1).
Tensor random_f32(const Shape& s, std::mt19937& rng) {
  return mixq::test::random_f32(s, rng, -1.f, 1.f);
}

Tensor run(const std::string& op, const std::vector<Arg>& args,
           std::map<std::string, Attribute> attrs, Impl impl = Impl::reference,
           std::string* chosen = nullptr) {
  Executor ex(one_node(op, args, std::move(attrs)), impl);
  if (chosen) *chosen = ex.impl_name(0);
  return ex.run(feeds_of(args))[0];
}

Tensor iota(const Shape& s) {
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

void expect_near(const Tensor& got, const Tensor& want, double rtol = 1e-4, double atol = 1e-4) {
  test::expect_close(got, want, rtol, atol);
}

void expect_values(const Tensor& got, const Shape& shape, const std::vector<float>& want) {
  expect_near(got, f32(shape, want), 1e-6, 1e-5);
}

// NCHW -> NHWC (any spatial rank) and back.
Tensor to_nhwc(const Tensor& x) {
  const Shape& s = x.shape();
  const int64_t n = s[0], c = s[1], pos = x.numel() / std::max<int64_t>(n * c, 1);
  Shape o{n};
  o.insert(o.end(), s.begin() + 2, s.end());
  o.push_back(c);
  Tensor y(DType::f32, o);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < c; ++j)
      for (int64_t q = 0; q < pos; ++q)
        y.data<float>()[(i * pos + q) * c + j] = x.data<float>()[(i * c + j) * pos + q];
  return y;
}

using Attrs = std::map<std::string, Attribute>;
using Ints = std::vector<int64_t>;

TEST(OpsConv, ReferenceMatchesHandComputed2D) {
  // 5x5 ramp convolved with a 3x3 box: each output is the sum of its neighbourhood.
  Tensor x = iota({1, 1, 5, 5});
  Tensor w = f32({1, 1, 3, 3}, std::vector<float>(9, 1.f));
  expect_values(run("Conv", {{x}, {w, true}}, {{"pads", Ints{1, 1, 1, 1}}}), {1, 1, 5, 5},
                {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                 117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84});
  expect_values(run("Conv", {{x}, {w, true}}, {}), {1, 1, 3, 3},
                {54, 63, 72, 99, 108, 117, 144, 153, 162});
  // Stride 2 with asymmetric padding (top 1, bottom 0, left 1, right 0).
  expect_values(
      run("Conv", {{x}, {w, true}}, {{"strides", Ints{2, 2}}, {"pads", Ints{1, 1, 0, 0}}}),
      {1, 1, 2, 2}, {12, 27, 63, 108});
}

TEST(OpsConv, ReferenceMatchesHandComputed1DAnd3D) {
  // 1D with dilation 2: y[i] = x[i] + x[i + 2], plus bias 0.5.
  Tensor x = iota({1, 1, 7});
  expect_values(run("Conv", {{x}, {f32({1, 1, 2}, {1, 1}), true}, {f32({1}, {0.5f}), true}},
                    {{"dilations", Ints{2}}}),
                {1, 1, 5}, {2.5f, 4.5f, 6.5f, 8.5f, 10.5f});
  // 3D: a 2x2x2 box over a 3x3x3 cube of ones with stride 1 sums 8 ones.
  Tensor ones = f32({1, 1, 3, 3, 3}, std::vector<float>(27, 1.f));
  Tensor box = f32({1, 1, 2, 2, 2}, std::vector<float>(8, 1.f));
  expect_values(run("Conv", {{ones}, {box, true}}, {}), {1, 1, 2, 2, 2},
                std::vector<float>(8, 8.f));
  // Two output channels read both input channels.
  Tensor x2 = f32({1, 2, 3}, {1, 2, 3, 10, 20, 30});
  Tensor w2 = f32({2, 2, 1}, {1, 1, 1, -1});
  expect_values(run("Conv", {{x2}, {w2, true}}, {}), {1, 2, 3}, {11, 22, 33, -9, -18, -27});
}

TEST(OpsConv, ReferenceGroupsAndDepthwise) {
  // Depthwise: each channel scaled by its own 1x1 kernel.
  Tensor x = f32({1, 2, 1, 2}, {1, 2, 3, 4});
  Tensor w = f32({2, 1, 1, 1}, {2, 3});
  expect_values(run("Conv", {{x}, {w, true}}, {{"group", int64_t{2}}}), {1, 2, 1, 2},
                {2, 4, 9, 12});
  // Depthwise with multiplier 2: channel 0 feeds outputs 0, 1; channel 1 feeds 2, 3.
  Tensor w4 = f32({4, 1, 1, 1}, {1, -1, 10, -10});
  expect_values(run("Conv", {{x}, {w4, true}}, {{"group", int64_t{2}}}), {1, 4, 1, 2},
                {1, 2, -1, -2, 30, 40, -30, -40});
}

TEST(OpsConv, ReferenceAutoPad) {
  Tensor x = f32({1, 1, 4}, {1, 2, 3, 4});
  Tensor w = f32({1, 1, 2}, {1, 1});
  expect_values(run("Conv", {{x}, {w, true}}, {{"auto_pad", std::string("SAME_UPPER")}}), {1, 1, 4},
                {3, 5, 7, 4});
  expect_values(run("Conv", {{x}, {w, true}}, {{"auto_pad", std::string("SAME_LOWER")}}), {1, 1, 4},
                {1, 3, 5, 7});
  expect_values(
      run("Conv", {{x}, {w, true}}, {{"auto_pad", std::string("VALID")}, {"pads", Ints{3, 3}}}),
      {1, 1, 3}, {3, 5, 7});
  // SAME with stride 2: output ceil(4 / 2) = 2, one pad at the end.
  expect_values(run("Conv", {{x}, {f32({1, 1, 3}, {1, 1, 1}), true}},
                    {{"auto_pad", std::string("SAME_UPPER")}, {"strides", Ints{2}}}),
                {1, 1, 2}, {6, 7});
}

TEST(OpsConv, FusedReluAndSum) {
  Tensor x = f32({1, 1, 4}, {1, -2, 3, -4});
  Tensor w = f32({1, 1, 1}, {1});
  Tensor extra = f32({1, 1, 4}, {1, 1, -5, 5});
  for (Impl impl : {Impl::reference, Impl::fast}) {
    expect_values(run("Conv", {{x}, {w, true}}, {{"mixq_activation", std::string("Relu")}}, impl),
                  {1, 1, 4}, {1, 0, 3, 0});
    expect_values(run("Conv", {{x}, {w, true}, {}, {extra}}, {{"mixq_sum", int64_t{1}}}, impl),
                  {1, 1, 4}, {2, -1, -2, 1});
    expect_values(run("Conv", {{x}, {w, true}, {f32({1}, {0.5f}), true}, {extra}},
                      {{"mixq_sum", int64_t{1}}, {"mixq_activation", std::string("Relu")}}, impl),
                  {1, 1, 4}, {2.5f, 0, 0, 1.5f});
  }
}

TEST(OpsConv, FusionHoldsWhereWindowsLieWhollyInPadding) {
  // Pads of 2 around a 2-tap kernel: the first and last output rows see only padding, so they
  // are bias + sum, then relu.
  std::mt19937 rng(2);
  Tensor x = random_f32({1, 2, 2, 5}, rng);
  Tensor w = random_f32({3, 2, 2, 2}, rng);
  Tensor b = random_f32({3}, rng);
  Attrs a{{"pads", Ints{2, 0, 2, 1}},
          {"mixq_sum", int64_t{1}},
          {"mixq_activation", std::string("Relu")}};
  Tensor extra = random_f32({1, 3, 5, 5}, rng);
  std::vector<Arg> args{{x}, {w, true}, {b, true}, {extra}};
  Tensor want = run("Conv", args, a);
  EXPECT_EQ(want.data<float>()[0], std::max(0.f, b.data<float>()[0] + extra.data<float>()[0]));
  expect_near(run("Conv", args, a, Impl::fast), want);
}

TEST(OpsConv, SumAccumulatesInPlaceWhenOutputAliasesTheSumInput) {
  std::mt19937 rng(8);
  Tensor x = random_f32({2, 4, 6, 6}, rng);
  Tensor w = random_f32({4, 4, 3, 3}, rng);
  Tensor extra = random_f32({2, 4, 6, 6}, rng);
  Attrs a{{"pads", Ints{1, 1, 1, 1}},
          {"mixq_sum", int64_t{1}},
          {"mixq_activation", std::string("Relu")}};
  for (bool nhwc : {false, true}) {
    Attrs b = a;
    Tensor xx = x, ee = extra;
    if (nhwc) {
      b["mixq_layout"] = std::string("NHWC");
      xx = to_nhwc(x);
      ee = to_nhwc(extra);
    }
    std::vector<Arg> args{{xx}, {w, true}, {}, {ee}};
    Tensor want = run("Conv", args, b);
    Graph g = one_node("Conv", args, b);
    auto kernel = Registry::get().make(g.nodes[0], g, Impl::fast);
    // The output slot holds the sum input's buffer, as an executor reusing it would pass.
    Tensor y = ee.clone();
    Tensor sum_in = y;
    const void* buffer = y.raw();
    kernel->forward({&xx, &w, nullptr, &sum_in}, {&y});
    EXPECT_EQ(y.raw(), buffer);
    expect_near(y, want);
  }
}

// One random Conv geometry; channels-last when nhwc.
struct Case {
  Tensor x, w, b, extra;
  Attrs attrs;
};

Case random_case(std::mt19937& rng, int64_t batch, bool allow_nhwc) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int sp = pick(1, 3);
  const int64_t group = pick(0, 2) == 0 ? pick(2, 3) : 1;
  const bool depthwise = group > 1 && pick(0, 1) == 0;
  const int64_t cg = depthwise ? 1 : pick(1, 4), mg = pick(1, 3);
  Ints in, k, strides, dil, pads(2 * sp);
  for (int i = 0; i < sp; ++i) {
    k.push_back(pick(1, 3));
    strides.push_back(pick(1, 3));
    dil.push_back(pick(1, 2));
    const int64_t keff = (k[i] - 1) * dil[i] + 1;
    in.push_back(keff + pick(0, sp == 3 ? 4 : 8));
    pads[i] = pick(0, 2);
    pads[i + sp] = pick(0, 2);
  }
  Case c;
  Shape xs{batch, group * cg};
  xs.insert(xs.end(), in.begin(), in.end());
  Shape ws{group * mg, cg};
  ws.insert(ws.end(), k.begin(), k.end());
  c.x = random_f32(xs, rng);
  c.w = random_f32(ws, rng);
  if (pick(0, 1)) c.b = random_f32({group * mg}, rng);
  c.attrs = {{"strides", strides}, {"dilations", dil}, {"group", group}};
  switch (pick(0, 5)) {
    case 0:
      c.attrs["auto_pad"] = std::string("SAME_UPPER");
      break;
    case 1:
      c.attrs["auto_pad"] = std::string("SAME_LOWER");
      break;
    case 2:
      c.attrs["auto_pad"] = std::string("VALID");
      break;
    default:
      c.attrs["pads"] = pads;
  }
  if (pick(0, 2) == 0) c.attrs["kernel_shape"] = k;
  if (pick(0, 2) == 0) c.attrs["mixq_activation"] = std::string("Relu");
  if (allow_nhwc && pick(0, 3) == 0) {
    c.attrs["mixq_layout"] = std::string("NHWC");
    c.x = to_nhwc(c.x);
  }
  return c;
}

TEST(OpsConv, FastMatchesReferenceOnRandomGeometries) {
  std::mt19937 rng(7);
  for (int i = 0; i < 48; ++i) {
    Case c = random_case(rng, 1 + i % 3, true);
    SCOPED_TRACE("case " + std::to_string(i) + " x " + shape_str(c.x.shape()) + " w " +
                 shape_str(c.w.shape()));
    // The first half with constant weights (reordered once), the rest as runtime inputs.
    const bool constant = i % 2 == 0;
    std::vector<Arg> args{{c.x}, {c.w, constant}, {c.b, constant}};
    Tensor want = run("Conv", args, c.attrs);
    std::string chosen;
    Tensor got = run("Conv", args, c.attrs, Impl::fast, &chosen);
    EXPECT_EQ(chosen, "dnnl");
    expect_near(got, want);
    // The fused residual sum on the same geometry.
    Attrs with_sum = c.attrs;
    with_sum["mixq_sum"] = int64_t{1};
    Tensor extra = random_f32(want.shape(), rng);
    args.push_back({extra});
    expect_near(run("Conv", args, with_sum, Impl::fast), run("Conv", args, with_sum));
  }
}

TEST(OpsConv, ChannelsLastMatchesChannelsFirst) {
  std::mt19937 rng(3);
  Tensor x = random_f32({2, 6, 7, 5}, rng);
  Tensor w = random_f32({4, 3, 3, 2}, rng);
  Tensor b = random_f32({4}, rng);
  Attrs a{{"group", int64_t{2}}, {"pads", Ints{1, 0, 1, 1}}, {"strides", Ints{2, 1}}};
  Tensor want = to_nhwc(run("Conv", {{x}, {w, true}, {b, true}}, a));
  a["mixq_layout"] = std::string("NHWC");
  for (Impl impl : {Impl::reference, Impl::fast})
    expect_near(run("Conv", {{to_nhwc(x)}, {w, true}, {b, true}}, a, impl), want);
}

TEST(OpsConv, BatchSizeChangesReuseTheKernel) {
  std::mt19937 rng(11);
  Tensor w = random_f32({8, 3, 3, 3}, rng);
  Tensor b = random_f32({8}, rng);
  Attrs a{{"pads", Ints{1, 1, 1, 1}}, {"mixq_activation", std::string("Relu")}};
  std::vector<Arg> args{{random_f32({1, 3, 6, 6}, rng)}, {w, true}, {b, true}};
  Executor fast(one_node("Conv", args, a), Impl::fast);
  Executor ref(one_node("Conv", args, a), Impl::reference);
  ASSERT_EQ(fast.impl_name(0), "dnnl");
  for (int64_t n : {1, 4, 2, 4, 1, 3}) {
    Tensor x = random_f32({n, 3, 6, 6}, rng);
    Tensor got = fast.run({x})[0];
    expect_near(got, ref.run({x})[0]);
  }
}

TEST(OpsConv, RuntimeWeightsAreReadEveryCall) {
  std::mt19937 rng(5);
  Tensor x = random_f32({2, 4, 5, 5}, rng);
  std::vector<Arg> args{{x}, {random_f32({3, 4, 3, 3}, rng)}};
  Executor fast(one_node("Conv", args, {}), Impl::fast);
  Executor ref(one_node("Conv", args, {}), Impl::reference);
  for (int i = 0; i < 3; ++i) {
    Tensor w = random_f32({3, 4, 3, 3}, rng);
    expect_near(fast.run({x, w})[0], ref.run({x, w})[0]);
  }
}

TEST(OpsConv, EmptyBatchGivesEmptyOutput) {
  std::mt19937 rng(6);
  Tensor w = random_f32({4, 3, 3, 3}, rng);
  for (Impl impl : {Impl::reference, Impl::fast}) {
    Tensor y = run("Conv", {{Tensor(DType::f32, {0, 3, 8, 8})}, {w, true}},
                   {{"pads", Ints{1, 1, 1, 1}}}, impl);
    EXPECT_EQ(shape_str(y.shape()), "[0,4,8,8]");
  }
}

TEST(OpsConv, BadInputThrowsNamingTheNode) {
  std::mt19937 rng(1);
  auto expect_error = [&](const std::vector<Arg>& args, Attrs attrs, const std::string& cause) {
    for (Impl impl : {Impl::reference, Impl::fast}) {
      try {
        run("Conv", args, attrs, impl);
        ADD_FAILURE() << "no error for " << cause;
      } catch (const Error& e) {
        EXPECT_EQ(e.where(), "Conv node 'n0'");
        EXPECT_NE(std::string(e.what()).find(cause), std::string::npos) << e.what();
      }
    }
  };
  Tensor x = random_f32({1, 3, 5, 5}, rng);
  expect_error({{x}, {random_f32({2, 4, 3, 3}, rng), true}}, {}, "channel");
  expect_error({{random_f32({3, 5}, rng)}, {random_f32({2, 3, 3}, rng), true}}, {}, "rank");
  expect_error({{x}, {random_f32({2, 3, 3}, rng), true}}, {}, "rank");
  expect_error({{x}, {random_f32({2, 3, 3, 3}, rng), true}, {random_f32({3}, rng), true}}, {},
               "bias");
  expect_error({{x}, {random_f32({2, 3, 3, 3}, rng), true}}, {{"strides", Ints{1, 1, 1}}},
               "strides");
  expect_error({{x}, {random_f32({2, 3, 7, 7}, rng), true}}, {}, "larger than");
  expect_error({{x}, {random_f32({2, 3, 3, 3}, rng), true}}, {{"mixq_sum", int64_t{1}}},
               "fused sum");
  expect_error({{x}, {random_f32({4, 1, 3, 3}, rng), true}}, {{"group", int64_t{2}}}, "group");
}

TEST(OpsConvTranspose, ReferenceMatchesHandComputed) {
  Tensor x = f32({1, 1, 2}, {1, 2});
  Tensor w = f32({1, 1, 3}, {1, 1, 1});
  expect_values(run("ConvTranspose", {{x}, {w, true}}, {}), {1, 1, 4}, {1, 3, 3, 2});
  Attrs s2{{"strides", Ints{2}}};
  expect_values(run("ConvTranspose", {{x}, {w, true}}, s2), {1, 1, 5}, {1, 1, 3, 2, 2});
  expect_values(
      run("ConvTranspose", {{x}, {w, true}}, {{"strides", Ints{2}}, {"pads", Ints{1, 1}}}),
      {1, 1, 3}, {1, 3, 2});
  expect_values(
      run("ConvTranspose", {{x}, {w, true}}, {{"strides", Ints{2}}, {"output_padding", Ints{1}}}),
      {1, 1, 6}, {1, 1, 3, 2, 2, 0});
  // output_shape 4 of a full 5: the odd pad goes to the start.
  expect_values(
      run("ConvTranspose", {{x}, {w, true}}, {{"strides", Ints{2}}, {"output_shape", Ints{4}}}),
      {1, 1, 4}, {1, 3, 2, 2});
  // Two groups, two output channels per group, bias.
  Tensor x2 = f32({1, 2, 1}, {1, 10});
  Tensor w2 = f32({2, 2, 1}, {1, 2, 3, 4});
  expect_values(run("ConvTranspose", {{x2}, {w2, true}, {f32({4}, {0, 0, 0, 1}), true}},
                    {{"group", int64_t{2}}}),
                {1, 4, 1}, {1, 2, 30, 41});
}

TEST(OpsConvTranspose, TwoDimensionalMatchesScatterDefinition) {
  // Brute-force scatter definition against the gather-form reference.
  std::mt19937 rng(9);
  Tensor x = random_f32({2, 2, 3, 4}, rng);
  Tensor w = random_f32({2, 3, 2, 3}, rng);
  const int64_t sh = 2, sw = 3, dh = 1, dw = 2, ph = 1, pw = 2;
  Tensor got =
      run("ConvTranspose", {{x}, {w, true}},
          {{"strides", Ints{sh, sw}}, {"dilations", Ints{dh, dw}}, {"pads", Ints{ph, pw, 0, 1}}});
  const int64_t oh = sh * 2 + (2 - 1) * dh + 1 - ph, ow = sw * 3 + (3 - 1) * dw + 1 - pw - 1;
  Tensor want(DType::f32, {2, 3, oh, ow});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t ih = 0; ih < 3; ++ih)
        for (int64_t iw = 0; iw < 4; ++iw)
          for (int64_t m = 0; m < 3; ++m)
            for (int64_t kh = 0; kh < 2; ++kh)
              for (int64_t kw = 0; kw < 3; ++kw) {
                const int64_t y = ih * sh + kh * dh - ph, z = iw * sw + kw * dw - pw;
                if (y < 0 || y >= oh || z < 0 || z >= ow) continue;
                want.data<float>()[((n * 3 + m) * oh + y) * ow + z] +=
                    x.data<float>()[((n * 2 + c) * 3 + ih) * 4 + iw] *
                    w.data<float>()[((c * 3 + m) * 2 + kh) * 3 + kw];
              }
  expect_near(got, want, 1e-5, 1e-5);
}

}  // namespace
