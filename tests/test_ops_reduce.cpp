// Reductions and ArgMax/ArgMin: hand-computed results, axes as attribute or input, keepdims,
// noop_with_empty_axes, exact int64, numerically stable LogSumExp, errors naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "base/error.h"
#include "ops/kernel.h"
#include "support/expect_error.h"

using namespace mixq;
using mixq::test::expect_error;

namespace {

// Builds node "n0" over the inputs (undefined tensor = omitted input) and runs it once.
Tensor reduce(const std::string& op, const std::vector<Tensor>& inputs,
              std::map<std::string, Attribute> attrs = {}, int64_t opset = 13) {
  Graph g;
  g.opset = opset;
  Node n;
  n.name = "n0";
  n.op_type = op;
  n.attrs = std::move(attrs);
  for (size_t i = 0; i < inputs.size(); ++i)
    n.inputs.push_back(
        inputs[i].defined() ? g.add_value("in" + std::to_string(i), inputs[i].dtype()) : -1);
  n.outputs = {g.add_value("y")};
  auto k = Registry::get().make(n, g, Impl::reference);
  std::vector<const Tensor*> in;
  for (const Tensor& t : inputs) in.push_back(t.defined() ? &t : nullptr);
  Tensor y;
  k->forward(in, {&y});
  return y;
}

using Ints = std::vector<int64_t>;
using Floats = std::vector<float>;
using Attrs = std::map<std::string, Attribute>;

// x = [[[0,1],[2,3],[4,5]], [[6,7],[8,9],[10,11]]], shape [2,3,2].
Tensor x232() {
  Tensor t(DType::f32, {2, 3, 2});
  for (int i = 0; i < 12; ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}
Tensor i64v(Ints v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<int64_t>({n}, v);
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << i;
}

template <class F>
void expect_node_error(F fn, const std::string& fragment) {
  expect_error(fn, {"node 'n0'", fragment});
}

}  // namespace

TEST(OpsReduce, SumAxesAttributeAndInput) {
  Tensor x = x232();
  Tensor a = reduce("ReduceSum", {x}, {{"axes", Ints{1}}}, 11);
  EXPECT_EQ(a.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(a.to_floats(), (Floats{6, 9, 24, 27}));
  Tensor b = reduce("ReduceSum", {x, i64v({0, 2})}, {{"keepdims", int64_t{0}}});
  EXPECT_EQ(b.shape(), (Shape{3}));
  EXPECT_EQ(b.to_floats(), (Floats{14, 22, 30}));  // (0+1+6+7), (2+3+8+9), (4+5+10+11)
  Tensor all = reduce("ReduceSum", {x});
  EXPECT_EQ(all.shape(), (Shape{1, 1, 1}));
  EXPECT_EQ(all.to_floats(), (Floats{66}));
  Tensor noop = reduce("ReduceSum", {x, i64v({})}, {{"noop_with_empty_axes", int64_t{1}}});
  EXPECT_EQ(noop.shape(), x.shape());
  EXPECT_EQ(noop.to_floats(), x.to_floats());
}

TEST(OpsReduce, EachKindByHand) {
  Tensor x = Tensor::from<float>({2, 2}, {1, -2, 3, 4});
  Attrs row{{"axes", Ints{1}}, {"keepdims", int64_t{0}}};
  expect_near(reduce("ReduceMean", {x}, row).to_floats(), {-0.5f, 3.5f});
  expect_near(reduce("ReduceMax", {x}, row).to_floats(), {1, 4});
  expect_near(reduce("ReduceMin", {x}, row).to_floats(), {-2, 3});
  expect_near(reduce("ReduceProd", {x}, row).to_floats(), {-2, 12});
  expect_near(reduce("ReduceL1", {x}, row).to_floats(), {3, 7});
  expect_near(reduce("ReduceL2", {x}, row).to_floats(), {std::sqrt(5.f), 5});
  expect_near(reduce("ReduceSumSquare", {x}, row).to_floats(), {5, 25});
  expect_near(reduce("ReduceLogSum", {Tensor::from<float>({2}, {1, 2})}).to_floats(),
              {std::log(3.f)});
  expect_near(reduce("ReduceLogSumExp", {x}, row).to_floats(),
              {std::log(std::exp(1.f) + std::exp(-2.f)), std::log(std::exp(3.f) + std::exp(4.f))});
  // Column reductions over the non-innermost axis.
  Attrs col{{"axes", Ints{-2}}};
  Tensor m = reduce("ReduceMax", {x}, col);
  EXPECT_EQ(m.shape(), (Shape{1, 2}));
  expect_near(m.to_floats(), {3, 4});
}

TEST(OpsReduce, LogSumExpIsStableForLargeValues) {
  Tensor x = Tensor::from<float>({3}, {1000, 1000, -INFINITY});
  expect_near(reduce("ReduceLogSumExp", {x}).to_floats(), {1000 + std::log(2.f)});
}

TEST(OpsReduce, Int64IsExact) {
  const int64_t big = (int64_t{1} << 60) + 1;
  Tensor x = Tensor::from<int64_t>({2, 2}, {big, 1, -big, 3});
  Tensor s = reduce("ReduceSum", {x, i64v({0})});
  EXPECT_EQ(s.dtype(), DType::i64);
  EXPECT_EQ(s.to_ints(), (Ints{0, 4}));
  EXPECT_EQ(reduce("ReduceMax", {x}, {{"axes", Ints{1}}}).to_ints(), (Ints{big, 3}));
  EXPECT_EQ(reduce("ReduceMin", {x}, {{"axes", Ints{0}}}).to_ints(), (Ints{-big, 1}));
  EXPECT_EQ(reduce("ReduceProd", {Tensor::from<int64_t>({3}, {3, -5, 7})}).to_ints(), (Ints{-105}));
  EXPECT_EQ(reduce("ReduceMean", {Tensor::from<int32_t>({2}, {3, 4})}).to_ints(), (Ints{3}));
}

TEST(OpsReduce, EmptyAxisGivesIdentityElement) {
  Tensor x(DType::f32, {2, 0});
  EXPECT_EQ(reduce("ReduceSum", {x, i64v({1})}).to_floats(), (Floats{0, 0}));
  EXPECT_EQ(reduce("ReduceProd", {x}, {{"axes", Ints{1}}}).to_floats(), (Floats{1, 1}));
  EXPECT_EQ(reduce("ReduceSum", {x, i64v({0})}).numel(), 0);
}

TEST(OpsReduce, BadAxesThrowNamingNode) {
  Tensor x = x232();
  expect_node_error([&] { reduce("ReduceMean", {x}, {{"axes", Ints{3}}}); }, "out of range");
  expect_node_error([&] { reduce("ReduceMean", {x}, {{"axes", Ints{1, -2}}}); }, "twice");
  expect_node_error([&] { reduce("ArgMax", {x}, {{"axis", int64_t{-4}}}); }, "out of range");
  expect_node_error([&] { reduce("ReduceSum", {Tensor::from<bool>({1}, {true})}); }, "bool");
}

TEST(OpsReduceArg, KeepdimsAndLastIndex) {
  Tensor x = Tensor::from<float>({2, 3}, {1, 5, 5, 7, 2, 7});
  Tensor a = reduce("ArgMax", {x}, {{"axis", int64_t{1}}});
  EXPECT_EQ(a.dtype(), DType::i64);
  EXPECT_EQ(a.shape(), (Shape{2, 1}));
  EXPECT_EQ(a.to_ints(), (Ints{1, 0}));
  Tensor l =
      reduce("ArgMax", {x},
             {{"axis", int64_t{-1}}, {"keepdims", int64_t{0}}, {"select_last_index", int64_t{1}}});
  EXPECT_EQ(l.shape(), (Shape{2}));
  EXPECT_EQ(l.to_ints(), (Ints{2, 2}));
  Tensor m = reduce("ArgMin", {x});  // axis 0
  EXPECT_EQ(m.shape(), (Shape{1, 3}));
  EXPECT_EQ(m.to_ints(), (Ints{0, 1, 0}));
  Tensor ml = reduce("ArgMin", {Tensor::from<int64_t>({4}, {3, 1, 2, 1})},
                     {{"select_last_index", int64_t{1}}});
  EXPECT_EQ(ml.to_ints(), (Ints{3}));
}
