// Indexed reads: Gather, GatherElements, GatherND. Indices may be negative (counted from the
// back); an index out of range is a user error naming the node, never an out-of-bounds read.
// Backward (float data): the gradient is scattered back and added where indices repeat; the
// indices get none.
#include <cstring>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// Checks the gradient of output 0 against the forward's output and returns it.
const Tensor& out_grad(const std::vector<const Tensor*>& out,
                       const std::vector<const Tensor*>& gout, const Node& node) {
  check(!gout.empty() && gout[0], node.label(), "no gradient for output 0");
  check(!out.empty() && out[0] && gout[0]->shape() == out[0]->shape() &&
            gout[0]->dtype() == out[0]->dtype(),
        node.label(), "gradient has the wrong type or shape");
  return *gout[0];
}

void check_index_type(const Tensor& t, const Node& node) {
  check(t.dtype() == DType::i64 || t.dtype() == DType::i32, node.label(),
        std::string("indices must be int32 or int64, got ") + dtype_name(t.dtype()));
}

class Gather final : public Kernel {
 public:
  Gather(const Node& node, const Graph&) : node_(node), axis_(node.get_int("axis", 0)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& idx = required_input(in, 1, node_);
    check_index_type(idx, node_);
    check(x.rank() >= 1, node_.label(), "cannot gather from a scalar");
    const size_t a = static_cast<size_t>(normalize_axis(axis_, x.rank(), node_));
    const int64_t dim = x.dim(a);
    std::vector<int64_t> ids = idx.to_ints();
    for (int64_t& v : ids) v = wrap_index(v, dim, node_);
    Shape s(x.shape().begin(), x.shape().begin() + a);
    s.insert(s.end(), idx.shape().begin(), idx.shape().end());
    s.insert(s.end(), x.shape().begin() + a + 1, x.shape().end());
    ensure(*out[0], x.dtype(), s);
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < a; ++d) outer *= x.dim(d);
    for (size_t d = a + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const size_t run = static_cast<size_t>(inner) * dtype_size(x.dtype());
    const int64_t n = static_cast<int64_t>(ids.size());
    const auto* src = static_cast<const std::byte*>(x.raw());
    auto* dst = static_cast<std::byte*>(out[0]->raw());
    for (int64_t o = 0; o < outer && run; ++o)
      for (int64_t k = 0; k < n; ++k)
        std::memcpy(dst + (o * n + k) * run, src + (o * dim + ids[k]) * run, run);
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& g = out_grad(out, gout, node_);
    const size_t a = static_cast<size_t>(normalize_axis(axis_, x.rank(), node_));
    const int64_t dim = x.dim(a);
    std::vector<int64_t> ids = required_input(in, 1, node_).to_ints();
    for (int64_t& v : ids) v = wrap_index(v, dim, node_);
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < a; ++d) outer *= x.dim(d);
    for (size_t d = a + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const int64_t n = static_cast<int64_t>(ids.size());
    visit_dtype<kFloatTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      zeros<T>(*gin[0], x.shape());
      const T* pg = g.data<T>();
      T* r = gin[0]->data<T>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < n; ++k) {
          const T* src = pg + (o * n + k) * inner;
          T* dst = r + (o * dim + ids[k]) * inner;
          for (int64_t j = 0; j < inner; ++j) dst[j] += src[j];
        }
    });
  }

 private:
  Node node_;
  int64_t axis_;
};

class GatherElements final : public Kernel {
 public:
  GatherElements(const Node& node, const Graph&) : node_(node), axis_(node.get_int("axis", 0)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& idx = required_input(in, 1, node_);
    check_index_type(idx, node_);
    check(x.rank() >= 1 && idx.rank() == x.rank(), node_.label(),
          "data " + shape_str(x.shape()) + " and indices " + shape_str(idx.shape()) +
              " must have one rank");
    const size_t r = x.rank();
    const size_t a = static_cast<size_t>(normalize_axis(axis_, r, node_));
    for (size_t d = 0; d < r; ++d)
      check(d == a || idx.dim(d) <= x.dim(d), node_.label(),
            "indices " + shape_str(idx.shape()) + " exceed data " + shape_str(x.shape()));
    ensure(*out[0], x.dtype(), idx.shape());
    const auto xs = shape_strides(x.shape());
    const size_t es = dtype_size(x.dtype());
    const auto* src = static_cast<const std::byte*>(x.raw());
    auto* dst = static_cast<std::byte*>(out[0]->raw());
    std::vector<int64_t> pos(r, 0);
    for (int64_t i = 0; i < idx.numel(); ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < r; ++d)
        off += (d == a ? wrap_index(idx.get_int(i), x.dim(a), node_) : pos[d]) * xs[d];
      std::memcpy(dst + i * es, src + off * es, es);
      for (size_t d = r; d-- > 0;) {
        if (++pos[d] < idx.dim(d)) break;
        pos[d] = 0;
      }
    }
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& idx = required_input(in, 1, node_);
    const Tensor& g = out_grad(out, gout, node_);
    const size_t r = x.rank();
    const size_t a = static_cast<size_t>(normalize_axis(axis_, r, node_));
    const auto xs = shape_strides(x.shape());
    visit_dtype<kFloatTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      zeros<T>(*gin[0], x.shape());
      const T* pg = g.data<T>();
      T* dst = gin[0]->data<T>();
      std::vector<int64_t> pos(r, 0);
      for (int64_t i = 0; i < idx.numel(); ++i) {
        int64_t off = 0;
        for (size_t d = 0; d < r; ++d)
          off += (d == a ? wrap_index(idx.get_int(i), x.dim(a), node_) : pos[d]) * xs[d];
        dst[off] += pg[i];
        for (size_t d = r; d-- > 0;) {
          if (++pos[d] < idx.dim(d)) break;
          pos[d] = 0;
        }
      }
    });
  }

 private:
  Node node_;
  int64_t axis_;
};

class GatherND final : public Kernel {
 public:
  GatherND(const Node& node, const Graph&) : node_(node), b_(node.get_int("batch_dims", 0)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Plan p = plan(x, required_input(in, 1, node_));
    ensure(*out[0], x.dtype(), p.shape);
    const size_t es = dtype_size(x.dtype()), run = static_cast<size_t>(p.slice) * es;
    const auto* src = static_cast<const std::byte*>(x.raw());
    auto* dst = static_cast<std::byte*>(out[0]->raw());
    for (size_t row = 0; row < p.offsets.size() && run; ++row)
      std::memcpy(dst + row * run, src + p.offsets[row] * es, run);
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& g = out_grad(out, gout, node_);
    const Plan p = plan(x, required_input(in, 1, node_));
    visit_dtype<kFloatTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      zeros<T>(*gin[0], x.shape());
      const T* pg = g.data<T>();
      T* r = gin[0]->data<T>();
      for (size_t row = 0; row < p.offsets.size(); ++row)
        for (int64_t j = 0; j < p.slice; ++j) r[p.offsets[row] + j] += pg[row * p.slice + j];
    });
  }

 private:
  struct Plan {
    Shape shape;                   // of the output
    int64_t slice = 1;             // elements copied per index tuple
    std::vector<int64_t> offsets;  // data offset of each output row (one per index tuple)
  };

  Plan plan(const Tensor& x, const Tensor& idx) const {
    check_index_type(idx, node_);
    const int64_t r = static_cast<int64_t>(x.rank()), q = static_cast<int64_t>(idx.rank());
    check(r >= 1 && q >= 1 && b_ >= 0 && b_ < std::min(r, q), node_.label(),
          "invalid ranks or batch_dims for data " + shape_str(x.shape()) + ", indices " +
              shape_str(idx.shape()));
    const int64_t k = idx.dim(q - 1);
    check(
        k >= 1 && k <= r - b_, node_.label(),
        "index tuples of length " + std::to_string(k) + " do not fit data " + shape_str(x.shape()));
    int64_t batch = 1;
    for (int64_t d = 0; d < b_; ++d) {
      check(x.dim(d) == idx.dim(d), node_.label(), "batch dimensions of data and indices differ");
      batch *= x.dim(d);
    }
    Plan p;
    p.shape.assign(idx.shape().begin(), idx.shape().end() - 1);
    p.shape.insert(p.shape.end(), x.shape().begin() + b_ + k, x.shape().end());
    int64_t tuples = 1;
    for (int64_t d = b_ + k; d < r; ++d) p.slice *= x.dim(d);
    for (int64_t d = b_; d < q - 1; ++d) tuples *= idx.dim(d);
    const int64_t block = batch ? x.numel() / batch : 0;  // data elements per batch entry
    const auto xs = shape_strides(x.shape());
    const auto ids = idx.to_ints();
    p.offsets.resize(batch * tuples);
    for (int64_t bi = 0; bi < batch; ++bi)
      for (int64_t t = 0; t < tuples; ++t) {
        const int64_t row = bi * tuples + t;
        int64_t off = bi * block;
        for (int64_t j = 0; j < k; ++j)
          off += wrap_index(ids[row * k + j], x.dim(b_ + j), node_) * xs[b_ + j];
        p.offsets[row] = off;
      }
    return p;
  }

  Node node_;
  int64_t b_;
};

}  // namespace

void register_shape_gather_ops(Registry& r) {
  r.add("Gather", "ref", make_kernel<Gather>, true);
  r.add("GatherElements", "ref", make_kernel<GatherElements>, true);
  r.add("GatherND", "ref", make_kernel<GatherND>, true);
}

}  // namespace mixq
