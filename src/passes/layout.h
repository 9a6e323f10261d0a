// Channels-last execution of 4-D convolution chains (oneDNN's fast convolutions want NHWC; a
// channels-first Conv pays two reorders per call). Conv, pooling and BatchNormalization get the
// internal attribute mixq_layout = "NHWC" their kernels understand; Relu-like and elementwise
// binary ops, Slice (axes remapped), Pad (pads remapped) and Transpose (perm composed) run on
// NHWC data as they are; Transposes are inserted where NCHW values enter the chain and before
// any other reader. Graph outputs keep their names and NCHW layout.
#pragma once
#include <vector>

#include "ir/graph.h"
#include "passes/shape_info.h"

namespace mixq {

struct LayoutResult {
  int nodes = 0;       // nodes now running channels-last
  int transposes = 0;  // Transpose nodes added
  // Per value id: the value holds NHWC data (its static shape is permuted to match).
  std::vector<bool> channels_last;
};

// Values keep their ids and names (an intermediate value may now hold NHWC data); new values
// (transposed copies, remapped Slice axes and Pad pads) are appended. The graph is re-sorted.
LayoutResult to_channels_last(Graph& g, const ShapeInfo& shapes);

}  // namespace mixq
