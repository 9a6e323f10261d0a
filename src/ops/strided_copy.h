// Strided copies shared by the shape ops whose output is a strided view of the input
// (shape_strided.cpp: Slice, Expand, Tile; shape_permute.cpp: Transpose, DepthToSpace,
// SpaceToDepth): one row-major walk with a stride per dimension, forward and backward.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "tensor/tensor.h"

namespace mixq::strided_impl {

// Copies are memory-bound: threads pay off only on big tensors, and on a loaded machine every
// parallel region risks waiting a scheduler slice for a descheduled thread.
inline constexpr int64_t kParallelElems = int64_t{1} << 20;

// dst[i] = src[offset + sum_d idx_d * strides[d]] where idx is the row-major index i of `shape`.
// Strides and offset are in elements of size es.
void strided_copy(void* dst, const void* src, const Shape& shape,
                  const std::vector<int64_t>& strides, int64_t offset, size_t es);

// gx = zeros of x's shape, then walk_add of g over it: the backward of a strided copy of x.
void strided_backward(const Tensor& g, const Tensor& x, const Shape& walk,
                      const std::vector<int64_t>& strides, int64_t offset, Tensor& gx,
                      const std::string& where);

// The gradient of output 0, checked present.
const Tensor& out_grad(const std::vector<const Tensor*>& gout, const Node& node);

}  // namespace mixq::strided_impl
