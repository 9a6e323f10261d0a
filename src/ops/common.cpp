#include "ops/common.h"

namespace mixq {

int64_t wrap_index(int64_t v, int64_t dim, const Node& node) {
  const int64_t w = v < 0 ? v + dim : v;
  check(w >= 0 && w < dim, node.label(),
        "index " + std::to_string(v) + " out of range for a dimension of " + std::to_string(dim));
  return w;
}

int64_t normalize_axis(int64_t axis, int64_t rank, const Node& node) {
  int64_t a = axis < 0 ? axis + rank : axis;
  check(a >= 0 && a < std::max<int64_t>(rank, 1), node.label(),
        "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return a;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const Node& node) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    check(da == db || da == 1 || db == 1, node.label(),
          "cannot broadcast " + shape_str(a) + " with " + shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  auto own = shape_strides(s);
  size_t off = out.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i) st[off + i] = s[i] == 1 ? 0 : own[i];
  return st;
}

const Tensor& required_input(const std::vector<const Tensor*>& in, size_t i, const Node& node) {
  check(i < in.size() && in[i] != nullptr, node.label(),
        "missing required input " + std::to_string(i));
  return *in[i];
}

DType input_dtype(const Node& node, const Graph& graph, size_t i) {
  return node.has_input(i) ? graph.values[node.inputs[i]].dtype : DType::f32;
}

}  // namespace mixq
