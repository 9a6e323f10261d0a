// Resize and Upsample against hand-computed values and the ONNX specification's examples: every
// nearest_mode, every coordinate_transformation_mode, N-linear over three spatial axes, cubic,
// tf_crop_and_resize with extrapolation, scales and sizes given at run time, integer data,
// empty tensors, the opset-10 and Upsample forms; invalid nodes throw one-line errors naming
// the node. GroupNormalization at opsets 18 and 21 (each with its own scale and bias semantics)
// imported from ONNX and checked against the formula.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "support/expect_error.h"
#include "support/onnx_builder.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

namespace {

using Attrs = std::map<std::string, Attribute>;

Tensor i64(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<int64_t>({n}, v);
}
Tensor fv(std::vector<float> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<float>({n}, v);
}
std::vector<float> floats(const Tensor& t) {
  return t.to_floats();
}

// Resize (opset 13) of x by scales or sizes (the other empty) with the attributes.
Tensor resize(const Tensor& x, const Tensor& scales, const Tensor& sizes, Attrs attrs,
              const Tensor& roi = {}) {
  return run("Resize", {x, roi, scales, sizes}, Impl::reference, std::move(attrs), 13);
}

Attrs nearest(const std::string& coord, const std::string& rounding) {
  return {{"mode", std::string("nearest")},
          {"coordinate_transformation_mode", coord},
          {"nearest_mode", rounding}};
}
Attrs linear(const std::string& coord) {
  return {{"mode", std::string("linear")}, {"coordinate_transformation_mode", coord}};
}

void expect_values(const Tensor& got, const Shape& shape, const std::vector<float>& want,
                   double tol = 1e-5) {
  ASSERT_EQ(got.shape(), shape);
  expect_close(got, f32(shape, want), tol, tol);
}

}  // namespace

// Asymmetric coordinates o * 3/4 and o * 4/5 put fractions .75, .5, .25, .8, .6, .4, .2 under
// each rounding rule.
TEST(OpsResize, NearestModesRoundAsSpecified) {
  const Tensor a = fv({1, 2, 3}), b = fv({1, 2, 3, 4});
  struct Case {
    const char* mode;
    std::vector<float> a, b;
  };
  for (const Case& c : {Case{"round_prefer_floor", {1, 2, 2, 3}, {1, 2, 3, 3, 4}},
                        Case{"floor", {1, 1, 2, 3}, {1, 1, 2, 3, 4}},
                        Case{"round_prefer_ceil", {1, 2, 3, 3}, {1, 2, 3, 3, 4}},
                        Case{"ceil", {1, 2, 3, 3}, {1, 2, 3, 4, 4}}}) {
    SCOPED_TRACE(c.mode);
    EXPECT_EQ(floats(resize(a, {}, i64({4}), nearest("asymmetric", c.mode))), c.a);
    EXPECT_EQ(floats(resize(b, {}, i64({5}), nearest("asymmetric", c.mode))), c.b);
  }
  // A tie at .5 exactly (o / 2 for odd o): prefer_floor goes down, prefer_ceil up.
  EXPECT_EQ(floats(resize(b, fv({2}), {}, nearest("asymmetric", "round_prefer_floor"))),
            (std::vector<float>{1, 1, 2, 2, 3, 3, 4, 4}));
  EXPECT_EQ(floats(resize(b, fv({2}), {}, nearest("asymmetric", "round_prefer_ceil"))),
            (std::vector<float>{1, 2, 2, 3, 3, 4, 4, 4}));
  // tf_half_pixel_for_nn: (o + 0.5) / 2.
  EXPECT_EQ(floats(resize(b, fv({2}), {}, nearest("tf_half_pixel_for_nn", "round_prefer_floor"))),
            (std::vector<float>{1, 2, 2, 3, 3, 4, 4, 4}));
}

TEST(OpsResize, LinearCoordinateTransforms) {
  const Tensor x = fv({1, 2, 3, 4});
  // half_pixel: o / 2 - 1/4, clamped at the edges.
  expect_values(resize(x, fv({2}), {}, linear("half_pixel")), {8},
                {1, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4});
  expect_values(resize(x, fv({2}), {}, linear("asymmetric")), {8}, {1, 1.5, 2, 2.5, 3, 3.5, 4, 4});
  expect_values(resize(x, {}, i64({7}), linear("align_corners")), {7}, {1, 1.5, 2, 2.5, 3, 3.5, 4});
  // One output: pytorch_half_pixel reads position 0, half_pixel the centre 1.5.
  expect_values(resize(x, {}, i64({1}), linear("pytorch_half_pixel")), {1}, {1});
  expect_values(resize(x, {}, i64({1}), linear("half_pixel")), {1}, {2.5});
  expect_values(resize(x, {}, i64({3}), linear("pytorch_half_pixel")), {3},
                {1.1666666f, 2.5f, 3.8333333f});
}

// The specification's examples (test_resize_*).
TEST(OpsResize, SpecificationExamples) {
  const Tensor x22 = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  const Tensor x24 = f32({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  expect_values(resize(x22, fv({1, 1, 2, 3}), {}, {{"mode", std::string("nearest")}}), {1, 1, 4, 6},
                {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  expect_values(resize(x24, fv({1, 1, 0.6f, 0.6f}), {}, {{"mode", std::string("nearest")}}),
                {1, 1, 1, 2}, {1, 3});
  expect_values(resize(x22, fv({1, 1, 2, 2}), {}, {{"mode", std::string("linear")}}), {1, 1, 4, 4},
                {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4});
  expect_values(resize(x24, fv({1, 1, 0.6f, 0.6f}), {}, {{"mode", std::string("linear")}}),
                {1, 1, 1, 2}, {2.6666665f, 4.3333331f});
  // align_corners divides by the float length input * scale (2.4), as the reference does.
  expect_values(resize(x24, fv({1, 1, 0.6f, 0.6f}), {}, linear("align_corners")), {1, 1, 1, 2},
                {1, 3.142857f});
  std::vector<float> v16(16);
  for (int i = 0; i < 16; ++i) v16[i] = static_cast<float>(i + 1);
  const Tensor x44 = f32({1, 1, 4, 4}, v16);
  Attrs crop = linear("tf_crop_and_resize");
  const Tensor roi = fv({0, 0, 0.4f, 0.6f, 1, 1, 0.6f, 0.8f});
  expect_values(resize(x44, {}, i64({1, 1, 3, 3}), crop, roi), {1, 1, 3, 3},
                {7.6f, 7.9f, 8.2f, 8.8f, 9.1f, 9.4f, 10, 10.3f, 10.6f});
  crop["extrapolation_value"] = 10.f;
  expect_values(resize(x44, {}, i64({1, 1, 3, 3}), crop, fv({0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f})),
                {1, 1, 3, 3}, {7.6f, 10, 10, 12.4f, 10, 10, 10, 10, 10});
  // Cubic (A = -0.75): the first row of test_resize_upsample_scales_cubic.
  const Tensor cubic = resize(x44, fv({1, 1, 2, 2}), {}, {{"mode", std::string("cubic")}});
  ASSERT_EQ(cubic.shape(), (Shape{1, 1, 8, 8}));
  const std::vector<float> row = {0.47265625f, 0.76953125f, 1.24609375f, 1.875f,
                                  2.28125f,    2.91015625f, 3.38671875f, 3.68359375f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(cubic.data<float>()[i], row[i], 1e-5) << i;
}

// Trilinear over three spatial axes: align_corners keeps the corners, the centre is the mean.
TEST(OpsResize, TrilinearOverThreeAxes) {
  const Tensor x = f32({1, 1, 2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  const Tensor y = resize(x, {}, i64({1, 1, 3, 3, 3}), linear("align_corners"));
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3, 3}));
  const float* p = y.data<float>();
  EXPECT_FLOAT_EQ(p[0], 0);
  EXPECT_FLOAT_EQ(p[2], 1);
  EXPECT_FLOAT_EQ(p[26], 7);
  EXPECT_FLOAT_EQ(p[13], 3.5f);
  EXPECT_FLOAT_EQ(p[1 * 9 + 1 * 3 + 0], 3);  // centre of the x = 0 face: mean of 0, 2, 4, 6
}

TEST(OpsResize, IntegerEmptyAndRuntimeSizes) {
  // Nearest on uint8 copies values.
  const Tensor u = Tensor::from<uint8_t>({1, 1, 1, 2}, {7, 200});
  const Tensor y = resize(u, fv({1, 1, 2, 2}), {}, {{"mode", std::string("nearest")}});
  ASSERT_EQ(y.dtype(), DType::u8);
  EXPECT_EQ(y.to_ints(), (std::vector<int64_t>{7, 7, 200, 200, 7, 7, 200, 200}));
  // An empty batch resizes to an empty batch.
  const Tensor e = resize(Tensor(DType::f32, {0, 2, 3, 3}), fv({1, 1, 2, 2}), {},
                          {{"mode", std::string("linear")}});
  EXPECT_EQ(e.shape(), (Shape{0, 2, 6, 6}));
  // Sizes computed in the graph from the input's shape: Shape -> Mul by 2 -> Resize.
  Graph g;
  g.opset = 13;
  const int x = g.add_value("x");
  g.values[x].shape = {-1, 1, 2, 2};
  g.values[x].shape_known = true;
  g.inputs.push_back(x);
  const int two = g.add_constant("two", i64({1, 1, 2, 2}));
  auto node = [&](const std::string& op, std::vector<int> ins, Attrs attrs = {}) {
    Node n;
    n.name = op;
    n.op_type = op;
    n.inputs = std::move(ins);
    n.attrs = std::move(attrs);
    n.outputs.push_back(g.add_value(op + "_out", op == "Resize" ? DType::f32 : DType::i64));
    g.nodes.push_back(n);
    return n.outputs[0];
  };
  const int shape = node("Shape", {x});
  const int sizes = node("Mul", {shape, two});
  g.outputs.push_back(node("Resize", {x, -1, -1, sizes}, {{"mode", std::string("nearest")}}));
  g.sort();
  for (Impl impl : {Impl::reference, Impl::fast}) {
    Executor ex(g, impl);
    const Tensor out = ex.run({f32({3, 1, 2, 2}, {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4})}).at(0);
    EXPECT_EQ(out.shape(), (Shape{3, 1, 4, 4}));
    EXPECT_EQ(out.data<float>()[5], 1);
    EXPECT_EQ(out.data<float>()[15], 4);
  }
}

TEST(OpsResize, Opset10AndUpsample) {
  const Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  const std::vector<float> nn = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
  // Resize-10: X, scales; asymmetric, nearest rounding down.
  EXPECT_EQ(floats(run("Resize", {x, fv({1, 1, 2, 2})}, Impl::reference, {}, 10)), nn);
  // Upsample-9 (scales input) and -7 (scales attribute).
  EXPECT_EQ(floats(run("Upsample", {x, fv({1, 1, 2, 2})}, Impl::reference, {}, 9)), nn);
  EXPECT_EQ(floats(run("Upsample", {x}, Impl::reference,
                       {{"scales", std::vector<float>{1, 1, 2, 2}}}, 7)),
            nn);
  // Linear upsampling is asymmetric and clamps at the far edge.
  expect_values(
      run("Upsample", {x, fv({1, 1, 1, 2})}, Impl::reference, {{"mode", std::string("linear")}}, 9),
      {1, 1, 2, 4}, {1, 1.5, 2, 2, 3, 3.5, 4, 4});
}

TEST(OpsResize, InvalidNodesNameTheNode) {
  const Tensor x = f32({1, 1, 2, 2}, {1, 2, 3, 4});
  auto err = [&](const std::function<void()>& f, const std::string& what) {
    const std::string msg = error_of(f);
    EXPECT_NE(msg.find("Resize node 'n0'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  err(
      [&] {
        resize(x, fv({1, 1, 2, 2}), {}, {{"mode", std::string("bicubic")}});
      },
      "unknown mode 'bicubic'");
  err(
      [&] {
        resize(x, fv({1, 1, 2, 2}), {}, linear("centre"));
      },
      "unknown coordinate_transformation_mode 'centre'");
  err(
      [&] {
        resize(x, fv({1, 1, 2, 2}), {}, nearest("asymmetric", "nearest"));
      },
      "unknown nearest_mode 'nearest'");
  err([&] { resize(x, fv({1, 1, 2, 2}), i64({1, 1, 4, 4}), {}); }, "exactly one of scales");
  err([&] { resize(x, {}, {}, {}); }, "exactly one of scales");
  err([&] { resize(x, fv({2, 2}), {}, {}); }, "scales has 2 values for an input of rank 4");
  err([&] { resize(x, fv({1, 1, -2, 2}), {}, {}); }, "scales must be positive");
  err([&] { resize(x, {}, i64({1, 1, 3, 3}), linear("tf_crop_and_resize")); }, "roi");
  err(
      [&] {
        resize(Tensor::from<int32_t>({1, 1, 1, 1}, {1}), fv({1, 1, 2, 2}), {},
               linear("asymmetric"));
      },
      "need float input");
}

// ---- GroupNormalization -------------------------------------------------------------------

namespace {

// X [2, 4, 3] -> GroupNormalization(num_groups 2, epsilon 1e-3) at `opset` with scale and bias
// of `affine` elements.
std::string group_norm_model(int64_t opset, const std::vector<float>& scale,
                             const std::vector<float>& bias) {
  OnnxBuilder b(opset);
  b.model().set_ir_version(opset >= 21 ? 10 : 9);
  b.input("x", {2, 4, 3}).output("y", {2, 4, 3});
  b.initializer("scale", fv(scale)).initializer("bias", fv(bias));
  auto& n = b.node("GroupNormalization", {"x", "scale", "bias"}, {"y"}, "gn");
  OnnxBuilder::attr(n, "num_groups", int64_t{2});
  OnnxBuilder::attr(n, "epsilon", 1e-3f);
  return b.bytes();
}

// The formula, with the affine value of channel c given by `affine(c)`.
Tensor group_norm_formula(const Tensor& x,
                          const std::function<std::pair<double, double>(int)>& ab) {
  Tensor y(DType::f32, x.shape());
  for (int n = 0; n < 2; ++n)
    for (int g = 0; g < 2; ++g) {
      double sum = 0, sq = 0;
      for (int i = 0; i < 6; ++i) sum += x.data<float>()[n * 12 + g * 6 + i];
      const double m = sum / 6;
      for (int i = 0; i < 6; ++i) sq += std::pow(x.data<float>()[n * 12 + g * 6 + i] - m, 2);
      const double inv = 1 / std::sqrt(sq / 6 + 1e-3);
      for (int i = 0; i < 6; ++i) {
        const int at = n * 12 + g * 6 + i;
        const auto [a, b] = ab(g * 2 + i / 3);
        y.data<float>()[at] = static_cast<float>((x.data<float>()[at] - m) * inv * a + b);
      }
    }
  return y;
}

}  // namespace

TEST(OpsGroupNorm, Opset18ScalesPerGroupOpset21PerChannel) {
  std::mt19937 rng(3);
  const Tensor x = random_f32({2, 4, 3}, rng, -2.f, 3.f);
  {  // opset 18: scale and bias [num_groups]
    const Graph g = load_onnx_bytes(group_norm_model(18, {2, -1}, {0.5f, 3}), "gn18.onnx");
    ASSERT_EQ(g.nodes.size(), 1u);
    EXPECT_EQ(g.nodes[0].domain, "mixq");
    const Tensor want = group_norm_formula(x, [](int c) {
      return c < 2 ? std::pair{2.0, 0.5} : std::pair{-1.0, 3.0};
    });
    for (Impl impl : {Impl::reference, Impl::fast})
      expect_close(Executor(g, impl).run({x}).at(0), want, 1e-5, 1e-5);
  }
  {  // opset 21: scale and bias [C]
    const Graph g = load_onnx_bytes(group_norm_model(21, {1, 2, 3, 4}, {0, -1, 1, 2}), "gn21.onnx");
    const std::vector<double> a = {1, 2, 3, 4}, b = {0, -1, 1, 2};
    const Tensor want = group_norm_formula(x, [&](int c) { return std::pair{a[c], b[c]}; });
    expect_close(Executor(g, Impl::reference).run({x}).at(0), want, 1e-5, 1e-5);
  }
  // Each opset's shapes only.
  for (auto [opset, n] : {std::pair{18, 4}, std::pair{21, 2}}) {
    const Graph g = load_onnx_bytes(
        group_norm_model(opset, std::vector<float>(n, 1.f), std::vector<float>(n, 0.f)), "m.onnx");
    const std::string msg = error_of([&] { Executor(g, Impl::reference).run({x}); });
    EXPECT_NE(msg.find("GroupNormalization node 'gn': scale [" + std::to_string(n) + "] must be ["),
              std::string::npos)
        << msg;
  }
}

TEST(OpsGroupNorm, InvalidNodesNameTheNode) {
  OnnxBuilder b(21);
  b.model().set_ir_version(10);
  b.input("x", {1, 6, 2}).output("y", {1, 6, 2});
  b.initializer("s", fv({1, 1, 1, 1, 1, 1})).initializer("b", fv({0, 0, 0, 0, 0, 0}));
  OnnxBuilder::attr(b.node("GroupNormalization", {"x", "s", "b"}, {"y"}, "gn4"), "num_groups",
                    int64_t{4});
  const Graph g = load_onnx_bytes(b.bytes(), "m.onnx");
  std::mt19937 rng(1);
  const std::string msg = error_of([&] {
    Executor(g, Impl::reference).run({random_f32({1, 6, 2}, rng, 0, 1)});
  });
  EXPECT_NE(msg.find("GroupNormalization node 'gn4': 6 channels do not split into 4 groups"),
            std::string::npos)
      << msg;
}

// Opsets 18-19 features without an opset-13 form are refused at load naming the node; an
// opset-19 Resize without them runs as its opset-13 form.
TEST(OpsResize, Opset18And19FormsOnImport) {
  auto model = [](int64_t opset, const std::string& coord, bool axes, bool sizes) {
    OnnxBuilder b(opset);
    b.model().set_ir_version(9);
    b.input("x", {1, 1, 2, 2}).output("y", {1, 1, 4, 4});
    b.initializer("roi", fv({0, 0, 0, 0, 1, 1, 1, 1}));
    b.initializer("scales", axes ? fv({2, 2}) : fv({1, 1, 2, 2}));
    b.initializer("sizes", i64({1, 1, 4, 4}));
    auto& n =
        b.node("Resize", {"x", "roi", sizes ? "" : "scales", sizes ? "sizes" : ""}, {"y"}, "rs");
    auto* a = n.add_attribute();
    a->set_name("coordinate_transformation_mode");
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(coord);
    if (axes) OnnxBuilder::attr(n, "axes", std::vector<int64_t>{2, 3});
    return b.bytes();
  };
  auto load_error = [](const std::string& bytes) {
    return error_of([&] { load_onnx_bytes(bytes, "m.onnx"); });
  };
  std::string msg = load_error(model(18, "asymmetric", true, false));
  EXPECT_NE(msg.find("Resize node 'rs': antialias, axes"), std::string::npos) << msg;
  msg = load_error(model(19, "tf_crop_and_resize", false, false));
  EXPECT_NE(msg.find("Resize node 'rs': tf_crop_and_resize with scales"), std::string::npos) << msg;
  for (bool sizes : {false, true}) {
    const Graph g = load_onnx_bytes(model(19, "asymmetric", false, sizes), "m.onnx");
    const Tensor y = Executor(g, Impl::reference).run({f32({1, 1, 2, 2}, {1, 2, 3, 4})}).at(0);
    EXPECT_EQ(floats(y), (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}));
  }
  // tf_crop_and_resize by sizes means the same at opset 19.
  const Graph g = load_onnx_bytes(model(19, "tf_crop_and_resize", false, true), "m.onnx");
  EXPECT_EQ(Executor(g, Impl::reference).run({f32({1, 1, 2, 2}, {1, 2, 3, 4})}).at(0).shape(),
            (Shape{1, 1, 4, 4}));
}
