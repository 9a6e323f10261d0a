// Single-node graphs for op tests: build one node over graph inputs, run it with the reference
// or fast implementations, and compare tensors element by element.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/executor.h"

namespace mixq::test {

// One input of a single-node graph: a graph input, an initializer, or (undefined) omitted.
struct Arg {
  Arg(Tensor t = {}, bool constant = false) : t(std::move(t)), constant(constant) {}
  Tensor t;
  bool constant;
};

// A graph of one node "n0" over args, with outputs "y0", "y1", ... as graph outputs.
Graph one_node(const std::string& op, const std::vector<Arg>& args,
               std::map<std::string, Attribute> attrs = {}, int64_t opset = 13, size_t outputs = 1);

// The tensors to feed one_node(args): its graph inputs, in order.
std::vector<Tensor> feeds_of(const std::vector<Arg>& args);

// Runs one_node(...) and returns its output; `chosen` receives the implementation's name.
Tensor run(const std::string& op, const std::vector<Tensor>& inputs, Impl impl = Impl::reference,
           std::map<std::string, Attribute> attrs = {}, int64_t opset = 13,
           std::string* chosen = nullptr);

inline Tensor f32(Shape s, std::vector<float> v) {
  return Tensor::from<float>(std::move(s), v);
}

// Uniform values in [lo, hi).
Tensor random_f32(const Shape& s, std::mt19937& rng, float lo, float hi);
// Normal values (mean 0, standard deviation sd) from mt19937(seed).
Tensor normal_f32(const Shape& s, uint32_t seed, float sd = 1);

// Element-by-element comparison in double; NaNs must match NaNs and infinities be equal.
// Reports the first five differing elements.
void expect_close(const Tensor& got, const Tensor& want, double rtol = 1e-6, double atol = 1e-6);

// The message of the Error f throws, or "no error".
std::string error_of(const std::function<void()>& f);

}  // namespace mixq::test
