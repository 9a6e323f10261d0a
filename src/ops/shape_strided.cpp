// Ops whose output is a strided view of the input, materialized: Slice, Expand, Tile (the
// permutations are in shape_permute.cpp). The reference kernels walk the output in row-major
// order with one stride per dimension (any dtype, by element size); Slice also has an f32 fast
// path that copies contiguous runs in parallel. Backward (float types): by walking the same
// strides and accumulating.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"
#include "ops/strided_copy.h"

namespace mixq {
namespace {

// Calls f(i, offset + sum_d idx_d * strides[d]) for each row-major index i of `shape`, idx
// being i's multi-index, in order.
template <class F>
void walk(const Shape& shape, const std::vector<int64_t>& strides, int64_t offset, F&& f) {
  const int64_t n = shape_numel(shape);
  const int r = static_cast<int>(shape.size());
  std::vector<int64_t> idx(r, 0);
  int64_t off = offset;
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (int k = r - 1; k >= 0; --k) {
      if (++idx[k] < shape[k]) {
        off += strides[k];
        break;
      }
      off -= strides[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
}

template <class T>
void walk_copy(T* dst, const T* src, const Shape& shape, const std::vector<int64_t>& strides,
               int64_t offset) {
  walk(shape, strides, offset, [&](int64_t i, int64_t off) { dst[i] = src[off]; });
}

// The backward of walk_copy: dst[offset + sum_d idx_d * strides[d]] += src[i]. Several i may
// reach one dst element (broadcast or tiled strides), so it accumulates.
template <class T>
void walk_add(T* dst, const T* src, const Shape& shape, const std::vector<int64_t>& strides,
              int64_t offset) {
  walk(shape, strides, offset, [&](int64_t i, int64_t off) { dst[off] += src[i]; });
}

}  // namespace

namespace strided_impl {

void strided_backward(const Tensor& g, const Tensor& x, const Shape& walk,
                      const std::vector<int64_t>& strides, int64_t offset, Tensor& gx,
                      const std::string& where) {
  visit_dtype<kFloatTypes>(x.dtype(), where, [&](auto tag) {
    using T = typename decltype(tag)::type;
    zeros<T>(gx, x.shape());
    check(g.dtype() == x.dtype() && g.numel() == shape_numel(walk), where,
          "gradient has the wrong type or shape");
    if (g.numel()) walk_add(gx.data<T>(), g.data<T>(), walk, strides, offset);
  });
}

// The gradient of output 0, checked present.
const Tensor& out_grad(const std::vector<const Tensor*>& gout, const Node& node) {
  check(!gout.empty() && gout[0], node.label(), "no gradient for output 0");
  return *gout[0];
}

// dst[i] = src[offset + sum_d idx_d * strides[d]] where idx is the row-major index i of `shape`.
// Strides and offset are in elements of size es.
void strided_copy(void* dst, const void* src, const Shape& shape,
                  const std::vector<int64_t>& strides, int64_t offset, size_t es) {
  switch (es) {
    case 1:
      walk_copy(static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), shape, strides,
                offset);
      break;
    case 2:
      walk_copy(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), shape, strides,
                offset);
      break;
    case 4:
      walk_copy(static_cast<uint32_t*>(dst), static_cast<const uint32_t*>(src), shape, strides,
                offset);
      break;
    default:
      walk_copy(static_cast<uint64_t*>(dst), static_cast<const uint64_t*>(src), shape, strides,
                offset);
      break;
  }
}

}  // namespace strided_impl

namespace {
using namespace strided_impl;

// ---------------------------------------------------------------------------------------------
// Slice

struct SliceWindow {
  Shape out;
  std::vector<int64_t> start, step;
};

// The ONNX Slice rules (opset 13 text): negative starts/ends count from the back, then starts
// and ends are clamped to [0, dim] for positive steps and to [0, dim-1] / [-1, dim-1] for
// negative steps.
SliceWindow slice_window(const Shape& shape, const std::vector<int64_t>& starts,
                         const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                         std::vector<int64_t> steps, const Node& node) {
  const int64_t r = static_cast<int64_t>(shape.size());
  const size_t k = starts.size();
  check(ends.size() == k, node.label(), "starts and ends differ in length");
  if (axes.empty())
    for (size_t i = 0; i < k; ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(k, 1);
  check(axes.size() == k && steps.size() == k, node.label(),
        "starts, ends, axes and steps differ in length");
  SliceWindow w{shape, std::vector<int64_t>(r, 0), std::vector<int64_t>(r, 1)};
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < k; ++i) {
    const int64_t a = normalize_axis(axes[i], r, node);
    check(!seen[a], node.label(), "axis " + std::to_string(axes[i]) + " is sliced twice");
    seen[a] = true;
    const int64_t dim = shape[a], step = steps[i];
    check(step != 0, node.label(), "step is zero");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    int64_t len = 0;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      if (e > s) len = (e - s - 1) / step + 1;
    } else if (dim > 0) {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      if (s > e) len = (s - e - 1) / -step + 1;
    }
    w.out[a] = len;
    w.start[a] = len ? s : 0;
    w.step[a] = step;
  }
  return w;
}

class Slice : public Kernel {
 public:
  Slice(const Node& node, const Graph&) : node_(node), attr_form_(node.has("starts")) {
    if (attr_form_) {  // before opset 10
      check(node.has("ends"), node.label(), "missing attribute 'ends'");
      starts_ = node.get_ints("starts");
      ends_ = node.get_ints("ends");
      axes_ = node.get_ints("axes");
    }
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const SliceWindow w = window(x, in);
    ensure(*out[0], x.dtype(), w.out);
    if (out[0]->numel()) copy(x, w, *out[0]);
  }

  // The gradient scattered into zeros at the positions the slice read (distinct: step != 0).
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    const SliceWindow w = window(x, in);
    std::vector<int64_t> strides;
    const int64_t offset = walk_of(x, w, &strides);
    strided_backward(out_grad(gout, node_), x, w.out, strides, offset, *gin[0], node_.label());
  }

 protected:
  SliceWindow window(const Tensor& x, const std::vector<const Tensor*>& in) const {
    if (attr_form_) return slice_window(x.shape(), starts_, ends_, axes_, {}, node_);
    auto opt = [&](size_t i) {
      return i < in.size() && in[i] ? in[i]->to_ints() : std::vector<int64_t>{};
    };
    return slice_window(x.shape(), required_input(in, 1, node_).to_ints(),
                        required_input(in, 2, node_).to_ints(), opt(3), opt(4), node_);
  }

  // The input strides of the window's walk; returns the offset of its first element.
  static int64_t walk_of(const Tensor& x, const SliceWindow& w, std::vector<int64_t>* strides) {
    const auto xs = shape_strides(x.shape());
    strides->assign(x.rank(), 0);
    int64_t offset = 0;
    for (size_t d = 0; d < x.rank(); ++d) {
      offset += w.start[d] * xs[d];
      (*strides)[d] = w.step[d] * xs[d];
    }
    return offset;
  }

  virtual void copy(const Tensor& x, const SliceWindow& w, Tensor& y) {
    std::vector<int64_t> strides;
    const int64_t offset = walk_of(x, w, &strides);
    strided_copy(y.raw(), x.raw(), w.out, strides, offset, dtype_size(x.dtype()));
  }

  Node node_;
  bool attr_form_;
  std::vector<int64_t> starts_, ends_, axes_;
};

// f32: rows of the output are copied with one memcpy when the innermost sliced axis has step 1.
class SliceF32 final : public Slice {
 public:
  using Slice::Slice;

 protected:
  void copy(const Tensor& xt, const SliceWindow& w, Tensor& yt) override {
    if (xt.dtype() != DType::f32) return Slice::copy(xt, w, yt);
    const float* x = xt.data<float>();
    float* y = yt.data<float>();
    const Shape& is = xt.shape();
    const auto ist = shape_strides(is);
    int k = static_cast<int>(is.size()) - 1;
    int64_t inner = 1;  // trailing dimensions copied whole
    while (k >= 0 && w.start[k] == 0 && w.step[k] == 1 && w.out[k] == is[k]) inner *= is[k--];
    if (k < 0) {
      std::memcpy(y, x, xt.nbytes());
      return;
    }
    int64_t rows = 1;
    for (int d = 0; d < k; ++d) rows *= w.out[d];
    const int64_t len = w.out[k], run = len * inner, jump = w.step[k] * ist[k];
#pragma omp parallel for schedule(static) if (rows * run > kParallelElems)
    for (int64_t row = 0; row < rows; ++row) {
      int64_t rem = row, off = w.start[k] * ist[k];
      for (int d = k - 1; d >= 0; --d) {
        off += (w.start[d] + (rem % w.out[d]) * w.step[d]) * ist[d];
        rem /= w.out[d];
      }
      float* dst = y + row * run;
      if (w.step[k] == 1)
        std::memcpy(dst, x + off, run * sizeof(float));
      else if (inner == 1)
        for (int64_t j = 0; j < len; ++j) dst[j] = x[off + j * jump];
      else
        for (int64_t j = 0; j < len; ++j)
          std::memcpy(dst + j * inner, x + off + j * jump, inner * sizeof(float));
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Expand and Tile

class Expand final : public Kernel {
 public:
  Expand(const Node& node, const Graph&) : node_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Shape target = required_input(in, 1, node_).to_ints();
    for (int64_t d : target) check(d >= 0, node_.label(), "negative dimension in shape");
    const Shape s = broadcast_shapes(x.shape(), target, node_);
    ensure(*out[0], x.dtype(), s);
    if (out[0]->numel())
      strided_copy(out[0]->raw(), x.raw(), s, broadcast_strides(x.shape(), s), 0,
                   dtype_size(x.dtype()));
  }

  // The gradient summed over the broadcast dimensions.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& g = out_grad(gout, node_);
    strided_backward(g, x, g.shape(), broadcast_strides(x.shape(), g.shape()), 0, *gin[0],
                     node_.label());
  }

 private:
  Node node_;
};

class Tile final : public Kernel {
 public:
  Tile(const Node& node, const Graph&) : node_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    Shape walk, s;
    std::vector<int64_t> strides;
    plan(x, in, &walk, &strides, &s);
    ensure(*out[0], x.dtype(), s);
    if (out[0]->numel())
      strided_copy(out[0]->raw(), x.raw(), walk, strides, 0, dtype_size(x.dtype()));
  }

  // The gradient summed over the repeats.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    Shape walk, s;
    std::vector<int64_t> strides;
    plan(x, in, &walk, &strides, &s);
    strided_backward(out_grad(gout, node_), x, walk, strides, 0, *gin[0], node_.label());
  }

 private:
  // The output walked as [rep0, d0, rep1, d1, ...] with stride 0 over the repeats; s is the
  // output shape.
  void plan(const Tensor& x, const std::vector<const Tensor*>& in, Shape* walk,
            std::vector<int64_t>* strides, Shape* s) const {
    const auto reps = required_input(in, 1, node_).to_ints();
    check(reps.size() == x.rank(), node_.label(),
          "repeats has " + std::to_string(reps.size()) + " entries for a rank-" +
              std::to_string(x.rank()) + " input");
    const auto xs = shape_strides(x.shape());
    for (size_t d = 0; d < x.rank(); ++d) {
      check(reps[d] >= 0, node_.label(), "negative repeat");
      walk->insert(walk->end(), {reps[d], x.dim(d)});
      strides->insert(strides->end(), {0, xs[d]});
      s->push_back(reps[d] * x.dim(d));
    }
  }

  Node node_;
};

}  // namespace

void register_shape_strided_ops(Registry& r) {
  r.add("Slice", "fast", make_f32_kernel<SliceF32>, false);
  r.add("Slice", "ref", make_kernel<Slice>, true);
  r.add("Expand", "ref", make_kernel<Expand>, true);
  r.add("Tile", "ref", make_kernel<Tile>, true);
}

}  // namespace mixq
