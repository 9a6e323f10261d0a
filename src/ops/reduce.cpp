// Reductions (ReduceSum, ReduceMean, ... ReduceLogSumExp) and ArgMax/ArgMin. Float inputs are
// accumulated in double, integer inputs in int64 (exact). Axes are an attribute, or an input
// for ReduceSum from opset 13 (either form is accepted whatever the opset). Backward (float
// types): every reduction but ReduceProd; Max and Min send the gradient to the first element
// equal to the result.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/common.h"
#include "ops/dtype_dispatch.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

enum class Red { sum, mean, max, min, prod, l1, l2, sum_square, log_sum, log_sum_exp };

// The input seen as few dimensions as possible: adjacent dimensions that are both reduced or
// both kept are merged and size-1 dimensions dropped. out_strides is 0 on reduced dimensions.
struct Layout {
  Shape dims;
  std::vector<bool> reduced;
  std::vector<int64_t> out_strides;
};

Layout make_layout(const Shape& shape, const std::vector<bool>& reduced) {
  Layout l;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!l.dims.empty() && l.reduced.back() == reduced[d]) {
      l.dims.back() *= shape[d];
    } else {
      l.dims.push_back(shape[d]);
      l.reduced.push_back(reduced[d]);
    }
  }
  l.out_strides.assign(l.dims.size(), 0);
  int64_t s = 1;
  for (size_t d = l.dims.size(); d-- > 0;)
    if (!l.reduced[d]) {
      l.out_strides[d] = s;
      s *= l.dims[d];
    }
  return l;
}

// Calls f(row, o) for every row (run along the last dimension) of a layout of rank >= 1, in
// order, o being the output position of the row's first element.
template <class F>
void for_each_row(const Layout& l, F&& f) {
  const int r = static_cast<int>(l.dims.size());
  int64_t rows = 1;
  for (int d = 0; d < r - 1; ++d) rows *= l.dims[d];
  std::vector<int64_t> pos(r, 0);
  int64_t o = 0;
  for (int64_t row = 0; row < rows; ++row) {
    f(row, o);
    for (int d = r - 2; d >= 0; --d) {
      if (++pos[d] < l.dims[d]) {
        o += l.out_strides[d];
        break;
      }
      o -= l.out_strides[d] * (l.dims[d] - 1);
      pos[d] = 0;
    }
  }
}

// Calls step(acc[o], x[i], o) for every input element i, o being its output position.
template <class T, class A, class Step>
void accumulate(const T* x, A* acc, const Layout& l, Step step) {
  const int r = static_cast<int>(l.dims.size());
  if (r == 0) {
    step(acc[0], x[0], 0);
    return;
  }
  const int64_t inner = l.dims[r - 1];
  const bool inner_reduced = l.reduced[r - 1];
  for_each_row(l, [&](int64_t row, int64_t o) {
    const T* p = x + row * inner;
    if (inner_reduced) {
      A a = acc[o];
      for (int64_t j = 0; j < inner; ++j) step(a, p[j], o);
      acc[o] = a;
    } else {
      for (int64_t j = 0; j < inner; ++j) step(acc[o + j], p[j], o + j);
    }
  });
}

// Calls f(i, o) for every input element i in order, o being its output position.
template <class F>
void for_each_element(const Layout& l, F f) {
  const int r = static_cast<int>(l.dims.size());
  if (r == 0) {
    f(int64_t{0}, int64_t{0});
    return;
  }
  const int64_t inner = l.dims[r - 1];
  const int64_t inner_step = l.reduced[r - 1] ? 0 : 1;
  for_each_row(l, [&](int64_t row, int64_t o) {
    for (int64_t j = 0; j < inner; ++j) f(row * inner + j, o + j * inner_step);
  });
}

// Reductions with a backward: all but ReduceProd (whose gradient needs care at zeros).
constexpr bool has_grad(Red k) {
  return k != Red::prod;
}

template <Red K>
class Reduce final : public Kernel {
 public:
  Reduce(const Node& node, const Graph&)
      : node_(node),
        attr_axes_(node.has("axes")),
        axes_(node.get_ints("axes")),
        keepdims_(node.get_int("keepdims", 1) != 0),
        noop_(node.get_int("noop_with_empty_axes", 0) != 0) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Plan p = plan(x, in);
    if (p.noop) {
      *out[0] = x;
      return;
    }
    ensure(*out[0], x.dtype(), p.shape);
    visit_dtype<kNumericTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      run<T>(x, p.layout, p.count, *out[0]);
    });
  }

  // gx[i] = gy[o] * dy[o]/dx[i] over every input element i reduced into output o.
  bool has_backward() const override { return has_grad(K); }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if constexpr (!has_grad(K)) {
      Kernel::backward(in, out, gout, gin);
    } else {
      if (gin.empty() || !gin[0]) return;
      const Tensor& x = required_input(in, 0, node_);
      check(!gout.empty() && gout[0] && !out.empty() && out[0], node_.label(),
            "no gradient for output 0");
      const Tensor& g = *gout[0];
      const Tensor& y = *out[0];
      check(g.shape() == y.shape() && g.dtype() == x.dtype(), node_.label(),
            "gradient has the wrong type or shape");
      const Plan p = plan(x, in);
      if (p.noop) {
        *gin[0] = g;
        return;
      }
      ensure(*gin[0], x.dtype(), x.shape());
      auto grad = [&](auto tag) {
        using T = typename decltype(tag)::type;
        const T* px = x.data<T>();
        const T* py = y.data<T>();
        const T* pg = g.data<T>();
        T* r = gin[0]->data<T>();
        if constexpr (K == Red::max || K == Red::min) {
          std::vector<bool> taken(y.numel(), false);
          for_each_element(p.layout, [&](int64_t i, int64_t o) {
            const bool hit = !taken[o] && (px[i] == py[o] || (px[i] != px[i] && py[o] != py[o]));
            if (hit) taken[o] = true;
            r[i] = hit ? pg[o] : T(0);
          });
        } else {
          const T inv_count = p.count ? T(1) / static_cast<T>(p.count) : T(0);
          for_each_element(p.layout, [&](int64_t i, int64_t o) {
            const T v = px[i];
            T d = T(1);
            if constexpr (K == Red::mean) d = inv_count;
            if constexpr (K == Red::sum_square) d = T(2) * v;
            if constexpr (K == Red::l1) d = v > T(0) ? T(1) : v < T(0) ? T(-1) : T(0);
            if constexpr (K == Red::l2) d = py[o] > T(0) ? v / py[o] : T(0);
            if constexpr (K == Red::log_sum) d = std::exp(-py[o]);
            if constexpr (K == Red::log_sum_exp) d = std::exp(v - py[o]);
            r[i] = pg[o] * d;
          });
        }
      };
      if (x.dtype() == DType::f32)
        grad(TypeTag<float>{});
      else if (x.dtype() == DType::f64)
        grad(TypeTag<double>{});
      else
        throw Error(node_.label(), std::string("no gradient for type ") + dtype_name(x.dtype()));
    }
  }

 private:
  struct Plan {
    bool noop = false;  // empty axes with noop_with_empty_axes: the output is the input
    Shape shape;        // of the output
    Layout layout;
    int64_t count = 1;  // input elements per output element
  };

  Plan plan(const Tensor& x, const std::vector<const Tensor*>& in) const {
    Plan p;
    std::vector<int64_t> axes = axes_;
    if (!attr_axes_ && optional_input(in, 1)) axes = in[1]->to_ints();
    if (axes.empty() && noop_) {
      p.noop = true;
      return p;
    }
    const int64_t r = static_cast<int64_t>(x.rank());
    std::vector<bool> reduced(r, axes.empty());
    for (int64_t a : axes) {
      if (r == 0) break;  // a scalar reduces to itself
      const int64_t d = normalize_axis(a, r, node_);
      check(!reduced[d], node_.label(), "axis " + std::to_string(a) + " given twice");
      reduced[d] = true;
    }
    for (int64_t d = 0; d < r; ++d) {
      if (reduced[d]) p.count *= x.dim(d);
      if (!reduced[d])
        p.shape.push_back(x.dim(d));
      else if (keepdims_)
        p.shape.push_back(1);
    }
    p.layout = make_layout(x.shape(), reduced);
    return p;
  }

  template <class T>
  void run(const Tensor& xt, const Layout& l, int64_t count, Tensor& yt) {
    constexpr bool kFloat = std::is_floating_point_v<T>;
    using A = std::conditional_t<kFloat || K == Red::log_sum_exp, double, int64_t>;
    const T* x = xt.data<T>();
    T* y = yt.data<T>();
    const int64_t n = yt.numel();
    const bool empty = xt.numel() == 0;
    std::vector<A> acc(n, A(0));
    if constexpr (K == Red::log_sum_exp) {
      // Shift by the maximum so exp never overflows.
      std::vector<A> mx(n, -std::numeric_limits<double>::infinity());
      if (!empty)
        accumulate(x, mx.data(), l, [](A& a, T v, int64_t) {
          if (v > a) a = v;
        });
      for (A& m : mx)
        if (!std::isfinite(m)) m = 0;
      if (!empty)
        accumulate(x, acc.data(), l, [&](A& a, T v, int64_t o) { a += std::exp(v - mx[o]); });
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(std::log(acc[i]) + mx[i]);
      return;
    } else {
      if constexpr (K == Red::prod) acc.assign(n, A(1));
      if constexpr (K == Red::max || K == Red::min) {
        constexpr bool kMax = K == Red::max;
        if constexpr (kFloat)
          acc.assign(
              n, kMax ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::infinity());
        else
          acc.assign(n,
                     kMax ? A(std::numeric_limits<T>::lowest()) : A(std::numeric_limits<T>::max()));
      }
      if (!empty)
        accumulate(x, acc.data(), l, [](A& a, T t, int64_t) {
          const A v = static_cast<A>(t);
          if constexpr (K == Red::sum || K == Red::mean || K == Red::log_sum) a += v;
          if constexpr (K == Red::l1) a += v < 0 ? -v : v;
          if constexpr (K == Red::l2 || K == Red::sum_square) a += v * v;
          if constexpr (K == Red::prod) a *= v;
          if constexpr (K == Red::max)
            if (v > a || v != v) a = v;  // NaN propagates as in numpy
          if constexpr (K == Red::min)
            if (v < a || v != v) a = v;
        });
      for (int64_t i = 0; i < n; ++i) {
        A a = acc[i];
        if constexpr (K == Red::mean) a = count ? a / static_cast<A>(count) : A(0);
        if constexpr (K == Red::l2) a = static_cast<A>(std::sqrt(static_cast<double>(a)));
        if constexpr (K == Red::log_sum) a = static_cast<A>(std::log(static_cast<double>(a)));
        y[i] = static_cast<T>(a);
      }
    }
  }

  Node node_;
  bool attr_axes_;
  std::vector<int64_t> axes_;
  bool keepdims_, noop_;
};

template <bool kMax>
class ArgReduce final : public Kernel {
 public:
  ArgReduce(const Node& node, const Graph&)
      : node_(node),
        axis_(node.get_int("axis", 0)),
        keepdims_(node.get_int("keepdims", 1) != 0),
        last_(node.get_int("select_last_index", 0) != 0) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.rank() >= 1, node_.label(), "input must have rank >= 1");
    const size_t a = static_cast<size_t>(normalize_axis(axis_, x.rank(), node_));
    const int64_t dim = x.dim(a);
    check(dim > 0, node_.label(), "cannot take the arg of an empty axis");
    Shape s;
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < x.rank(); ++d) {
      if (d < a) outer *= x.dim(d);
      if (d > a) inner *= x.dim(d);
      if (d != a)
        s.push_back(x.dim(d));
      else if (keepdims_)
        s.push_back(1);
    }
    ensure(*out[0], DType::i64, s);
    int64_t* y = out[0]->data<int64_t>();
    visit_dtype<kNumericTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* p = x.data<T>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t k = 0; k < inner; ++k) {
          const T* base = p + o * dim * inner + k;
          T best = base[0];
          int64_t at = 0;
          for (int64_t j = 1; j < dim; ++j) {
            const T v = base[j * inner];
            const bool better =
                kMax ? (v > best || (last_ && v == best)) : (v < best || (last_ && v == best));
            if (better) {
              best = v;
              at = j;
            }
          }
          y[o * inner + k] = at;
        }
    });
  }

 private:
  Node node_;
  int64_t axis_;
  bool keepdims_, last_;
};

}  // namespace

void register_reduce_ops(Registry& r) {
  r.add("ReduceSum", "ref", make_kernel<Reduce<Red::sum>>, true);
  r.add("ReduceMean", "ref", make_kernel<Reduce<Red::mean>>, true);
  r.add("ReduceMax", "ref", make_kernel<Reduce<Red::max>>, true);
  r.add("ReduceMin", "ref", make_kernel<Reduce<Red::min>>, true);
  r.add("ReduceProd", "ref", make_kernel<Reduce<Red::prod>>, true);
  r.add("ReduceL1", "ref", make_kernel<Reduce<Red::l1>>, true);
  r.add("ReduceL2", "ref", make_kernel<Reduce<Red::l2>>, true);
  r.add("ReduceSumSquare", "ref", make_kernel<Reduce<Red::sum_square>>, true);
  r.add("ReduceLogSum", "ref", make_kernel<Reduce<Red::log_sum>>, true);
  r.add("ReduceLogSumExp", "ref", make_kernel<Reduce<Red::log_sum_exp>>, true);
  r.add("ArgMax", "ref", make_kernel<ArgReduce<true>>, true);
  r.add("ArgMin", "ref", make_kernel<ArgReduce<false>>, true);
}

}  // namespace mixq
