// Shape and data-movement ops. The ops here only change a tensor's shape and return a view that
// shares the input's storage (Reshape, Flatten, Squeeze, Unsqueeze, Identity) or read the shape
// itself (Shape, Size). The ops that move bytes live in shape_*.cpp, one family per file.
// Backward: the view ops pass the gradient through as a view; Shape and Size have none.
#include <algorithm>

#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {

// Defined in the other shape_*.cpp files.
void register_shape_convert_ops(Registry& r);
void register_shape_permute_ops(Registry& r);
void register_shape_strided_ops(Registry& r);
void register_shape_join_ops(Registry& r);
void register_shape_gather_ops(Registry& r);
void register_shape_pad_ops(Registry& r);

namespace {

// Backward of the ops that return a view: the output's gradient seen in the input's shape (a
// view too). The shape and axes inputs are integers and get no gradient.
class ViewKernel : public Kernel {
 public:
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    check(optional_input(in, 0) != nullptr, label, "missing input 0");
    check(!gout.empty() && gout[0], label, "no gradient for output 0");
    *gin[0] = gout[0]->reshaped(in[0]->shape());
  }
};

class Reshape final : public ViewKernel {
 public:
  Reshape(const Node& node, const Graph&)
      : node_(node), allowzero_(node.get_int("allowzero", 0) != 0) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const std::vector<int64_t> spec = required_input(in, 1, node_).to_ints();
    const std::string where = node_.label();
    Shape s(spec.size());
    int infer = -1;
    bool has_zero = false;
    int64_t known = 1;
    for (size_t i = 0; i < spec.size(); ++i) {
      int64_t v = spec[i];
      if (v == -1) {
        check(infer < 0, where, "shape has more than one -1");
        infer = static_cast<int>(i);
        continue;
      }
      if (v == 0 && !allowzero_) {
        check(i < x.rank(), where,
              "shape copies dimension " + std::to_string(i) + " of a rank-" +
                  std::to_string(x.rank()) + " input");
        v = x.dim(i);
      }
      check(v >= 0, where, "invalid dimension " + std::to_string(v) + " in shape");
      has_zero = has_zero || v == 0;
      s[i] = v;
      known *= v;
    }
    check(!(allowzero_ && has_zero && infer >= 0), where,
          "allowzero shape cannot hold both 0 and -1");
    if (infer >= 0) {
      check(known != 0 && x.numel() % known == 0, where,
            "cannot reshape " + shape_str(x.shape()) + " into " + shape_str(Shape(spec)));
      s[infer] = x.numel() / known;
    }
    check(shape_numel(s) == x.numel(), where,
          "cannot reshape " + shape_str(x.shape()) + " into " + shape_str(Shape(spec)));
    *out[0] = x.reshaped(std::move(s));
  }

 private:
  Node node_;
  bool allowzero_;
};

class Flatten final : public ViewKernel {
 public:
  Flatten(const Node& node, const Graph&) : node_(node), axis_(node.get_int("axis", 1)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const int64_t r = static_cast<int64_t>(x.rank());
    const int64_t a = axis_ < 0 ? axis_ + r : axis_;
    check(a >= 0 && a <= r, node_.label(),
          "axis " + std::to_string(axis_) + " out of range for rank " + std::to_string(r));
    int64_t rows = 1;
    for (int64_t d = 0; d < a; ++d) rows *= x.dim(d);
    const int64_t cols = rows == 0 ? 0 : x.numel() / rows;
    Shape s{rows, cols};
    if (rows == 0) {  // an empty tensor: compute the columns from the shape itself
      s[1] = 1;
      for (int64_t d = a; d < r; ++d) s[1] *= x.dim(d);
    }
    *out[0] = x.reshaped(s);
  }

 private:
  Node node_;
  int64_t axis_;
};

// Squeeze and Unsqueeze take axes as an attribute before opset 13 and as an input from 13.
std::vector<int64_t> axes_of(const Node& node, const std::vector<const Tensor*>& in) {
  if (optional_input(in, 1)) return in[1]->to_ints();
  return node.get_ints("axes");
}

class Squeeze final : public ViewKernel {
 public:
  Squeeze(const Node& node, const Graph&) : node_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const int64_t r = static_cast<int64_t>(x.rank());
    std::vector<int64_t> axes = axes_of(node_, in);
    std::vector<bool> drop(r, false);
    if (axes.empty()) {
      for (int64_t d = 0; d < r; ++d) drop[d] = x.dim(d) == 1;
    }
    for (int64_t a : axes) {
      const int64_t d = normalize_axis(a, r, node_);
      check(x.dim(d) == 1, node_.label(),
            "cannot squeeze axis " + std::to_string(a) + " of shape " + shape_str(x.shape()));
      drop[d] = true;
    }
    Shape s;
    for (int64_t d = 0; d < r; ++d)
      if (!drop[d]) s.push_back(x.dim(d));
    *out[0] = x.reshaped(std::move(s));
  }

 private:
  Node node_;
};

class Unsqueeze final : public ViewKernel {
 public:
  Unsqueeze(const Node& node, const Graph&) : node_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    std::vector<int64_t> axes = axes_of(node_, in);
    check(!axes.empty(), node_.label(), "no axes to unsqueeze");
    const int64_t r = static_cast<int64_t>(x.rank() + axes.size());
    std::vector<bool> inserted(r, false);
    for (int64_t a : axes) {
      const int64_t d = normalize_axis(a, r, node_);
      check(!inserted[d], node_.label(), "axis " + std::to_string(a) + " given twice");
      inserted[d] = true;
    }
    Shape s(r);
    size_t next = 0;
    for (int64_t d = 0; d < r; ++d) s[d] = inserted[d] ? 1 : x.dim(next++);
    *out[0] = x.reshaped(std::move(s));
  }

 private:
  Node node_;
};

class Identity final : public ViewKernel {
 public:
  Identity(const Node& node, const Graph&) : node_(node) {}
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    *out[0] = required_input(in, 0, node_);  // shares storage; nothing writes into inputs
  }

 private:
  Node node_;
};

class ShapeOp final : public Kernel {
 public:
  ShapeOp(const Node& node, const Graph&)
      : node_(node), start_(node.get_int("start", 0)), end_(node.get_int("end", INT64_MAX)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Shape& s = required_input(in, 0, node_).shape();
    const int64_t r = static_cast<int64_t>(s.size());
    // Opset 15: negative bounds count from the back, then both are clamped to [0, rank].
    auto clamp = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
    const int64_t b = clamp(start_), e = std::max(b, clamp(end_));
    ensure(*out[0], DType::i64, {e - b});
    int64_t* p = out[0]->data<int64_t>();
    for (int64_t d = b; d < e; ++d) p[d - b] = s[d];
  }

 private:
  Node node_;
  int64_t start_, end_;
};

class Size final : public Kernel {
 public:
  Size(const Node& node, const Graph&) : node_(node) {}
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    ensure(*out[0], DType::i64, {});
    *out[0]->data<int64_t>() = required_input(in, 0, node_).numel();
  }

 private:
  Node node_;
};

}  // namespace

void register_shape_ops(Registry& r) {
  r.add("Reshape", "ref", make_kernel<Reshape>, true);
  r.add("Flatten", "ref", make_kernel<Flatten>, true);
  r.add("Squeeze", "ref", make_kernel<Squeeze>, true);
  r.add("Unsqueeze", "ref", make_kernel<Unsqueeze>, true);
  r.add("Identity", "ref", make_kernel<Identity>, true);
  r.add("Shape", "ref", make_kernel<ShapeOp>, true);
  r.add("Size", "ref", make_kernel<Size>, true);
  register_shape_convert_ops(r);
  register_shape_permute_ops(r);
  register_shape_strided_ops(r);
  register_shape_join_ops(r);
  register_shape_gather_ops(r);
  register_shape_pad_ops(r);
}

}  // namespace mixq
