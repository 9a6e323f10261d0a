// Internal to the Conv kernels (conv_ref.cpp, the specification, and conv_dnnl.cpp, the oneDNN
// fast path): the attributes and per-shape geometry both read, and the checks and fused epilogue
// they must share so the two paths agree on every shape they accept.
//
// Internal attributes (set by graph passes, read here):
//   mixq_activation = "Relu"  apply relu to the output
//   mixq_sum = 1              inputs[3] (same shape as the output) is added before the activation
//   mixq_layout = "NHWC"      X, Y (and the sum input) are channels-last: [N, spatial..., C];
//                             W stays in ONNX layout
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "ir/internal_names.h"
#include "ops/common.h"
#include "ops/kernel.h"
#include "ops/window.h"

namespace mixq::conv_impl {

// Attributes shared by Conv and ConvTranspose, read once per node.
struct ConvAttrs : WindowAttrs {
  int64_t group = 1;
  std::vector<int64_t> output_padding, output_shape;
  bool relu = false;
  bool sum = false;
  bool nhwc = false;

  explicit ConvAttrs(const Node& node) : WindowAttrs(node) {
    group = node.get_int("group", 1);
    check(group >= 1, node.label(), "group must be positive");
    output_padding = node.get_ints("output_padding");
    output_shape = node.get_ints("output_shape");
    std::string act = node.get_string(names::kActivation, "");
    check(act.empty() || act == "Relu", node.label(), "unsupported fused activation '" + act + "'");
    relu = act == "Relu";
    sum = node.get_int(names::kSum, 0) != 0;
    std::string layout = node.get_string(names::kLayout, "NCHW");
    check(layout == "NCHW" || layout == "NHWC", node.label(), "unknown layout '" + layout + "'");
    nhwc = layout == "NHWC";
  }
  // Fused forms come from inference passes; training runs the unfused graph.
  bool fused() const { return relu || sum || nhwc; }
};

// Everything a kernel needs for one input shape; spatial vectors have rank sp.
struct ConvGeom {
  int64_t n = 0, c = 0, m = 0, group = 1;
  size_t sp = 0;
  bool nhwc = false;
  Shape in, k, out;
  std::vector<int64_t> stride, dil, pad_b, pad_e;

  Shape out_shape() const { return full_shape(m, out); }
  Shape in_shape() const { return full_shape(c, in); }
  Shape full_shape(int64_t channels, const Shape& spatial) const {
    Shape s{n};
    if (!nhwc) s.push_back(channels);
    s.insert(s.end(), spatial.begin(), spatial.end());
    if (nhwc) s.push_back(channels);
    return s;
  }
};

// Conv's geometry (pads and output extent from ops/window.h) and ConvTranspose's (its adjoint).
ConvGeom conv_geometry(const ConvAttrs& a, const Shape& x, const Shape& w, const Node& node);
ConvGeom conv_transpose_geometry(const ConvAttrs& a, const Shape& x, const Shape& w,
                                 const Node& node);
// Either geometry (ConvTranspose's when transpose), checked to have at most 3 spatial axes: the
// one every kernel starts from.
ConvGeom checked_geometry(const ConvAttrs& a, bool transpose, const Shape& x, const Shape& w,
                          const Node& node);

// The fused sum input must match the output.
void check_sum_input(const Tensor* extra, const Tensor& y, const Node& node);
void check_bias(const Tensor* b, const ConvGeom& g, DType dt, const Node& node);
// Checks shared by the backward passes: an unfused node and dY of the output's shape.
const Tensor& output_grad(const ConvAttrs& a, const std::vector<const Tensor*>& gout,
                          const ConvGeom& g, const Node& node);

// Adds the fused extra input and applies the fused activation in place.
template <class T>
void apply_fusion(const ConvAttrs& a, const Tensor* extra, Tensor& y, const Node& node) {
  T* p = y.data<T>();
  const int64_t n = y.numel();
  if (a.sum) {
    check_sum_input(extra, y, node);
    const T* e = extra->data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] += e[i];
  }
  if (a.relu)
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] > T(0) ? p[i] : T(0);
}

// The oneDNN kernel for f32 Conv, or nullptr when the node is not one it covers.
std::unique_ptr<Kernel> make_conv_dnnl(const Node& node, const Graph& graph);

}  // namespace mixq::conv_impl
