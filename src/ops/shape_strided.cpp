// Ops whose output is a strided view of the input, materialized: Transpose, Slice, Expand, Tile,
// DepthToSpace, SpaceToDepth. The reference kernels walk the output in row-major order with one
// stride per dimension (any dtype, by element size); Transpose and Slice also have f32 fast
// paths that copy contiguous runs or tiles in parallel. Backward: Transpose, DepthToSpace and
// SpaceToDepth by the inverse permutation (tiled for f32 Transpose); Slice, Expand and Tile
// (float types) by walking the same strides and accumulating.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// Copies are memory-bound: threads pay off only on big tensors, and on a loaded machine every
// parallel region risks waiting a scheduler slice for a descheduled thread.
constexpr int64_t kParallelElems = int64_t{1} << 20;

template <class T>
void walk_copy(T* dst, const T* src, const Shape& shape, const std::vector<int64_t>& strides,
               int64_t offset) {
  const int64_t n = shape_numel(shape);
  const int r = static_cast<int>(shape.size());
  std::vector<int64_t> idx(r, 0);
  int64_t off = offset;
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = src[off];
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

// The backward of walk_copy: dst[offset + sum_d idx_d * strides[d]] += src[i]. Several i may
// reach one dst element (broadcast or tiled strides), so it accumulates.
template <class T>
void walk_add(T* dst, const T* src, const Shape& shape, const std::vector<int64_t>& strides,
              int64_t offset) {
  const int64_t n = shape_numel(shape);
  const int r = static_cast<int>(shape.size());
  std::vector<int64_t> idx(r, 0);
  int64_t off = offset;
  for (int64_t i = 0; i < n; ++i) {
    dst[off] += src[i];
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

// gx = zeros of x's shape, then walk_add of g over it: the backward of a strided copy of x.
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

// ---------------------------------------------------------------------------------------------
// Transpose

std::vector<int64_t> resolve_perm(const std::vector<int64_t>& attr, size_t rank, const Node& node) {
  std::vector<int64_t> perm = attr;
  if (perm.empty()) {
    perm.resize(rank);
    for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(rank - 1 - i);
  }
  check(perm.size() == rank, node.label(),
        "perm has " + std::to_string(perm.size()) + " entries for a rank-" + std::to_string(rank) +
            " input");
  std::vector<bool> seen(rank, false);
  for (int64_t& p : perm) {
    p = normalize_axis(p, static_cast<int64_t>(rank), node);
    check(!seen[p], node.label(), "perm is not a permutation");
    seen[p] = true;
  }
  return perm;
}

std::vector<int64_t> inverse_perm(const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) inv[perm[j]] = static_cast<int64_t>(j);
  return inv;
}

// Copies x permuted: out dim j is x dim perm[j].
void permute(const Tensor& x, const Shape& view, const std::vector<int64_t>& perm, Tensor& y,
             const Shape& out_shape) {
  auto vs = shape_strides(view);
  Shape walk(perm.size());
  std::vector<int64_t> strides(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) {
    walk[j] = view[perm[j]];
    strides[j] = vs[perm[j]];
  }
  ensure(y, x.dtype(), out_shape);
  strided_copy(y.raw(), x.raw(), walk, strides, 0, dtype_size(x.dtype()));
}

class Transpose final : public Kernel {
 public:
  Transpose(const Node& node, const Graph&) : node_(node), perm_(node.get_ints("perm")) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    auto perm = resolve_perm(perm_, x.rank(), node_);
    Shape s(perm.size());
    for (size_t j = 0; j < perm.size(); ++j) s[j] = x.dim(perm[j]);
    permute(x, x.shape(), perm, *out[0], s);
  }

  // The gradient transposed back with the inverse permutation.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& g = out_grad(gout, node_);
    auto inv = inverse_perm(resolve_perm(perm_, x.rank(), node_));
    permute(g, g.shape(), inv, *gin[0], x.shape());
  }

 private:
  Node node_;
  std::vector<int64_t> perm_;
};

// Drops size-1 dimensions and merges input dimensions that stay adjacent in the output, so that
// e.g. NCHW->NHWC becomes a batch of 2-D transposes [C, HW] -> [HW, C].
void simplify_perm(const Shape& in, const std::vector<int64_t>& perm, Shape& sin,
                   std::vector<int64_t>& sperm) {
  std::vector<int64_t> renum(in.size(), -1);
  Shape kept;
  for (size_t d = 0; d < in.size(); ++d)
    if (in[d] != 1) {
      renum[d] = static_cast<int64_t>(kept.size());
      kept.push_back(in[d]);
    }
  struct Group {
    int64_t first, last, size;
  };
  std::vector<Group> groups;  // in output order
  for (int64_t od : perm) {
    const int64_t d = renum[od];
    if (d < 0) continue;
    if (!groups.empty() && groups.back().last + 1 == d) {
      groups.back().last = d;
      groups.back().size *= kept[d];
    } else {
      groups.push_back({d, d, kept[d]});
    }
  }
  std::vector<size_t> order(groups.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return groups[a].first < groups[b].first; });
  sin.assign(groups.size(), 0);
  sperm.assign(groups.size(), 0);
  for (size_t k = 0; k < order.size(); ++k) {
    sin[k] = groups[order[k]].size;
    sperm[order[k]] = static_cast<int64_t>(k);
  }
}

void transpose_f32(const float* x, float* y, const Shape& in, const std::vector<int64_t>& perm) {
  const int64_t n = shape_numel(in);
  Shape is;
  std::vector<int64_t> p;
  simplify_perm(in, perm, is, p);
  const int r = static_cast<int>(is.size());
  if (r <= 1) {
    std::memcpy(y, x, n * sizeof(float));
    return;
  }
  const auto ist = shape_strides(is);
  Shape os(r);
  for (int j = 0; j < r; ++j) os[j] = is[p[j]];
  const auto ost = shape_strides(os);
  const bool big = n > kParallelElems;
  if (p[r - 1] == r - 1) {
    // The innermost dimension stays innermost: copy rows.
    const int64_t run = os[r - 1], rows = n / run;
#pragma omp parallel for schedule(static) if (big)
    for (int64_t row = 0; row < rows; ++row) {
      int64_t rem = row, off = 0;
      for (int j = r - 2; j >= 0; --j) {
        off += (rem % os[j]) * ist[p[j]];
        rem /= os[j];
      }
      std::memcpy(y + row * run, x + off, run * sizeof(float));
    }
    return;
  }
  // Batches of 2-D tiles: output dim a reads contiguous input, output dim b is contiguous.
  int a = 0;
  while (p[a] != r - 1) ++a;
  const int b = r - 1;
  const int64_t A = os[a], B = os[b], sb = ist[p[b]], da = ost[a];
  std::vector<int> outer_dims;
  for (int j = 0; j < r; ++j)
    if (j != a && j != b) outer_dims.push_back(j);
  constexpr int64_t T = 32;
  const int64_t ta = (A + T - 1) / T, tb = (B + T - 1) / T;
  const int64_t tasks = n / (A * B) * ta * tb;
#pragma omp parallel for schedule(static) if (big)
  for (int64_t t = 0; t < tasks; ++t) {
    int64_t o = t / (ta * tb), tile = t % (ta * tb);
    const int64_t x0 = (tile / tb) * T, y0 = (tile % tb) * T;
    int64_t src = 0, dst = 0;
    for (int k = static_cast<int>(outer_dims.size()) - 1; k >= 0; --k) {
      const int j = outer_dims[k];
      const int64_t i = o % os[j];
      o /= os[j];
      src += i * ist[p[j]];
      dst += i * ost[j];
    }
    const int64_t x1 = std::min(A, x0 + T), y1 = std::min(B, y0 + T);
    for (int64_t xi = x0; xi < x1; ++xi)
      for (int64_t yi = y0; yi < y1; ++yi) y[dst + xi * da + yi] = x[src + xi + yi * sb];
  }
}

class TransposeF32 final : public Kernel {
 public:
  TransposeF32(const Node& node, const Graph&) : node_(node), perm_(node.get_ints("perm")) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    auto perm = resolve_perm(perm_, x.rank(), node_);
    Shape s(perm.size());
    for (size_t j = 0; j < perm.size(); ++j) s[j] = x.dim(perm[j]);
    if (x.dtype() != DType::f32) {  // the graph's declared type was wrong: stay correct
      permute(x, x.shape(), perm, *out[0], s);
      return;
    }
    ensure(*out[0], DType::f32, s);
    if (x.numel()) transpose_f32(x.data<float>(), out[0]->data<float>(), x.shape(), perm);
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& g = out_grad(gout, node_);
    auto inv = inverse_perm(resolve_perm(perm_, x.rank(), node_));
    if (g.dtype() != DType::f32) return permute(g, g.shape(), inv, *gin[0], x.shape());
    ensure(*gin[0], DType::f32, x.shape());
    if (g.numel()) transpose_f32(g.data<float>(), gin[0]->data<float>(), g.shape(), inv);
  }

 private:
  Node node_;
  std::vector<int64_t> perm_;
};

// ---------------------------------------------------------------------------------------------
// DepthToSpace / SpaceToDepth: a reshape to 6-D, a fixed permutation, a reshape back.

// Backward of permute(x, view, perm, ...): the gradient, laid out as the permuted view, permuted
// back into x's layout.
void unpermute(const Tensor& g, const Shape& view, const std::vector<int64_t>& perm,
               const Shape& x_shape, Tensor& gx) {
  Shape permuted(perm.size());
  for (size_t j = 0; j < perm.size(); ++j) permuted[j] = view[perm[j]];
  permute(g, permuted, inverse_perm(perm), gx, x_shape);
}

class DepthToSpace final : public Kernel {
 public:
  DepthToSpace(const Node& node, const Graph&)
      : node_(node),
        b_(node.get_int("blocksize", 0)),
        crd_(node.get_string("mode", "DCR") == "CRD") {
    check(b_ > 0, node.label(), "blocksize must be positive");
    const std::string mode = node.get_string("mode", "DCR");
    check(mode == "DCR" || mode == "CRD", node.label(), "unknown mode '" + mode + "'");
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    Shape view;
    std::vector<int64_t> perm;
    plan(x, &view, &perm);
    permute(x, view, perm, *out[0], {x.dim(0), x.dim(1) / (b_ * b_), x.dim(2) * b_, x.dim(3) * b_});
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    Shape view;
    std::vector<int64_t> perm;
    plan(x, &view, &perm);
    unpermute(out_grad(gout, node_), view, perm, x.shape(), *gin[0]);
  }

 private:
  // The 6-D view of x and the permutation that makes the output.
  void plan(const Tensor& x, Shape* view, std::vector<int64_t>* perm) const {
    check(x.rank() == 4, node_.label(), "expects a 4-D input, got " + shape_str(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    check(c % (b_ * b_) == 0, node_.label(), "channels are not a multiple of blocksize^2");
    const int64_t co = c / (b_ * b_);
    if (crd_) {
      *view = {n, co, b_, b_, h, w};
      *perm = {0, 1, 4, 2, 5, 3};
    } else {
      *view = {n, b_, b_, co, h, w};
      *perm = {0, 3, 4, 1, 5, 2};
    }
  }

  Node node_;
  int64_t b_;
  bool crd_;
};

class SpaceToDepth final : public Kernel {
 public:
  SpaceToDepth(const Node& node, const Graph&) : node_(node), b_(node.get_int("blocksize", 0)) {
    check(b_ > 0, node.label(), "blocksize must be positive");
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    permute(x, view(x), perm(), *out[0],
            {x.dim(0), x.dim(1) * b_ * b_, x.dim(2) / b_, x.dim(3) / b_});
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    unpermute(out_grad(gout, node_), view(x), perm(), x.shape(), *gin[0]);
  }

 private:
  static std::vector<int64_t> perm() { return {0, 3, 5, 1, 2, 4}; }
  // The 6-D view of x the permutation applies to.
  Shape view(const Tensor& x) const {
    check(x.rank() == 4, node_.label(), "expects a 4-D input, got " + shape_str(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    check(h % b_ == 0 && w % b_ == 0, node_.label(), "height and width must divide by blocksize");
    return {n, c, h / b_, b_, w / b_, b_};
  }

  Node node_;
  int64_t b_;
};

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

std::unique_ptr<Kernel> make_transpose_f32(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<TransposeF32>(node, graph);
}

std::unique_ptr<Kernel> make_slice_f32(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<SliceF32>(node, graph);
}

}  // namespace

void register_shape_strided_ops(Registry& r) {
  r.add("Transpose", "fast", make_transpose_f32, false);
  r.add("Transpose", "ref", make_kernel<Transpose>, true);
  r.add("Slice", "fast", make_slice_f32, false);
  r.add("Slice", "ref", make_kernel<Slice>, true);
  r.add("DepthToSpace", "ref", make_kernel<DepthToSpace>, true);
  r.add("SpaceToDepth", "ref", make_kernel<SpaceToDepth>, true);
  r.add("Expand", "ref", make_kernel<Expand>, true);
  r.add("Tile", "ref", make_kernel<Tile>, true);
}

}  // namespace mixq
