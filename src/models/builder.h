// Builds training-form graphs layer by layer with PyTorch's default initialisations drawn from
// a seeded generator: Kaiming-normal convolutions (fan-in, gain sqrt 2), uniform
// +-1/sqrt(fan_in) fully connected layers, BatchNormalization scale 1, bias 0, running mean 0,
// running variance 1. Every BatchNormalization writes its running statistics (outputs 1 and 2),
// so the graph is ready for training; train/params.h turns it into the inference form.
#pragma once
#include <string>

#include "base/rng.h"
#include "ir/graph.h"

namespace mixq {

class GraphBuilder {
 public:
  // Input "input" of shape [N, channels, height, width].
  GraphBuilder(int64_t channels, int64_t height, int64_t width, uint64_t seed);

  int input() const { return input_; }
  const Shape& shape(int v) const { return g_.values[v].shape; }

  int conv(int x, int64_t out_channels, int64_t kernel, int64_t stride, int64_t pad, bool bias,
           const std::string& name);
  int batchnorm(int x, const std::string& name);
  int relu(int x, const std::string& name);
  int add(int a, int b, const std::string& name);
  int maxpool(int x, int64_t kernel, int64_t stride, const std::string& name);
  int global_avgpool(int x, const std::string& name);
  int flatten(int x, const std::string& name);
  int gemm(int x, int64_t out_features, const std::string& name);
  // conv (no bias) -> batchnorm -> relu (relu optional).
  int conv_bn(int x, int64_t out_channels, int64_t kernel, int64_t stride, int64_t pad, bool relu,
              const std::string& name);

  // Marks `output` as the graph output "logits" and returns the graph (sorted).
  Graph finish(int output);

 private:
  int value(const std::string& name, Shape shape);
  int node(const std::string& op, const std::string& name, std::vector<int> inputs, Shape out);
  Tensor normal(Shape shape, double sd);
  Tensor uniform(Shape shape, double bound);

  Graph g_;
  Rng rng_;
  int input_ = -1;
};

}  // namespace mixq
