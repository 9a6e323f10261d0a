// Concat and Split: joining and cutting tensors along one axis. Seen as [outer, axis, inner],
// every input of a Concat (or output of a Split) is a sequence of contiguous runs, and so is
// every gradient of their backward passes (which cut and join the other way round).
#include <cstring>

#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// Copies are memory-bound: threads pay off only on big tensors, and on a loaded machine every
// parallel region risks waiting a scheduler slice for a descheduled thread.
constexpr int64_t kParallelElems = int64_t{1} << 20;

int64_t prod(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t d = begin; d < end; ++d) p *= s[d];
  return p;
}

class Concat : public Kernel {
 public:
  Concat(const Node& node, const Graph&) : node_(node) {
    check(node.has("axis"), node.label(), "missing attribute 'axis'");
    axis_ = node.get_int("axis", 0);
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    std::vector<const Tensor*> xs;
    for (const Tensor* t : in)
      if (t) xs.push_back(t);
    check(!xs.empty(), node_.label(), "no inputs");
    const Tensor& first = *xs[0];
    check(first.rank() >= 1, node_.label(), "cannot concatenate scalars");
    const int64_t r = static_cast<int64_t>(first.rank());
    const size_t a = static_cast<size_t>(normalize_axis(axis_, r, node_));
    Shape s = first.shape();
    s[a] = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const Tensor& x = *xs[i];
      check(x.dtype() == first.dtype(), node_.label(),
            std::string("input types differ: ") + dtype_name(first.dtype()) + " and " +
                dtype_name(x.dtype()));
      bool ok = x.rank() == first.rank();
      for (size_t d = 0; ok && d < x.rank(); ++d) ok = d == a || x.dim(d) == first.dim(d);
      check(ok, node_.label(),
            "input " + std::to_string(i) + " has shape " + shape_str(x.shape()) +
                ", incompatible with " + shape_str(first.shape()) + " along axis " +
                std::to_string(axis_));
      s[a] += x.dim(a);
    }
    ensure(*out[0], first.dtype(), s);
    if (out[0]->numel()) copy(xs, a, *out[0]);
  }

  // Each input's gradient is its block of the output's gradient, cut along the axis.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    check(!gout.empty() && gout[0], node_.label(), "no gradient for output 0");
    const Tensor& g = *gout[0];
    check(g.rank() >= 1, node_.label(), "gradient has the wrong shape");
    const size_t a = static_cast<size_t>(normalize_axis(axis_, g.rank(), node_));
    const int64_t outer = prod(g.shape(), 0, a), inner = prod(g.shape(), a + 1, g.rank());
    const size_t es = dtype_size(g.dtype());
    const auto* src = static_cast<const std::byte*>(g.raw());
    int64_t base = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i]) continue;
      const int64_t len = in[i]->dim(a);
      if (i < gin.size() && gin[i]) {
        ensure(*gin[i], g.dtype(), in[i]->shape());
        auto* dst = static_cast<std::byte*>(gin[i]->raw());
        const size_t run = static_cast<size_t>(len * inner) * es;
        for (int64_t o = 0; o < outer && run; ++o)
          std::memcpy(dst + o * run, src + (o * g.dim(a) + base) * inner * es, run);
      }
      base += len;
    }
    check(base == g.dim(a), node_.label(), "gradient has the wrong shape");
  }

 protected:
  // Reference: element by element, out[o, base_i + j, k] = x_i[o, j, k].
  virtual void copy(const std::vector<const Tensor*>& xs, size_t a, Tensor& y) {
    const Shape& s = y.shape();
    const int64_t outer = prod(s, 0, a), inner = prod(s, a + 1, s.size());
    const size_t es = dtype_size(y.dtype());
    auto* dst = static_cast<std::byte*>(y.raw());
    int64_t base = 0;
    for (const Tensor* x : xs) {
      const auto* src = static_cast<const std::byte*>(x->raw());
      const int64_t len = x->dim(a);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < len; ++j)
          for (int64_t k = 0; k < inner; ++k)
            std::memcpy(dst + ((o * s[a] + base + j) * inner + k) * es,
                        src + ((o * len + j) * inner + k) * es, es);
      base += len;
    }
  }

  Node node_;
  int64_t axis_ = 0;
};

// One memcpy per (outer index, input), spread over threads.
class ConcatF32 final : public Concat {
 public:
  using Concat::Concat;

 protected:
  void copy(const std::vector<const Tensor*>& xs, size_t a, Tensor& y) override {
    const Shape& s = y.shape();
    const int64_t outer = prod(s, 0, a), inner = prod(s, a + 1, s.size());
    const int64_t nx = static_cast<int64_t>(xs.size());
    const size_t es = dtype_size(y.dtype());
    std::vector<int64_t> base(nx + 1, 0);
    for (int64_t i = 0; i < nx; ++i) base[i + 1] = base[i] + xs[i]->dim(a) * inner;
    const int64_t row = base[nx];
    auto* dst = static_cast<std::byte*>(y.raw());
#pragma omp parallel for schedule(static) if (y.numel() > kParallelElems)
    for (int64_t t = 0; t < outer * nx; ++t) {
      const int64_t o = t / nx, i = t % nx, run = base[i + 1] - base[i];
      std::memcpy(dst + (o * row + base[i]) * es,
                  static_cast<const std::byte*>(xs[i]->raw()) + o * run * es, run * es);
    }
  }
};

std::unique_ptr<Kernel> make_concat_f32(const Node& node, const Graph& graph) {
  for (size_t i = 0; i < node.inputs.size(); ++i)
    if (input_dtype(node, graph, i) != DType::f32) return nullptr;
  return std::make_unique<ConcatF32>(node, graph);
}

class Split final : public Kernel {
 public:
  Split(const Node& node, const Graph&)
      : node_(node), axis_(node.get_int("axis", 0)), split_(node.get_ints("split")) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    size_t a = 0;
    const std::vector<int64_t> sizes = split_sizes(x, in, out.size(), &a);
    const int64_t dim = x.dim(a);
    const int64_t outer = prod(x.shape(), 0, a), inner = prod(x.shape(), a + 1, x.rank());
    const size_t es = dtype_size(x.dtype());
    const auto* src = static_cast<const std::byte*>(x.raw());
    int64_t base = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const int64_t len = sizes[i];
      if (out[i]) {
        Shape s = x.shape();
        s[a] = len;
        ensure(*out[i], x.dtype(), s);
        auto* dst = static_cast<std::byte*>(out[i]->raw());
        const size_t run = static_cast<size_t>(len * inner) * es;
        for (int64_t o = 0; o < outer && run; ++o)
          std::memcpy(dst + o * run, src + ((o * dim + base) * inner) * es, run);
      }
      base += len;
    }
  }

  // The input's gradient is the outputs' gradients joined along the axis (zeros for an output
  // no gradient flows into).
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    size_t a = 0;
    const std::vector<int64_t> sizes = split_sizes(x, in, out.size(), &a);
    const int64_t dim = x.dim(a);
    const int64_t outer = prod(x.shape(), 0, a), inner = prod(x.shape(), a + 1, x.rank());
    const size_t es = dtype_size(x.dtype());
    *gin[0] = Tensor(x.dtype(), x.shape());  // zeros
    auto* dst = static_cast<std::byte*>(gin[0]->raw());
    int64_t base = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const int64_t len = sizes[i];
      if (i < gout.size() && gout[i]) {
        const Tensor& g = *gout[i];
        check(g.dtype() == x.dtype() && g.numel() == outer * len * inner, node_.label(),
              "gradient of output " + std::to_string(i) + " has the wrong type or shape");
        const auto* src = static_cast<const std::byte*>(g.raw());
        const size_t run = static_cast<size_t>(len * inner) * es;
        for (int64_t o = 0; o < outer && run; ++o)
          std::memcpy(dst + ((o * dim + base) * inner) * es, src + o * run, run);
      }
      base += len;
    }
  }

 private:
  // Sizes along the axis *a from the input (opset 13), the attribute (before 13), or equal parts.
  std::vector<int64_t> split_sizes(const Tensor& x, const std::vector<const Tensor*>& in,
                                   size_t n_out, size_t* a) const {
    check(x.rank() >= 1, node_.label(), "cannot split a scalar");
    *a = static_cast<size_t>(normalize_axis(axis_, x.rank(), node_));
    const int64_t dim = x.dim(*a);
    std::vector<int64_t> sizes = optional_input(in, 1) ? in[1]->to_ints() : split_;
    if (sizes.empty()) {
      const int64_t n = static_cast<int64_t>(n_out);
      check(n > 0 && dim % n == 0, node_.label(),
            "axis of size " + std::to_string(dim) + " does not split into " + std::to_string(n) +
                " equal parts");
      sizes.assign(n, dim / n);
    }
    check(sizes.size() == n_out, node_.label(),
          std::to_string(sizes.size()) + " split sizes for " + std::to_string(n_out) + " outputs");
    int64_t total = 0;
    for (int64_t v : sizes) {
      check(v >= 0, node_.label(), "negative split size");
      total += v;
    }
    check(total == dim, node_.label(),
          "split sizes sum to " + std::to_string(total) + ", axis has " + std::to_string(dim));
    return sizes;
  }

  Node node_;
  int64_t axis_;
  std::vector<int64_t> split_;
};

}  // namespace

void register_shape_join_ops(Registry& r) {
  r.add("Concat", "fast", make_concat_f32, false);
  r.add("Concat", "ref", make_kernel<Concat>, true);
  r.add("Split", "ref", make_kernel<Split>, true);
}

}  // namespace mixq
