#include "support/op_runner.h"

#include <cmath>

#include "base/error.h"

namespace mixq::test {

Graph one_node(const std::string& op, const std::vector<Tensor>& inputs,
               std::map<std::string, Attribute> attrs, int64_t opset) {
  Graph g;
  g.opset = opset;
  Node n;
  n.name = "n0";
  n.op_type = op;
  n.attrs = std::move(attrs);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) {
      n.inputs.push_back(-1);
      continue;
    }
    int v = g.add_value("in" + std::to_string(i), inputs[i].dtype());
    g.inputs.push_back(v);
    n.inputs.push_back(v);
  }
  int y = g.add_value("y");
  n.outputs = {y};
  g.outputs = {y};
  g.nodes.push_back(n);
  g.sort();
  return g;
}

Tensor run(const std::string& op, const std::vector<Tensor>& inputs, Impl impl,
           std::map<std::string, Attribute> attrs, int64_t opset, std::string* chosen) {
  Executor ex(one_node(op, inputs, std::move(attrs), opset), impl);
  if (chosen) *chosen = ex.impl_name(0);
  std::vector<Tensor> feeds;
  for (const Tensor& t : inputs)
    if (t.defined()) feeds.push_back(t);
  return ex.run(feeds)[0];
}

Tensor random_f32(const Shape& s, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  ASSERT_EQ(got.dtype(), want.dtype());
  ASSERT_EQ(shape_str(got.shape()), shape_str(want.shape()));
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double a = got.get_double(i), b = want.get_double(i);
    if (std::isnan(b)) {
      EXPECT_TRUE(std::isnan(a)) << "element " << i;
    } else if (std::isinf(b)) {
      EXPECT_EQ(a, b) << "element " << i;
    } else {
      EXPECT_NEAR(a, b, atol + rtol * std::fabs(b)) << "element " << i;
    }
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace mixq::test
