// Pooling: reference against hand-computed windows (padding, ceil_mode clipping, count_include_pad,
// dilations, Indices), the oneDNN path against the reference on random geometries and batch
// sizes, channels-last layout, and errors naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "base/error.h"
#include "runtime/executor.h"

using namespace mixq;

namespace {

using Attrs = std::map<std::string, Attribute>;
using Ints = std::vector<int64_t>;

Graph one_node(const std::string& op, const Tensor& x, Attrs attrs, bool indices = false) {
  Graph g;
  Node n;
  n.name = "n0";
  n.op_type = op;
  n.attrs = std::move(attrs);
  int v = g.add_value("x", x.dtype());
  g.inputs.push_back(v);
  n.inputs = {v};
  int y = g.add_value("y");
  n.outputs = {y};
  g.outputs = {y};
  if (indices) {
    int i = g.add_value("indices", DType::i64);
    n.outputs.push_back(i);
    g.outputs.push_back(i);
  }
  g.nodes.push_back(n);
  g.sort();
  return g;
}

std::vector<Tensor> run_all(const std::string& op, const Tensor& x, Attrs attrs,
                            Impl impl = Impl::reference, bool indices = false,
                            std::string* chosen = nullptr) {
  Executor ex(one_node(op, x, std::move(attrs), indices), impl);
  if (chosen) *chosen = ex.impl_name(0);
  return ex.run({x});
}

Tensor run(const std::string& op, const Tensor& x, Attrs attrs, Impl impl = Impl::reference,
           std::string* chosen = nullptr) {
  return run_all(op, x, std::move(attrs), impl, false, chosen)[0];
}

Tensor f32(Shape s, std::vector<float> v) {
  return Tensor::from<float>(std::move(s), v);
}

Tensor random_f32(const Shape& s, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

Tensor iota(const Shape& s) {
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i + 1);
  return t;
}

void expect_near(const Tensor& got, const Tensor& want, double rtol = 1e-4, double atol = 1e-5) {
  ASSERT_EQ(shape_str(got.shape()), shape_str(want.shape()));
  ASSERT_EQ(got.dtype(), want.dtype());
  int bad = 0;
  for (int64_t i = 0; i < got.numel() && bad < 5; ++i) {
    const double a = got.get_double(i), b = want.get_double(i);
    if (std::fabs(a - b) > atol + rtol * std::fabs(b)) {
      ++bad;
      ADD_FAILURE() << "element " << i << ": got " << a << ", want " << b;
    }
  }
}

void expect_values(const Tensor& got, const Shape& shape, const std::vector<float>& want) {
  expect_near(got, f32(shape, want), 1e-6, 1e-6);
}

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

TEST(OpsPool, MaxPoolHandComputed) {
  Tensor x = iota({1, 1, 4, 4});  // 1..16
  for (Impl impl : {Impl::reference, Impl::fast}) {
    expect_values(run("MaxPool", x, {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}}, impl),
                  {1, 1, 2, 2}, {6, 8, 14, 16});
    // 3x3 windows, stride 2, ceil_mode: the second window per axis is clipped at the edge.
    expect_values(
        run("MaxPool", x,
            {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t{1}}},
            impl),
        {1, 1, 2, 2}, {11, 12, 15, 16});
    // Dilation 2: taps at rows/cols 0 and 2, then 1 and 3.
    expect_values(
        run("MaxPool", x, {{"kernel_shape", Ints{2, 2}}, {"dilations", Ints{2, 2}}}, impl),
        {1, 1, 2, 2}, {11, 12, 15, 16});
    // Padding never wins: all-negative input stays negative.
    Tensor neg = f32({1, 1, 1, 2}, {-3, -1});
    expect_values(
        run("MaxPool", neg, {{"kernel_shape", Ints{1, 2}}, {"pads", Ints{0, 1, 0, 1}}}, impl),
        {1, 1, 1, 3}, {-3, -1, -1});
  }
}

TEST(OpsPool, AveragePoolPaddingAndCeilMode) {
  Tensor x = f32({1, 1, 6}, {1, 2, 3, 4, 5, 6});
  Attrs a{{"kernel_shape", Ints{3}}, {"strides", Ints{2}}, {"pads", Ints{1, 1}}};
  for (Impl impl : {Impl::reference, Impl::fast}) {
    // Windows [-1..1], [1..3], [3..5].
    expect_values(run("AveragePool", x, a, impl), {1, 1, 3}, {1.5f, 3, 5});
    Attrs inc = a;
    inc["count_include_pad"] = int64_t{1};
    expect_values(run("AveragePool", x, inc, impl), {1, 1, 3}, {1, 3, 5});
    // ceil_mode adds a window [5..7]; the padded input ends at 6, so it holds x[5] and one pad.
    Attrs ceil = a;
    ceil["ceil_mode"] = int64_t{1};
    expect_values(run("AveragePool", x, ceil, impl), {1, 1, 4}, {1.5f, 3, 5, 6});
    ceil["count_include_pad"] = int64_t{1};
    expect_values(run("AveragePool", x, ceil, impl), {1, 1, 4}, {1, 3, 5, 3});
  }
  // A ceil_mode window that would start in the right padding is dropped: in 5, kernel 2,
  // stride 3, right pad 1 gives ceil(4 / 3) + 1 = 3 windows, the last starting at 6 > 5.
  Tensor x5 = f32({1, 1, 5}, {1, 2, 3, 4, 5});
  for (Impl impl : {Impl::reference, Impl::fast})
    expect_values(run("AveragePool", x5,
                      {{"kernel_shape", Ints{2}},
                       {"strides", Ints{3}},
                       {"pads", Ints{0, 1}},
                       {"ceil_mode", int64_t{1}}},
                      impl),
                  {1, 1, 2}, {1.5f, 4.5f});
}

TEST(OpsPool, AutoPad) {
  Tensor x = f32({1, 1, 5}, {1, 2, 3, 4, 5});
  for (Impl impl : {Impl::reference, Impl::fast}) {
    // SAME: out ceil(5 / 2) = 3, total pad (3 - 1) * 2 + 2 - 5 = 1.
    expect_values(run("MaxPool", x,
                      {{"kernel_shape", Ints{2}},
                       {"strides", Ints{2}},
                       {"auto_pad", std::string("SAME_UPPER")}},
                      impl),
                  {1, 1, 3}, {2, 4, 5});
    expect_values(run("AveragePool", x,
                      {{"kernel_shape", Ints{2}},
                       {"strides", Ints{2}},
                       {"auto_pad", std::string("SAME_LOWER")}},
                      impl),
                  {1, 1, 3}, {1, 2.5f, 4.5f});
    expect_values(
        run("MaxPool", x,
            {{"kernel_shape", Ints{2}}, {"strides", Ints{2}}, {"auto_pad", std::string("VALID")}},
            impl),
        {1, 1, 2}, {2, 4});
  }
}

TEST(OpsPool, GlobalPools) {
  Tensor x = f32({2, 2, 2}, {1, 3, -1, -5, 2, 2, 0, 8});
  for (Impl impl : {Impl::reference, Impl::fast}) {
    expect_values(run("GlobalAveragePool", x, {}, impl), {2, 2, 1}, {2, -3, 2, 4});
    expect_values(run("GlobalMaxPool", x, {}, impl), {2, 2, 1}, {3, -1, 2, 8});
    Tensor x4 = iota({1, 2, 2, 3});
    expect_values(run("GlobalAveragePool", x4, {}, impl), {1, 2, 1, 1}, {3.5f, 9.5f});
    // Channels-last: [N, H, W, C] -> [N, 1, 1, C].
    Attrs nhwc{{"mixq_layout", std::string("NHWC")}};
    expect_values(run("GlobalAveragePool", to_nhwc(x4), nhwc, impl), {1, 1, 1, 2}, {3.5f, 9.5f});
    expect_values(run("GlobalMaxPool", to_nhwc(x4), nhwc, impl), {1, 1, 1, 2}, {6, 12});
  }
}

TEST(OpsPool, MaxPoolIndices) {
  Tensor x = f32({1, 2, 2, 2}, {1, 4, 3, 2, 5, 6, 8, 7});
  Attrs a{{"kernel_shape", Ints{2, 2}}};
  std::string chosen;
  auto out = run_all("MaxPool", x, a, Impl::fast, true, &chosen);
  EXPECT_EQ(chosen, "ref");  // the Indices output is the reference's job
  expect_values(out[0], {1, 2, 1, 1}, {4, 8});
  EXPECT_EQ(out[1].to_ints(), (std::vector<int64_t>{1, 6}));
  // Column-major positions: (h=0, w=1) -> 0 + 1 * 2 = 2; (h=1, w=0) -> 1, plus the plane offset.
  a["storage_order"] = int64_t{1};
  EXPECT_EQ(run_all("MaxPool", x, a, Impl::reference, true)[1].to_ints(),
            (std::vector<int64_t>{2, 5}));
}

TEST(OpsPool, MaxPoolIntegerTypes) {
  Tensor x = Tensor::from<uint8_t>({1, 1, 4}, {1, 250, 3, 7});
  Tensor y = run("MaxPool", x, {{"kernel_shape", Ints{2}}}, Impl::fast);
  EXPECT_EQ(y.dtype(), DType::u8);
  EXPECT_EQ(y.to_ints(), (std::vector<int64_t>{250, 250, 7}));
}

TEST(OpsPool, FastMatchesReferenceOnRandomGeometries) {
  std::mt19937 rng(29);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int fast_used = 0;
  for (int i = 0; i < 60; ++i) {
    const int sp = pick(1, 3);
    const bool avg = pick(0, 1);
    Ints k, s, d, pads(2 * sp);
    Shape xs{pick(1, 3), pick(1, 5)};
    for (int j = 0; j < sp; ++j) {
      k.push_back(pick(1, 3));
      s.push_back(pick(1, 3));
      d.push_back(avg ? 1 : pick(1, 2));
      const int64_t keff = (k[j] - 1) * d[j] + 1;
      xs.push_back(keff + pick(0, sp == 3 ? 4 : 7));
      pads[j] = pick(0, static_cast<int>(keff - 1));
      pads[j + sp] = pick(0, static_cast<int>(keff - 1));
    }
    Attrs a{{"kernel_shape", k}, {"strides", s}};
    if (!avg) a["dilations"] = d;
    switch (pick(0, 4)) {
      case 0:
        a["auto_pad"] = std::string("SAME_UPPER");
        break;
      case 1:
        a["auto_pad"] = std::string("VALID");
        break;
      default:
        a["pads"] = pads;
    }
    a["ceil_mode"] = int64_t{pick(0, 1)};
    if (avg) a["count_include_pad"] = int64_t{pick(0, 1)};
    Tensor x = random_f32(xs, rng);
    if (pick(0, 3) == 0) {
      a["mixq_layout"] = std::string("NHWC");
      x = to_nhwc(x);
    }
    const std::string op = avg ? "AveragePool" : "MaxPool";
    SCOPED_TRACE("case " + std::to_string(i) + " " + op + " x " + shape_str(x.shape()));
    std::string chosen;
    Executor fast(one_node(op, x, a), Impl::fast);
    EXPECT_EQ(fast.impl_name(0), "dnnl");
    Executor ref(one_node(op, x, a), Impl::reference);
    expect_near(fast.run({x})[0], ref.run({x})[0]);
    // Another batch size through the same kernel.
    Shape xs2 = x.shape();
    xs2[0] = xs2[0] % 3 + 2;
    Tensor x2 = random_f32(xs2, rng);
    expect_near(fast.run({x2})[0], ref.run({x2})[0]);
    ++fast_used;
  }
  EXPECT_EQ(fast_used, 60);
}

TEST(OpsPool, BadInputThrowsNamingTheNode) {
  std::mt19937 rng(1);
  auto expect_error = [&](const std::string& op, const Tensor& x, Attrs a,
                          const std::string& cause) {
    for (Impl impl : {Impl::reference, Impl::fast}) {
      try {
        run(op, x, a, impl);
        ADD_FAILURE() << "no error for " << cause;
      } catch (const Error& e) {
        EXPECT_EQ(e.where(), op + " node 'n0'");
        EXPECT_NE(std::string(e.what()).find(cause), std::string::npos) << e.what();
      }
    }
  };
  expect_error("MaxPool", random_f32({2, 3}, rng), {{"kernel_shape", Ints{2}}}, "rank");
  expect_error("MaxPool", random_f32({1, 1, 4, 4}, rng), {}, "kernel_shape");
  expect_error("AveragePool", random_f32({1, 1, 4, 4}, rng),
               {{"kernel_shape", Ints{2, 2}}, {"pads", Ints{1, 1}}}, "pads");
  expect_error("AveragePool", random_f32({1, 1, 4, 4}, rng), {{"kernel_shape", Ints{5, 5}}},
               "larger than");
  expect_error("GlobalAveragePool", random_f32({4}, rng), {}, "rank");
}

}  // namespace
