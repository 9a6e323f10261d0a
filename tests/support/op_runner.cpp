#include "support/op_runner.h"

#include <cmath>

#include "base/error.h"

namespace mixq::test {

namespace {

// prefix + i, appended rather than concatenated: GCC 12's -Wrestrict misfires on
// "literal" + std::to_string(i) once inlined.
std::string indexed(const char* prefix, size_t i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

}  // namespace

Graph one_node(const std::string& op, const std::vector<Arg>& args,
               std::map<std::string, Attribute> attrs, int64_t opset, size_t outputs) {
  Graph g;
  g.opset = opset;
  Node n;
  n.name = "n0";
  n.op_type = op;
  n.attrs = std::move(attrs);
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].t.defined()) {
      n.inputs.push_back(-1);
    } else if (args[i].constant) {
      n.inputs.push_back(g.add_constant(indexed("c", i), args[i].t));
    } else {
      int v = g.add_value(indexed("in", i), args[i].t.dtype());
      g.inputs.push_back(v);
      n.inputs.push_back(v);
    }
  }
  for (size_t o = 0; o < outputs; ++o) {
    int y = g.add_value(indexed("y", o));
    n.outputs.push_back(y);
    g.outputs.push_back(y);
  }
  g.nodes.push_back(n);
  g.sort();
  return g;
}

std::vector<Tensor> feeds_of(const std::vector<Arg>& args) {
  std::vector<Tensor> feeds;
  for (const Arg& a : args)
    if (a.t.defined() && !a.constant) feeds.push_back(a.t);
  return feeds;
}

Tensor run(const std::string& op, const std::vector<Tensor>& inputs, Impl impl,
           std::map<std::string, Attribute> attrs, int64_t opset, std::string* chosen) {
  const std::vector<Arg> args(inputs.begin(), inputs.end());
  Executor ex(one_node(op, args, std::move(attrs), opset), impl);
  if (chosen) *chosen = ex.impl_name(0);
  return ex.run(feeds_of(args))[0];
}

Tensor random_f32(const Shape& s, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

Tensor normal_f32(const Shape& s, uint32_t seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, sd);
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = g(rng);
  return t;
}

void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol) {
  ASSERT_EQ(got.dtype(), want.dtype());
  ASSERT_EQ(shape_str(got.shape()), shape_str(want.shape()));
  int bad = 0;
  for (int64_t i = 0; i < got.numel() && bad < 5; ++i) {
    const double a = got.get_double(i), b = want.get_double(i);
    const bool ok = std::isnan(b)   ? std::isnan(a)
                    : std::isinf(b) ? a == b
                                    : std::fabs(a - b) <= atol + rtol * std::fabs(b);
    if (!ok) {
      ++bad;
      ADD_FAILURE() << "element " << i << ": got " << a << ", want " << b;
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
