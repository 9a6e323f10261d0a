// Small helpers shared by the op families.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "ir/graph.h"
#include "ops/kernel.h"
#include "tensor/tensor.h"

namespace mixq {

// Maps a possibly negative axis into [0, rank); throws naming the node when out of range.
int64_t normalize_axis(int64_t axis, int64_t rank, const Node& node);
// Wraps a possibly negative index into [0, dim); Error naming the node when out of range.
int64_t wrap_index(int64_t v, int64_t dim, const Node& node);
// Numpy-style broadcast of two shapes; throws naming the node when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& node);
// Strides of `s` seen as broadcast to rank `rank` shape `out` (0 where broadcast).
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out);
// Input i, or nullptr when the node omits it (absent or empty-named); also reads the gradients
// of outputs in a backward pass, where a missing one means nothing flowed back.
inline const Tensor* optional_input(const std::vector<const Tensor*>& in, size_t i) {
  return i < in.size() ? in[i] : nullptr;
}
// The gradient slot of input i, or nullptr when that gradient is not wanted.
inline Tensor* grad_slot(const std::vector<Tensor*>& gin, size_t i) {
  return i < gin.size() ? gin[i] : nullptr;
}
// Throws unless input i is present.
const Tensor& required_input(const std::vector<const Tensor*>& in, size_t i, const Node& node);
// Dtype of graph value feeding input i of a node (f32 when the input is omitted).
DType input_dtype(const Node& node, const Graph& graph, size_t i);

// Maker of an f32 fast path K(node, graph): nullptr unless input 0 is f32.
template <class K>
std::unique_ptr<Kernel> make_f32_kernel(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<K>(node, graph);
}

}  // namespace mixq
