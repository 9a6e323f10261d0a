#include "models/builder.h"

#include <cmath>

#include "base/error.h"

namespace mixq {

GraphBuilder::GraphBuilder(int64_t channels, int64_t height, int64_t width, uint64_t seed)
    : rng_(mix_seed({seed, 0x696e6974ull})) {
  check(channels > 0 && height > 0 && width > 0, "model", "input dimensions must be positive");
  g_.opset = 13;
  g_.source = "built-in model";
  input_ = value("input", {-1, channels, height, width});
  g_.inputs.push_back(input_);
}

int GraphBuilder::value(const std::string& name, Shape shape) {
  check(g_.find_value(name) < 0, "model", "duplicate value name '" + name + "'");
  int v = g_.add_value(name);
  g_.values[v].shape = std::move(shape);
  g_.values[v].shape_known = true;
  return v;
}

int GraphBuilder::node(const std::string& op, const std::string& name, std::vector<int> inputs,
                       Shape out) {
  Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(inputs);
  const int y = value(name + "/out", std::move(out));
  n.outputs = {y};
  g_.nodes.push_back(std::move(n));
  return y;
}

Tensor GraphBuilder::normal(Shape shape, double sd) {
  Tensor t(DType::f32, std::move(shape));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng_.normal() * sd);
  return t;
}

Tensor GraphBuilder::uniform(Shape shape, double bound) {
  Tensor t(DType::f32, std::move(shape));
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    p[i] = static_cast<float>((2 * rng_.uniform() - 1) * bound);
  return t;
}

int GraphBuilder::conv(int x, int64_t out_channels, int64_t kernel, int64_t stride, int64_t pad,
                       bool bias, const std::string& name) {
  const Shape& s = shape(x);
  check(s.size() == 4, name, "conv needs an NCHW input");
  const int64_t cin = s[1];
  const int64_t oh = (s[2] + 2 * pad - kernel) / stride + 1;
  const int64_t ow = (s[3] + 2 * pad - kernel) / stride + 1;
  check(oh > 0 && ow > 0, name, "input " + shape_str(s) + " is too small for this layer");
  const double fan_in = static_cast<double>(cin * kernel * kernel);
  std::vector<int> in = {
      x, g_.add_constant(name + ".weight",
                         normal({out_channels, cin, kernel, kernel}, std::sqrt(2.0 / fan_in)))};
  if (bias)
    in.push_back(g_.add_constant(name + ".bias", uniform({out_channels}, 1.0 / std::sqrt(fan_in))));
  int y = node("Conv", name, std::move(in), {-1, out_channels, oh, ow});
  Node& n = g_.nodes.back();
  n.attrs["kernel_shape"] = std::vector<int64_t>{kernel, kernel};
  n.attrs["strides"] = std::vector<int64_t>{stride, stride};
  n.attrs["pads"] = std::vector<int64_t>{pad, pad, pad, pad};
  return y;
}

int GraphBuilder::batchnorm(int x, const std::string& name) {
  const int64_t c = shape(x).at(1);
  auto filled = [&](float v) {
    Tensor t(DType::f32, {c});
    for (int64_t i = 0; i < c; ++i) t.data<float>()[i] = v;
    return t;
  };
  std::vector<int> in = {x, g_.add_constant(name + ".scale", filled(1)),
                         g_.add_constant(name + ".bias", filled(0)),
                         g_.add_constant(name + ".running_mean", filled(0)),
                         g_.add_constant(name + ".running_var", filled(1))};
  int y = node("BatchNormalization", name, std::move(in), shape(x));
  const int mean = value(name + "/running_mean_out", {c});
  const int var = value(name + "/running_var_out", {c});
  Node& n = g_.nodes.back();
  n.outputs = {y, mean, var};
  n.attrs["epsilon"] = 1e-5f;
  n.attrs["momentum"] = 0.9f;
  return y;
}

int GraphBuilder::relu(int x, const std::string& name) {
  return node("Relu", name, {x}, shape(x));
}

int GraphBuilder::add(int a, int b, const std::string& name) {
  check(shape(a) == shape(b), name, "residual shapes differ");
  return node("Add", name, {a, b}, shape(a));
}

int GraphBuilder::maxpool(int x, int64_t kernel, int64_t stride, const std::string& name) {
  Shape s = shape(x);
  s[2] = (s[2] - kernel) / stride + 1;
  s[3] = (s[3] - kernel) / stride + 1;
  check(s[2] > 0 && s[3] > 0, name, "input is too small for this layer");
  int y = node("MaxPool", name, {x}, s);
  Node& n = g_.nodes.back();
  n.attrs["kernel_shape"] = std::vector<int64_t>{kernel, kernel};
  n.attrs["strides"] = std::vector<int64_t>{stride, stride};
  return y;
}

int GraphBuilder::global_avgpool(int x, const std::string& name) {
  Shape s = shape(x);
  s[2] = s[3] = 1;
  return node("GlobalAveragePool", name, {x}, s);
}

int GraphBuilder::flatten(int x, const std::string& name) {
  const Shape& s = shape(x);
  int64_t features = 1;
  for (size_t i = 1; i < s.size(); ++i) features *= s[i];
  int y = node("Flatten", name, {x}, {-1, features});
  g_.nodes.back().attrs["axis"] = int64_t{1};
  return y;
}

int GraphBuilder::gemm(int x, int64_t out_features, const std::string& name) {
  const Shape& s = shape(x);
  check(s.size() == 2, name, "fully connected layer needs a flat input");
  const double bound = 1.0 / std::sqrt(static_cast<double>(s[1]));
  std::vector<int> in = {x, g_.add_constant(name + ".weight", uniform({out_features, s[1]}, bound)),
                         g_.add_constant(name + ".bias", uniform({out_features}, bound))};
  int y = node("Gemm", name, std::move(in), {-1, out_features});
  g_.nodes.back().attrs["transB"] = int64_t{1};
  return y;
}

int GraphBuilder::conv_bn(int x, int64_t out_channels, int64_t kernel, int64_t stride, int64_t pad,
                          bool relu_after, const std::string& name) {
  int y = batchnorm(conv(x, out_channels, kernel, stride, pad, false, name), name + "_bn");
  return relu_after ? relu(y, name + "_relu") : y;
}

Graph GraphBuilder::finish(int output) {
  g_.values[output].name = "logits";
  g_.outputs = {output};
  g_.sort();
  return g_;
}

}  // namespace mixq
