// Shape and data-movement ops: hand-computed results for each op, the int64 shape subgraph
// PyTorch exports for F.pad, ONNX Slice clamping and negative steps, fast-vs-reference agreement
// on random shapes, and invalid nodes throwing errors that name the node.
#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include "base/error.h"
#include "ops/kernel.h"
#include "passes/passes.h"
#include "runtime/executor.h"
#include "support/expect_error.h"

using namespace mixq;
using mixq::test::expect_error;

namespace {

struct NodeRun {
  std::vector<Tensor> outs;
  std::string impl;  // implementation chosen
};

// Builds node "n0" over the inputs (undefined tensor = omitted input) and runs it once.
NodeRun run_node(const std::string& op, const std::vector<Tensor>& inputs,
                 std::map<std::string, Attribute> attrs = {}, Impl impl = Impl::reference,
                 int64_t opset = 13, size_t n_out = 1) {
  Graph g;
  g.opset = opset;
  Node n;
  n.name = "n0";
  n.op_type = op;
  n.attrs = std::move(attrs);
  for (size_t i = 0; i < inputs.size(); ++i)
    n.inputs.push_back(
        inputs[i].defined() ? g.add_value("in" + std::to_string(i), inputs[i].dtype()) : -1);
  for (size_t i = 0; i < n_out; ++i) n.outputs.push_back(g.add_value("out" + std::to_string(i)));
  NodeRun r;
  auto k = Registry::get().make(n, g, impl, &r.impl);
  std::vector<const Tensor*> in;
  for (const Tensor& t : inputs) in.push_back(t.defined() ? &t : nullptr);
  r.outs.resize(n_out);
  std::vector<Tensor*> out;
  for (Tensor& t : r.outs) out.push_back(&t);
  k->forward(in, out);
  return r;
}

Tensor run1(const std::string& op, const std::vector<Tensor>& inputs,
            std::map<std::string, Attribute> attrs = {}, int64_t opset = 13) {
  return run_node(op, inputs, std::move(attrs), Impl::reference, opset).outs[0];
}

Tensor f32(Shape s, std::vector<float> v) {
  return Tensor::from<float>(std::move(s), v);
}
Tensor i64(Shape s, std::vector<int64_t> v) {
  return Tensor::from<int64_t>(std::move(s), v);
}
Tensor i64v(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return i64({n}, std::move(v));
}
Tensor iota_f32(Shape s) {
  Tensor t(DType::f32, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}
Tensor iota_i64(Shape s) {
  Tensor t(DType::i64, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = i;
  return t;
}

std::vector<float> floats(const Tensor& t) {
  return t.to_floats();
}
std::vector<int64_t> ints(const Tensor& t) {
  return t.to_ints();
}
using Ints = std::vector<int64_t>;
using Floats = std::vector<float>;

// Expects fn to throw mixq::Error whose message names node "n0".
template <class F>
void expect_node_error(F fn, const std::string& fragment = "") {
  expect_error(fn, {"node 'n0'", fragment});
}

Tensor random_f32(Shape s, std::mt19937& rng) {
  Tensor t(DType::f32, std::move(s));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

Shape random_shape(std::mt19937& rng, int rank, int64_t max_dim) {
  Shape s(rank);
  for (int64_t& d : s) d = std::uniform_int_distribution<int64_t>(1, max_dim)(rng);
  return s;
}

void expect_same(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
}

}  // namespace

// ----------------------------------------------------------------------------------- Reshape

TEST(OpsShapeReshape, ZeroCopiesAndMinusOneInfers) {
  Tensor x = iota_f32({2, 3, 4});
  Tensor y = run1("Reshape", {x, i64v({0, -1})});
  EXPECT_EQ(y.shape(), (Shape{2, 12}));
  EXPECT_EQ(y.raw(), x.raw());  // a view, no copy
  EXPECT_EQ(run1("Reshape", {x, i64v({-1, 0, 2})}).shape(), (Shape{4, 3, 2}));
}

TEST(OpsShapeReshape, AllowZeroKeepsZero) {
  Tensor x(DType::f32, {0, 3});
  EXPECT_EQ(run1("Reshape", {x, i64v({3, 0})}, {{"allowzero", int64_t{1}}}, 14).shape(),
            (Shape{3, 0}));
  // Without allowzero the 0 copies dimension 1 (3) instead.
  Tensor z = iota_f32({4, 3});
  EXPECT_EQ(run1("Reshape", {z, i64v({2, 0, 2})}).shape(), (Shape{2, 3, 2}));
}

TEST(OpsShapeReshape, ImpossibleShapeThrowsNamingNode) {
  Tensor x = iota_f32({2, 3});
  expect_node_error([&] { run1("Reshape", {x, i64v({4, -1})}); }, "cannot reshape");
  expect_node_error([&] { run1("Reshape", {x, i64v({5})}); }, "cannot reshape");
  expect_node_error([&] { run1("Reshape", {x, i64v({-1, -1})}); }, "more than one -1");
}

TEST(OpsShapeFlatten, Axes) {
  Tensor x = iota_f32({2, 3, 4});
  EXPECT_EQ(run1("Flatten", {x}).shape(), (Shape{2, 12}));
  EXPECT_EQ(run1("Flatten", {x}, {{"axis", int64_t{0}}}).shape(), (Shape{1, 24}));
  EXPECT_EQ(run1("Flatten", {x}, {{"axis", int64_t{3}}}).shape(), (Shape{24, 1}));
  EXPECT_EQ(run1("Flatten", {x}, {{"axis", int64_t{-1}}}).shape(), (Shape{6, 4}));
  expect_node_error([&] { run1("Flatten", {x}, {{"axis", int64_t{4}}}); }, "out of range");
}

TEST(OpsShapeSqueeze, AttributeAndInputForms) {
  Tensor x = iota_f32({1, 3, 1, 2});
  EXPECT_EQ(run1("Squeeze", {x}).shape(), (Shape{3, 2}));
  EXPECT_EQ(run1("Squeeze", {x}, {{"axes", Ints{-2}}}, 11).shape(), (Shape{1, 3, 2}));
  EXPECT_EQ(run1("Squeeze", {x, i64v({0})}, {}, 13).shape(), (Shape{3, 1, 2}));
  expect_node_error([&] { run1("Squeeze", {x, i64v({1})}); }, "cannot squeeze");
}

TEST(OpsShapeUnsqueeze, AttributeAndInputForms) {
  Tensor x = iota_f32({3, 2});
  EXPECT_EQ(run1("Unsqueeze", {x}, {{"axes", Ints{0, 3}}}, 11).shape(), (Shape{1, 3, 2, 1}));
  EXPECT_EQ(run1("Unsqueeze", {x, i64v({-1, 1})}).shape(), (Shape{3, 1, 2, 1}));
  EXPECT_EQ(floats(run1("Unsqueeze", {x, i64v({1})})), floats(x));
  expect_node_error([&] { run1("Unsqueeze", {x, i64v({4})}); }, "out of range");
  expect_node_error([&] { run1("Unsqueeze", {x, i64v({1, 1})}); }, "twice");
}

TEST(OpsShapeShape, StartEndAndSize) {
  Tensor x(DType::u8, {2, 3, 4, 5});
  EXPECT_EQ(ints(run1("Shape", {x})), (Ints{2, 3, 4, 5}));
  EXPECT_EQ(ints(run1("Shape", {x}, {{"start", int64_t{1}}, {"end", int64_t{-1}}}, 15)),
            (Ints{3, 4}));
  EXPECT_EQ(ints(run1("Shape", {x}, {{"start", int64_t{-10}}, {"end", int64_t{10}}}, 15)),
            (Ints{2, 3, 4, 5}));
  EXPECT_EQ(run1("Shape", {x}, {{"start", int64_t{3}}, {"end", int64_t{1}}}, 15).numel(), 0);
  Tensor n = run1("Size", {x});
  EXPECT_EQ(n.dtype(), DType::i64);
  EXPECT_EQ(n.rank(), 0u);
  EXPECT_EQ(n.get_int(0), 120);
}

TEST(OpsShapeIdentity, IdentityAndDropoutPassThrough) {
  Tensor x = iota_f32({2, 2});
  EXPECT_EQ(run1("Identity", {x}).raw(), x.raw());
  NodeRun d = run_node("Dropout", {x}, {}, Impl::reference, 13, 2);
  EXPECT_EQ(floats(d.outs[0]), floats(x));
  EXPECT_EQ(d.outs[1].dtype(), DType::boolean);
  EXPECT_EQ(ints(d.outs[1]), (Ints{1, 1, 1, 1}));
  // Opset 7 masks have the input's type.
  EXPECT_EQ(run_node("Dropout", {x}, {}, Impl::reference, 7, 2).outs[1].dtype(), DType::f32);
  // A training_mode decided at run time is declined: the node would be random.
  Tensor training = Tensor::from<bool>({}, {true});
  expect_node_error([&] { run1("Dropout", {x, f32({}, {0.5f}), training}); }, "no implementation");
}

TEST(OpsShapeIdentity, DropoutWithConstantTrainingMode) {
  auto build = [](bool training, float ratio) {
    Graph g;
    Node n{"n0", "Dropout", "", {}, {}, {}};
    n.inputs = {g.add_value("x"), g.add_constant("r", f32({}, {ratio})),
                g.add_constant("t", Tensor::from<bool>({}, {training}))};
    n.outputs = {g.add_value("y"), g.add_value("mask", DType::boolean)};
    return std::make_pair(g, n);
  };
  auto [g0, n0] = build(false, 0.5f);
  EXPECT_NE(Registry::get().make(n0, g0, Impl::reference), nullptr);
  auto [g1, n1] = build(true, 0.f);  // training with ratio 0 is still the identity
  auto k = Registry::get().make(n1, g1, Impl::reference);
  Tensor x = iota_f32({3}), y, mask;
  k->forward({&x, &g1.constant(n1.inputs[1]), &g1.constant(n1.inputs[2])}, {&y, &mask});
  EXPECT_EQ(floats(y), floats(x));
  EXPECT_EQ(ints(mask), (Ints{1, 1, 1}));
  // A pair, not a structured binding: clang before 16 cannot capture bindings in a lambda.
  const auto gn2 = build(true, 0.25f);
  expect_node_error([&] { Registry::get().make(gn2.second, gn2.first, Impl::reference); },
                    "no implementation");
}

// ------------------------------------------------------------------------ Creation, Cast

TEST(OpsShapeConstantOfShape, ValueAndDefault) {
  Tensor y = run1("ConstantOfShape", {i64v({2, 3})});
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(floats(y), Floats(6, 0.f));
  Tensor v = run1("ConstantOfShape", {i64v({3})}, {{"value", i64({1}, {7})}});
  EXPECT_EQ(v.dtype(), DType::i64);
  EXPECT_EQ(ints(v), (Ints{7, 7, 7}));
  EXPECT_EQ(run1("ConstantOfShape", {i64v({2, 0})}).numel(), 0);
  EXPECT_EQ(run1("ConstantOfShape", {i64({0}, {})}).rank(), 0u);  // a scalar
}

TEST(OpsShapeCast, FloatToIntTruncatesTowardZero) {
  Tensor x = f32({6}, {-2.9f, -1.5f, -0.5f, 0.5f, 1.5f, 2.9f});
  EXPECT_EQ(ints(run1("Cast", {x}, {{"to", int64_t{7}}})), (Ints{-2, -1, 0, 0, 1, 2}));
  Tensor y = run1("Cast", {x}, {{"to", int64_t{6}}});
  EXPECT_EQ(y.dtype(), DType::i32);
  EXPECT_EQ(y.data<int32_t>()[0], -2);
}

TEST(OpsShapeCast, ToBoolIsNonZeroAndBack) {
  Tensor x = f32({4}, {0.f, -0.f, 0.25f, -3.f});
  Tensor b = run1("Cast", {x}, {{"to", int64_t{9}}});
  EXPECT_EQ(b.dtype(), DType::boolean);
  EXPECT_EQ(ints(b), (Ints{0, 0, 1, 1}));
  EXPECT_EQ(floats(run1("Cast", {b}, {{"to", int64_t{1}}})), (Floats{0, 0, 1, 1}));
}

TEST(OpsShapeCast, AllDTypesBothWays) {
  // ONNX codes of float, uint8, int8, int16, int32, int64, bool, double.
  const std::vector<int64_t> codes{1, 2, 3, 5, 6, 7, 9, 11};
  Tensor base = i64v({0, 1, 5, 100});
  for (int64_t from : codes)
    for (int64_t to : codes) {
      Tensor src = run1("Cast", {base}, {{"to", from}});
      Tensor dst = run1("Cast", {src}, {{"to", to}});
      const bool bools = from == 9 || to == 9;
      EXPECT_EQ(ints(dst), bools ? (Ints{0, 1, 1, 1}) : (Ints{0, 1, 5, 100}))
          << from << " -> " << to;
    }
  EXPECT_EQ(ints(run1("Cast", {i64v({-1, 300})}, {{"to", int64_t{2}}})), (Ints{255, 44}));
  // Types mixq has no DType for (float16) are declined, not failed.
  EXPECT_THROW(run1("Cast", {base}, {{"to", int64_t{10}}}), Error);
  EXPECT_EQ(run1("CastLike", {base, f32({}, {0})}).dtype(), DType::f32);
}

TEST(OpsShapeRange, IntegerAndFloat) {
  EXPECT_EQ(ints(run1("Range", {i64({}, {1}), i64({}, {10}), i64({}, {3})})), (Ints{1, 4, 7}));
  EXPECT_EQ(ints(run1("Range", {i64({}, {10}), i64({}, {4}), i64({}, {-3})})), (Ints{10, 7}));
  EXPECT_EQ(run1("Range", {i64({}, {5}), i64({}, {1}), i64({}, {2})}).numel(), 0);
  EXPECT_EQ(floats(run1("Range", {f32({}, {0.5f}), f32({}, {2.f}), f32({}, {0.5f})})),
            (Floats{0.5f, 1.f, 1.5f}));
  expect_node_error([&] { run1("Range", {i64({}, {0}), i64({}, {3}), i64({}, {0})}); }, "zero");
}

// ------------------------------------------------------------------ Transpose and friends

TEST(OpsShapeTranspose, DefaultReversesAndPerm) {
  Tensor x = iota_f32({2, 3});
  Tensor y = run1("Transpose", {x});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(floats(y), (Floats{0, 3, 1, 4, 2, 5}));
  Tensor z = run1("Transpose", {iota_i64({2, 1, 3})}, {{"perm", Ints{2, 0, 1}}});
  EXPECT_EQ(z.shape(), (Shape{3, 2, 1}));
  EXPECT_EQ(ints(z), (Ints{0, 3, 1, 4, 2, 5}));
  expect_node_error([&] { run1("Transpose", {x}, {{"perm", Ints{0, 0}}}); }, "permutation");
  expect_node_error([&] { run1("Transpose", {x}, {{"perm", Ints{0, 2}}}); }, "out of range");
}

TEST(OpsShapeTranspose, FastMatchesReferenceOnRandomShapes) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const int rank = 1 + trial % 5;
    Tensor x = random_f32(random_shape(rng, rank, rank > 3 ? 6 : 40), rng);
    Ints perm(rank);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    NodeRun fast = run_node("Transpose", {x}, {{"perm", perm}}, Impl::fast);
    NodeRun ref = run_node("Transpose", {x}, {{"perm", perm}}, Impl::reference);
    EXPECT_EQ(fast.impl, "fast");
    EXPECT_EQ(ref.impl, "ref");
    expect_same(fast.outs[0], ref.outs[0]);
  }
  // NCHW -> NHWC big enough (over 2^20 elements) to run the tiled path on threads.
  Tensor x = random_f32({2, 64, 90, 91}, rng);
  std::map<std::string, Attribute> a{{"perm", Ints{0, 2, 3, 1}}};
  expect_same(run_node("Transpose", {x}, a, Impl::fast).outs[0], run1("Transpose", {x}, a));
}

TEST(OpsShapeDepthToSpace, ModesAndInverse) {
  Tensor x = iota_f32({1, 8, 1, 1});
  Tensor dcr = run1("DepthToSpace", {x}, {{"blocksize", int64_t{2}}});
  EXPECT_EQ(dcr.shape(), (Shape{1, 2, 2, 2}));
  EXPECT_EQ(floats(dcr), (Floats{0, 2, 4, 6, 1, 3, 5, 7}));
  Tensor crd = run1("DepthToSpace", {x}, {{"blocksize", int64_t{2}}, {"mode", std::string("CRD")}});
  EXPECT_EQ(floats(crd), (Floats{0, 1, 2, 3, 4, 5, 6, 7}));
  Tensor s = run1("SpaceToDepth", {iota_f32({1, 2, 2, 2})}, {{"blocksize", int64_t{2}}});
  EXPECT_EQ(s.shape(), (Shape{1, 8, 1, 1}));
  EXPECT_EQ(floats(s), (Floats{0, 4, 1, 5, 2, 6, 3, 7}));
  // SpaceToDepth undoes DCR DepthToSpace.
  Tensor big = iota_f32({2, 12, 3, 4});
  Tensor round = run1("SpaceToDepth", {run1("DepthToSpace", {big}, {{"blocksize", int64_t{2}}})},
                      {{"blocksize", int64_t{2}}});
  EXPECT_EQ(floats(round), floats(big));
}

TEST(OpsShapeExpand, BroadcastsBothWays) {
  Tensor x = f32({3, 1}, {1, 2, 3});
  Tensor y = run1("Expand", {x, i64v({2, 1, 2})});
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(floats(y), (Floats{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  expect_node_error([&] { run1("Expand", {x, i64v({2, 2})}); }, "broadcast");
}

TEST(OpsShapeTile, Repeats) {
  Tensor x = iota_i64({2, 2});
  Tensor y = run1("Tile", {x, i64v({1, 2})});
  EXPECT_EQ(y.shape(), (Shape{2, 4}));
  EXPECT_EQ(ints(y), (Ints{0, 1, 0, 1, 2, 3, 2, 3}));
  EXPECT_EQ(ints(run1("Tile", {x, i64v({2, 1})})), (Ints{0, 1, 2, 3, 0, 1, 2, 3}));
  expect_node_error([&] { run1("Tile", {x, i64v({2})}); }, "repeats");
}

// --------------------------------------------------------------------------------- Slice

TEST(OpsShapeSlice, AttributeFormBeforeOpset10) {
  Tensor x = iota_f32({3, 4});
  Tensor y = run1("Slice", {x}, {{"starts", Ints{1, 0}}, {"ends", Ints{1000, -1}}}, 9);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(floats(y), (Floats{4, 5, 6, 8, 9, 10}));
  Tensor z = run1("Slice", {x}, {{"starts", Ints{2}}, {"ends", Ints{4}}, {"axes", Ints{1}}}, 9);
  EXPECT_EQ(floats(z), (Floats{2, 3, 6, 7, 10, 11}));
}

TEST(OpsShapeSlice, NegativeStepsAndClamping) {
  Tensor x = iota_i64({5});
  auto slice = [&](int64_t s, int64_t e, int64_t step) {
    return ints(run1("Slice", {x, i64v({s}), i64v({e}), i64v({0}), i64v({step})}));
  };
  EXPECT_EQ(slice(-1, INT64_MIN, -1), (Ints{4, 3, 2, 1, 0}));  // reverse
  EXPECT_EQ(slice(INT64_MAX, -6, -2), (Ints{4, 2, 0}));        // start clamped to dim-1
  EXPECT_EQ(slice(3, 0, -1), (Ints{3, 2, 1}));                 // end exclusive
  EXPECT_EQ(slice(1, 3, -1), Ints{});                          // empty
  EXPECT_EQ(slice(-100, 100, 2), (Ints{0, 2, 4}));
  EXPECT_EQ(slice(4, 100, 3), (Ints{4}));
  EXPECT_EQ(slice(10, 20, 1), Ints{});
  Tensor m = iota_i64({2, 3});
  Tensor y = run1("Slice", {m, i64v({-1, 0}), i64v({INT64_MIN, 3}), i64v({-1, -2}), i64v({-2, 1})});
  EXPECT_EQ(ints(y), (Ints{2, 0, 5, 3}));  // axis -1 reversed by 2, all rows
  expect_node_error([&] { slice(0, 5, 0); }, "step is zero");
  expect_node_error(
      [&] {
        run1("Slice", {m, i64v({0, 0}), i64v({1, 1}), i64v({1, -1})});
      },
      "twice");
  expect_node_error([&] { run1("Slice", {m, i64v({0}), i64v({1}), i64v({2})}); }, "out of range");
}

TEST(OpsShapeSlice, FastMatchesReferenceOnRandomShapes) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int64_t> coin(0, 3);
  for (int trial = 0; trial < 80; ++trial) {
    const int rank = 1 + trial % 4;
    Shape s = random_shape(rng, rank, 9);
    Tensor x = random_f32(s, rng);
    Ints starts, ends, axes, steps;
    for (int d = 0; d < rank; ++d) {
      if (coin(rng) == 0) continue;  // axis left whole
      std::uniform_int_distribution<int64_t> pos(-s[d] - 2, s[d] + 2);
      std::uniform_int_distribution<int64_t> step(-3, 3);
      int64_t st = 0;
      while (st == 0) st = step(rng);
      starts.push_back(pos(rng));
      ends.push_back(coin(rng) == 0 ? (st > 0 ? INT64_MAX : INT64_MIN) : pos(rng));
      axes.push_back(coin(rng) == 0 ? d - rank : d);
      steps.push_back(st);
    }
    std::vector<Tensor> in{x, i64v(starts), i64v(ends), i64v(axes), i64v(steps)};
    NodeRun fast = run_node("Slice", in, {}, Impl::fast);
    NodeRun ref = run_node("Slice", in, {}, Impl::reference);
    EXPECT_EQ(fast.impl, "fast");
    expect_same(fast.outs[0], ref.outs[0]);
  }
  // Big enough (over 2^20 output elements) to run on threads.
  Tensor x = random_f32({2, 64, 100, 100}, rng);
  std::vector<Tensor> in{x, i64v({2, 1}), i64v({62, 99}), i64v({1, 3})};
  expect_same(run_node("Slice", in, {}, Impl::fast).outs[0], run1("Slice", in));
}

// ------------------------------------------------------------------------- Concat, Split

TEST(OpsShapeConcat, AxesAndDTypes) {
  Tensor a = iota_i64({2, 2}), b = i64({2, 1}, {10, 11});
  Tensor y = run1("Concat", {a, b}, {{"axis", int64_t{-1}}});
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(ints(y), (Ints{0, 1, 10, 2, 3, 11}));
  Tensor z = run1("Concat", {a, i64({1, 2}, {7, 8})}, {{"axis", int64_t{0}}});
  EXPECT_EQ(ints(z), (Ints{0, 1, 2, 3, 7, 8}));
  Tensor e = run1("Concat", {i64({0}, {}), i64v({4})}, {{"axis", int64_t{0}}});
  EXPECT_EQ(ints(e), (Ints{4}));
}

TEST(OpsShapeConcat, RankMismatchAndBadAxisThrow) {
  Tensor a = iota_f32({2, 2}), b = iota_f32({2});
  expect_node_error([&] { run1("Concat", {a, b}, {{"axis", int64_t{0}}}); }, "input 1");
  expect_node_error(
      [&] {
        run1("Concat", {a, iota_f32({3, 3})}, {{"axis", int64_t{0}}});
      },
      "incompatible");
  expect_node_error([&] { run1("Concat", {a, a}, {{"axis", int64_t{2}}}); }, "out of range");
  expect_node_error([&] { run1("Concat", {a, a}); }, "axis");
}

TEST(OpsShapeConcat, FastMatchesReferenceOnRandomShapes) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 40; ++trial) {
    const int rank = 1 + trial % 4;
    Shape s = random_shape(rng, rank, 7);
    const int64_t axis = std::uniform_int_distribution<int64_t>(0, rank - 1)(rng);
    std::vector<Tensor> in;
    for (int i = 0; i < 1 + trial % 4; ++i) {
      Shape si = s;
      si[axis] = std::uniform_int_distribution<int64_t>(0, 5)(rng);
      in.push_back(random_f32(si, rng));
    }
    std::map<std::string, Attribute> a{{"axis", axis - (trial % 2 ? rank : 0)}};
    NodeRun fast = run_node("Concat", in, a, Impl::fast);
    EXPECT_EQ(fast.impl, "fast");
    expect_same(fast.outs[0], run1("Concat", in, a));
  }
  // Big enough (over 2^20 output elements) to run on threads.
  std::vector<Tensor> big{random_f32({1, 32, 128, 128}, rng), random_f32({1, 33, 128, 128}, rng)};
  std::map<std::string, Attribute> a{{"axis", int64_t{1}}};
  expect_same(run_node("Concat", big, a, Impl::fast).outs[0], run1("Concat", big, a));
}

TEST(OpsShapeSplit, AttributeInputAndEqual) {
  Tensor x = iota_i64({2, 6});
  NodeRun a =
      run_node("Split", {x}, {{"axis", int64_t{1}}, {"split", Ints{1, 5}}}, Impl::reference, 11, 2);
  EXPECT_EQ(ints(a.outs[0]), (Ints{0, 6}));
  EXPECT_EQ(ints(a.outs[1]), (Ints{1, 2, 3, 4, 5, 7, 8, 9, 10, 11}));
  NodeRun b =
      run_node("Split", {x, i64v({4, 0, 2})}, {{"axis", int64_t{-1}}}, Impl::reference, 13, 3);
  EXPECT_EQ(b.outs[1].shape(), (Shape{2, 0}));
  EXPECT_EQ(ints(b.outs[2]), (Ints{4, 5, 10, 11}));
  NodeRun c = run_node("Split", {x}, {{"axis", int64_t{1}}}, Impl::reference, 13, 3);
  EXPECT_EQ(ints(c.outs[1]), (Ints{2, 3, 8, 9}));
  expect_node_error(
      [&] {
        run_node("Split", {x}, {{"axis", int64_t{1}}}, Impl::reference, 13, 4);
      },
      "equal");
  expect_node_error(
      [&] {
        run_node("Split", {x, i64v({1, 2})}, {{"axis", int64_t{1}}}, Impl::reference, 13, 2);
      },
      "sum");
}

// ------------------------------------------------------------------------------- Gathers

TEST(OpsShapeGather, AnyAxisNegativeIndices) {
  Tensor x = iota_f32({2, 3});
  Tensor y = run1("Gather", {x, i64({2, 2}, {0, -1, 2, 1})}, {{"axis", int64_t{1}}});
  EXPECT_EQ(y.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(floats(y), (Floats{0, 2, 2, 1, 3, 5, 5, 4}));
  Tensor z = run1("Gather", {x, Tensor::from<int32_t>({}, {-1})});
  EXPECT_EQ(z.shape(), (Shape{3}));
  EXPECT_EQ(floats(z), (Floats{3, 4, 5}));
  expect_node_error(
      [&] {
        run1("Gather", {x, i64v({3})}, {{"axis", int64_t{1}}});
      },
      "out of range");
  expect_node_error(
      [&] {
        run1("Gather", {x, i64v({0})}, {{"axis", int64_t{2}}});
      },
      "out of range");
}

TEST(OpsShapeGather, ElementsAndND) {
  Tensor x = iota_f32({2, 2});
  Tensor e = run1("GatherElements", {x, i64({2, 2}, {0, 0, 1, -2})}, {{"axis", int64_t{1}}});
  EXPECT_EQ(floats(e), (Floats{0, 0, 3, 2}));
  Tensor n = run1("GatherND", {x, i64({2, 2}, {0, 1, 1, 0})});
  EXPECT_EQ(floats(n), (Floats{1, 2}));
  Tensor rows = run1("GatherND", {x, i64({2, 1}, {1, 0})});
  EXPECT_EQ(floats(rows), (Floats{2, 3, 0, 1}));
  Tensor b =
      run1("GatherND", {iota_f32({2, 2, 2}), i64({2, 1}, {1, 0})}, {{"batch_dims", int64_t{1}}});
  EXPECT_EQ(floats(b), (Floats{2, 3, 4, 5}));
}

// ----------------------------------------------------------------------------------- Pad

TEST(OpsShapePad, ConstantAttributeFormBeforeOpset11) {
  Tensor x = f32({1, 2}, {1, 2});
  Tensor y = run1("Pad", {x}, {{"pads", Ints{0, 1, 1, 0}}, {"value", 9.f}}, 7);
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(floats(y), (Floats{9, 1, 2, 9, 9, 9}));
}

TEST(OpsShapePad, ModesWithInputs) {
  Tensor x = iota_f32({3});  // 0 1 2
  auto pad = [&](const std::string& mode, Ints pads, Tensor value = Tensor()) {
    return floats(run1("Pad", {x, i64v(pads), value}, {{"mode", mode}}, 13));
  };
  EXPECT_EQ(pad("constant", {2, 1}), (Floats{0, 0, 0, 1, 2, 0}));
  EXPECT_EQ(pad("constant", {1, 1}, f32({}, {-1})), (Floats{-1, 0, 1, 2, -1}));
  EXPECT_EQ(pad("edge", {2, 1}), (Floats{0, 0, 0, 1, 2, 2}));
  EXPECT_EQ(pad("reflect", {2, 2}), (Floats{2, 1, 0, 1, 2, 1, 0}));
  EXPECT_EQ(pad("reflect", {4, 0}), (Floats{0, 1, 2, 1, 0, 1, 2}));  // as numpy, periodic
  EXPECT_EQ(pad("constant", {-1, 1}), (Floats{1, 2, 0}));            // negative pads crop
  EXPECT_EQ(pad("edge", {-2, 2}), (Floats{2, 2, 2}));
  Tensor m = iota_i64({2, 2});
  Tensor y = run1("Pad", {m, i64v({1, 0, 0, 1}), i64({}, {7})}, {}, 11);
  EXPECT_EQ(ints(y), (Ints{7, 7, 7, 0, 1, 7, 2, 3, 7}));
  expect_node_error([&] { pad("constant", {1}); }, "pads");
  expect_node_error([&] { pad("constant", {-2, -2}); }, "crop");
  expect_node_error(
      [&] {
        run1("Pad", {x, i64v({1, 1})}, {{"mode", std::string("wrap")}});
      },
      "wrap");
}

TEST(OpsShapePad, FastMatchesReferenceOnRandomShapes) {
  std::mt19937 rng(5);
  const char* modes[] = {"constant", "reflect", "edge"};
  for (int trial = 0; trial < 60; ++trial) {
    const int rank = 1 + trial % 4;
    Shape s = random_shape(rng, rank, 6);
    Tensor x = random_f32(s, rng);
    const std::string mode = modes[trial % 3];
    Ints pads(2 * rank);
    for (int i = 0; i < 2 * rank; ++i) {
      const int64_t dim = s[i % rank];
      // Crops keep at least one element so reflect and edge stay defined.
      pads[i] = std::uniform_int_distribution<int64_t>(-(dim - 1) / 2, 4)(rng);
    }
    std::vector<Tensor> in{x, i64v(pads), f32({}, {0.75f})};
    std::map<std::string, Attribute> a{{"mode", mode}};
    NodeRun fast = run_node("Pad", in, a, Impl::fast);
    EXPECT_EQ(fast.impl, "fast");
    expect_same(fast.outs[0], run1("Pad", in, a));
  }
  // Big enough (over 2^20 output elements) to run on threads.
  Tensor x = random_f32({1, 16, 254, 254}, rng);
  std::vector<Tensor> in{x, i64v({0, 0, 1, 2, 0, 0, 3, 1})};
  for (const char* mode : modes) {
    std::map<std::string, Attribute> a{{"mode", std::string(mode)}};
    expect_same(run_node("Pad", in, a, Impl::fast).outs[0], run1("Pad", in, a));
  }
}

// --------------------------------------------------------------- PyTorch F.pad subgraph

// torch.nn.functional.pad(x, [1, 2, 3, 4]) on a 4-D input exports this int64 chain that turns
// the PyTorch pad list (last axis first, begin/end pairs) into ONNX pads.
TEST(OpsShapeSubgraph, PytorchPadChainFoldsToOnnxPads) {
  Graph g;
  g.opset = 13;
  auto node = [&](const std::string& op, std::vector<int> in, const std::string& out,
                  std::map<std::string, Attribute> attrs = {}) {
    int o = g.add_value(out, DType::i64);
    g.nodes.push_back(Node{op + "_" + out, op, "", std::move(in), {o}, std::move(attrs)});
    return o;
  };
  int x = g.add_value("x");
  g.inputs = {x};
  int torch_pads = g.add_constant("torch_pads", i64v({1, 2, 3, 4}));
  int fill_len = g.add_constant("fill_len", i64v({4}));
  int zeros = node("ConstantOfShape", {fill_len}, "zeros", {{"value", i64({1}, {0})}});
  int all = node("Concat", {torch_pads, zeros}, "all", {{"axis", int64_t{0}}});
  int pairs = node("Reshape", {all, g.add_constant("pairs_shape", i64v({-1, 2}))}, "pairs");
  int rev = node("Slice",
                 {pairs, g.add_constant("st", i64v({-1})), g.add_constant("en", i64v({INT64_MIN})),
                  g.add_constant("ax", i64v({0})), g.add_constant("sp", i64v({-1}))},
                 "rev");
  int tr = node("Transpose", {rev}, "tr", {{"perm", Ints{1, 0}}});
  int flat = node("Reshape", {tr, g.add_constant("flat_shape", i64v({-1}))}, "flat");
  int pads = node("Cast", {flat}, "pads", {{"to", int64_t{7}}});
  int y = node("Pad", {x, pads}, "y", {{"mode", std::string("constant")}});
  g.values[y].dtype = DType::f32;
  g.outputs = {y};
  g.sort();

  // Rows reversed: [[0,0],[0,0],[3,4],[1,2]]; transposed and flattened: begins then ends.
  const Ints want{0, 0, 3, 1, 0, 0, 4, 2};
  {
    Executor ex(g, Impl::reference);
    auto env = ex.environment();
    env[x] = iota_f32({1, 1, 2, 2});
    ex.run_range(env);
    EXPECT_EQ(env[pads].dtype(), DType::i64);
    EXPECT_EQ(ints(env[pads]), want);
    EXPECT_EQ(env[y].shape(), (Shape{1, 1, 9, 5}));
    // x[0,0] = [[0,1],[2,3]] lands at rows 3..4, columns 1..2.
    EXPECT_EQ(env[y].to_floats()[3 * 5 + 1], 0.f);
    EXPECT_EQ(env[y].to_floats()[4 * 5 + 2], 3.f);
    EXPECT_EQ(env[y].to_floats()[0], 0.f);
  }
  // Constant folding evaluates the whole chain with the reference kernels.
  EXPECT_EQ(fold_constants(g), 7);
  ASSERT_TRUE(g.is_constant(pads));
  EXPECT_EQ(ints(g.constant(pads)), want);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "Pad");
}
