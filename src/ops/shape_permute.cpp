// Ops that permute the input's axes, materialized: Transpose, DepthToSpace, SpaceToDepth. The
// reference kernels are strided copies (ops/strided_copy.h, any dtype by element size); f32
// Transpose also has a fast path copying tiles in parallel. Backward: by the inverse permutation
// (tiled for f32 Transpose).
#include <algorithm>
#include <cstring>
#include <numeric>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"
#include "ops/strided_copy.h"

namespace mixq {
namespace {
using namespace strided_impl;

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

class Transpose : public Kernel {
 public:
  Transpose(const Node& node, const Graph&) : node_(node), perm_(node.get_ints("perm")) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    auto perm = resolve_perm(perm_, x.rank(), node_);
    Shape s(perm.size());
    for (size_t j = 0; j < perm.size(); ++j) s[j] = x.dim(perm[j]);
    copy(x, perm, *out[0], s);
  }

  // The gradient transposed back with the inverse permutation.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& g = out_grad(gout, node_);
    auto inv = inverse_perm(resolve_perm(perm_, x.rank(), node_));
    copy(g, inv, *gin[0], x.shape());
  }

 protected:
  // y (shape s) = x permuted by perm.
  virtual void copy(const Tensor& x, const std::vector<int64_t>& perm, Tensor& y, const Shape& s) {
    permute(x, x.shape(), perm, y, s);
  }

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

// f32 forward and backward copy tiles in parallel.
class TransposeF32 final : public Transpose {
 public:
  using Transpose::Transpose;

 protected:
  void copy(const Tensor& x, const std::vector<int64_t>& perm, Tensor& y, const Shape& s) override {
    // Another dtype: the graph's declared type was wrong, stay correct.
    if (x.dtype() != DType::f32) return Transpose::copy(x, perm, y, s);
    ensure(y, DType::f32, s);
    if (x.numel()) transpose_f32(x.data<float>(), y.data<float>(), x.shape(), perm);
  }
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

}  // namespace

void register_shape_permute_ops(Registry& r) {
  r.add("Transpose", "fast", make_f32_kernel<TransposeF32>, false);
  r.add("Transpose", "ref", make_kernel<Transpose>, true);
  r.add("DepthToSpace", "ref", make_kernel<DepthToSpace>, true);
  r.add("SpaceToDepth", "ref", make_kernel<SpaceToDepth>, true);
}

}  // namespace mixq
