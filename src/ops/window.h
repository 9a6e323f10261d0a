// Sliding-window geometry shared by Conv, ConvTranspose, the pools and mixq.QConv: the window
// attributes (kernel_shape, strides, dilations, pads, auto_pad) and how one spatial axis turns
// an input extent into pads and an output extent, as the ONNX spec defines it. One copy, so the
// float, integer and pooling kernels agree on every edge case (SAME padding, ceil_mode).
#pragma once
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace mixq {

enum class AutoPad { notset, same_upper, same_lower, valid };

struct WindowAttrs {
  AutoPad auto_pad = AutoPad::notset;
  // As the node gives them (empty when absent); per_axis() fills in the defaults.
  std::vector<int64_t> kernel, strides, dilations, pads;

  // Reads the attributes and checks their values (positive kernel, strides and dilations,
  // non-negative pads); their counts depend on the input's rank and are checked per shape.
  explicit WindowAttrs(const Node& node);
  bool same() const { return auto_pad == AutoPad::same_upper || auto_pad == AutoPad::same_lower; }
  // Checks that pads, when given, has 2 * sp values (begins, then ends).
  void check_pads(size_t sp, const Node& node) const;
};

// The input span one window covers: a kernel of k taps dil apart.
inline int64_t window_extent(int64_t k, int64_t dil) {
  return (k - 1) * dil + 1;
}

// A per-axis attribute of length sp, or sp copies of fallback when the node omits it.
std::vector<int64_t> per_axis(const std::vector<int64_t>& v, size_t sp, int64_t fallback,
                              const char* name, const Node& node);

// One spatial axis of a window sliding over the input.
struct AxisWindow {
  int64_t pad_b = 0, pad_e = 0;  // padding before and after
  int64_t out = 0;               // number of window positions
  bool fits = true;              // false: the kernel is larger than the padded input
};

// Axis i of sp for Conv and the pools. SAME_* pads so that out = ceil(in / stride), the odd pad
// at the end for SAME_UPPER; otherwise the node's pads (none for VALID). ceil_mode (pooling)
// rounds the count up but drops a window that would start in the right padding.
AxisWindow forward_window(const WindowAttrs& a, size_t i, size_t sp, int64_t in, int64_t k,
                          int64_t stride, int64_t dil, bool ceil_mode = false);

}  // namespace mixq
