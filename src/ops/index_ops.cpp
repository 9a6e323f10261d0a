// Index-driven ops: Trilu, TopK, OneHot and ScatterND.
// Trilu keeps a triangle of the last two axes (upper: j - i >= k, lower: j - i <= k), any type.
// TopK returns the k largest (or smallest) values along an axis and their int64 indices, sorted,
// equal values by lower index first as ONNX specifies; K is an attribute before opset 10.
// OneHot writes values[1] where the last-axis position equals the index (negative indices count
// from depth; indices outside [-depth, depth) give a row of values[0]).
// ScatterND copies data and writes (reduction none), adds or multiplies updates at index tuples;
// negative indices count from the back, out-of-range ones are errors naming the node.
// None has a backward pass.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// A scalar (or one-element) integer input.
int64_t scalar_int(const Tensor& t, const Node& node, const std::string& what) {
  check(t.numel() == 1 && t.rank() <= 1, node.label(),
        what + " must hold a single value, got shape " + shape_str(t.shape()));
  check(t.dtype() == DType::i64 || t.dtype() == DType::i32, node.label(),
        what + " must be int32 or int64, got " + dtype_name(t.dtype()));
  return t.get_int(0);
}

class Trilu final : public Kernel {
 public:
  Trilu(const Node& node, const Graph&) : node_(node), upper_(node.get_int("upper", 1) != 0) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.rank() >= 2, node_.label(), "input must have rank >= 2, got " + shape_str(x.shape()));
    const int64_t k = optional_input(in, 1) ? scalar_int(*in[1], node_, "k") : 0;
    ensure(*out.at(0), x.dtype(), x.shape());
    const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
    const int64_t mats = rows * cols != 0 ? x.numel() / (rows * cols) : 0;
    const size_t es = dtype_size(x.dtype());
    const auto* src = static_cast<const std::byte*>(x.raw());
    auto* dst = static_cast<std::byte*>(out[0]->raw());
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t e = (m * rows + i) * cols + j;
          const bool keep = upper_ ? j - i >= k : j - i <= k;
          if (keep)
            std::memcpy(dst + e * es, src + e * es, es);
          else
            std::memset(dst + e * es, 0, es);
        }
  }

 private:
  Node node_;
  bool upper_;
};

class TopK final : public Kernel {
 public:
  TopK(const Node& node, const Graph& graph)
      : node_(node),
        axis_(node.get_int("axis", -1)),
        largest_(node.get_int("largest", 1) != 0),
        k_attr_(graph.opset < 10 ? node.get_int("k", -1) : -1) {
    check(graph.opset >= 10 || k_attr_ >= 0, node.label(), "missing attribute k");
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.rank() >= 1, node_.label(), "cannot take the top k of a scalar");
    const size_t a = static_cast<size_t>(normalize_axis(axis_, x.rank(), node_));
    int64_t k = k_attr_;
    if (k < 0) {
      const Tensor& kt = required_input(in, 1, node_);
      check(kt.numel() == 1, node_.label(),
            "K must hold a single value, got shape " + shape_str(kt.shape()));
      check(kt.dtype() == DType::i64, node_.label(), "K must be int64");
      k = kt.get_int(0);
    }
    const int64_t dim = x.dim(a);
    check(k >= 0 && k <= dim, node_.label(),
          "K = " + std::to_string(k) + " is not in [0, " + std::to_string(dim) + "] for axis " +
              std::to_string(a) + " of " + shape_str(x.shape()));
    Shape s = x.shape();
    s[a] = k;
    check(out.size() >= 2, node_.label(), "needs two outputs, values and indices");
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < a; ++d) outer *= x.dim(d);
    for (size_t d = a + 1; d < x.rank(); ++d) inner *= x.dim(d);
    Tensor* values = out[0];
    Tensor* indices = out[1];
    Tensor idx_scratch;
    if (!indices) indices = &idx_scratch;
    ensure(*indices, DType::i64, s);
    visit_dtype<kNumericTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = x.data<T>();
      int64_t* pi = indices->data<int64_t>();
      T* pv = nullptr;
      if (values) {
        ensure(*values, x.dtype(), s);
        pv = values->data<T>();
      }
      std::vector<int64_t> order(static_cast<size_t>(dim));
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          const T* row = px + o * dim * inner + j;
          auto at = [&](int64_t i) { return row[i * inner]; };
          std::iota(order.begin(), order.end(), 0);
          // A strict order: by value, then by lower index (NaN counts as the largest).
          auto before = [&](int64_t p, int64_t q) {
            const T vp = at(p), vq = at(q);
            bool np = false, nq = false;
            if constexpr (std::is_floating_point_v<T>) {
              np = std::isnan(vp);
              nq = std::isnan(vq);
            }
            if (np || nq) {
              if (np && nq) return p < q;
              return largest_ ? np : nq;
            }
            if (vp != vq) return largest_ ? vp > vq : vp < vq;
            return p < q;
          };
          std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
          for (int64_t t = 0; t < k; ++t) {
            const int64_t at_out = (o * k + t) * inner + j;
            pi[at_out] = order[t];
            if (pv) pv[at_out] = at(order[t]);
          }
        }
    });
  }

 private:
  Node node_;
  int64_t axis_;
  bool largest_;
  int64_t k_attr_;
};

class OneHot final : public Kernel {
 public:
  OneHot(const Node& node, const Graph&) : node_(node), axis_(node.get_int("axis", -1)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& idx = required_input(in, 0, node_);
    const Tensor& depth_t = required_input(in, 1, node_);
    const Tensor& values = required_input(in, 2, node_);
    check(depth_t.numel() == 1, node_.label(),
          "depth must hold a single value, got shape " + shape_str(depth_t.shape()));
    check(values.numel() == 2 && values.rank() == 1, node_.label(),
          "values must be [off_value, on_value], got shape " + shape_str(values.shape()));
    check(idx.dtype() != DType::boolean && depth_t.dtype() != DType::boolean, node_.label(),
          "indices and depth must be numeric");
    const double dd = depth_t.get_double(0);
    check(dd >= 1 && dd < 9.2e18, node_.label(),
          "depth must be positive, got " + std::to_string(dd));
    const int64_t depth = static_cast<int64_t>(dd);
    const int64_t r = static_cast<int64_t>(idx.rank());
    check(
        axis_ >= -r - 1 && axis_ <= r, node_.label(),
        "axis " + std::to_string(axis_) + " out of range for output rank " + std::to_string(r + 1));
    const size_t a = static_cast<size_t>(axis_ < 0 ? axis_ + r + 1 : axis_);
    Shape s = idx.shape();
    s.insert(s.begin() + static_cast<std::ptrdiff_t>(a), depth);
    ensure(*out.at(0), values.dtype(), s);
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < a; ++d) outer *= idx.dim(d);
    for (size_t d = a; d < idx.rank(); ++d) inner *= idx.dim(d);
    const size_t es = dtype_size(values.dtype());
    const auto* pv = static_cast<const std::byte*>(values.raw());
    auto* dst = static_cast<std::byte*>(out[0]->raw());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < inner; ++j) {
        const double v = idx.get_double(o * inner + j);
        int64_t hot = -1;
        if (v >= static_cast<double>(-depth) && v < static_cast<double>(depth)) {
          hot = static_cast<int64_t>(v);  // float indices truncate
          if (hot < 0) hot += depth;
        }
        for (int64_t t = 0; t < depth; ++t)
          std::memcpy(dst + ((o * depth + t) * inner + j) * es, pv + (t == hot ? es : 0), es);
      }
  }

 private:
  Node node_;
  int64_t axis_;
};

class ScatterND final : public Kernel {
 public:
  ScatterND(const Node& node, const Graph&)
      : node_(node), reduction_(node.get_string("reduction", "none")) {
    check(reduction_ == "none" || reduction_ == "add" || reduction_ == "mul", node.label(),
          "unknown reduction '" + reduction_ + "'");
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& idx = required_input(in, 1, node_);
    const Tensor& upd = required_input(in, 2, node_);
    check(idx.dtype() == DType::i64, node_.label(),
          std::string("indices must be int64, got ") + dtype_name(idx.dtype()));
    check(upd.dtype() == x.dtype(), node_.label(), "data and updates types differ");
    const int64_t r = static_cast<int64_t>(x.rank()), q = static_cast<int64_t>(idx.rank());
    check(r >= 1 && q >= 1, node_.label(), "data and indices must have rank >= 1");
    const int64_t k = idx.dim(q - 1);
    check(
        k >= 1 && k <= r, node_.label(),
        "index tuples of length " + std::to_string(k) + " do not fit data " + shape_str(x.shape()));
    Shape want(idx.shape().begin(), idx.shape().end() - 1);
    want.insert(want.end(), x.shape().begin() + k, x.shape().end());
    check(upd.shape() == want, node_.label(),
          "updates " + shape_str(upd.shape()) + " must have shape " + shape_str(want));
    ensure(*out.at(0), x.dtype(), x.shape());
    if (x.nbytes() && out[0]->raw() != x.raw()) std::memcpy(out[0]->raw(), x.raw(), x.nbytes());
    int64_t slice = 1;
    for (int64_t d = k; d < r; ++d) slice *= x.dim(d);
    const int64_t tuples = idx.numel() / k;
    const auto xs = shape_strides(x.shape());
    const auto ids = idx.to_ints();
    std::vector<int64_t> offsets(static_cast<size_t>(tuples));
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; ++j) off += wrap_index(ids[t * k + j], x.dim(j), node_) * xs[j];
      offsets[t] = off;
    }
    if (reduction_ == "none") {
      const size_t es = dtype_size(x.dtype()), run = static_cast<size_t>(slice) * es;
      const auto* src = static_cast<const std::byte*>(upd.raw());
      auto* dst = static_cast<std::byte*>(out[0]->raw());
      for (int64_t t = 0; t < tuples && run; ++t)
        std::memcpy(dst + offsets[t] * es, src + t * run, run);
      return;
    }
    const bool add = reduction_ == "add";
    visit_dtype<kNumericTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* pu = upd.data<T>();
      T* py = out[0]->data<T>();
      for (int64_t t = 0; t < tuples; ++t)
        for (int64_t j = 0; j < slice; ++j) {
          T& v = py[offsets[t] + j];
          const T u = pu[t * slice + j];
          v = add ? static_cast<T>(wrapping(v) + wrapping(u))
                  : static_cast<T>(wrapping(v) * wrapping(u));
        }
    });
  }

 private:
  Node node_;
  std::string reduction_;
};

}  // namespace

void register_index_ops(Registry& r) {
  r.add("Trilu", "ref", make_kernel<Trilu>, true);
  r.add("TopK", "ref", make_kernel<TopK>, true);
  r.add("OneHot", "ref", make_kernel<OneHot>, true);
  r.add("ScatterND", "ref", make_kernel<ScatterND>, true);
}

}  // namespace mixq
