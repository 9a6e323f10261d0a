// The unary and binary elementwise kernel templates (elementwise.cpp, elementwise_unary.cpp,
// activation.cpp, math_ops.cpp): an op is a small functor, and the template gives it a
// reference loop (the specification), an f32 fast path over the common layouts that falls back
// to that loop for anything else, and the backward pass from the derivatives the op declares.
#pragma once
#include <memory>
#include <string>
#include <type_traits>

#include "ops/broadcast.h"

namespace mixq {

// ---- kernel templates -----------------------------------------------------------------------

// An op functor is built from the node when it has such a constructor (attributes), else by
// default; it declares `static constexpr unsigned types`.
template <class Op>
Op make_op(const Node& node) {
  if constexpr (std::is_constructible_v<Op, const Node&>)
    return Op(node);
  else
    return Op();
}

// y = op(x) elementwise, same dtype and shape. Op: `template <class T> T operator()(T) const`,
// and optionally `float fast(float) const`, a vectorisable variant the fast path uses instead.
template <class Op>
class UnaryKernel : public Kernel {
 public:
  UnaryKernel(const Node& node, bool fast)
      : where_(node.label()), op_(make_op<Op>(node)), fast_(fast) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = arg(in, 0, where_);
    Tensor& y = result(out, 0, where_);
    visit_dtype<Op::types>(x.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(y, x.dtype(), x.shape());
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const int64_t n = x.numel();
      if constexpr (std::is_same_v<T, float>) {
        if (fast_) {
          const Op op = op_;
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
          for (int64_t i = 0; i < n; ++i) {
            if constexpr (requires { op.fast(0.0f); })
              py[i] = op.fast(px[i]);
            else
              py[i] = op(px[i]);
          }
          return;
        }
      }
      for (int64_t i = 0; i < n; ++i) py[i] = op_(px[i]);
    });
  }

  // Backward when Op has `template <class T> T grad(T x, T y) const`, dy/dx from the input and
  // the output; float types only.
  static constexpr bool kHasGrad = requires(const Op& op) {
    op.grad(0.0, 0.0);
  };
  bool has_backward() const override {
    return kHasGrad;
  }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if constexpr (!kHasGrad) {
      Kernel::backward(in, out, gout, gin);
    } else {
      Tensor* gx = grad_slot(gin, 0);
      if (!gx) return;
      const Tensor& x = arg(in, 0, where_);
      const Tensor& y = arg(out, 0, where_);
      const Tensor& gy = grad_arg(gout, 0, where_);
      visit_dtype<Op::types & kFloatTypes>(x.dtype(), where_, [&](auto tag) {
        using T = typename decltype(tag)::type;
        ensure(*gx, x.dtype(), x.shape());
        const T* px = x.data<T>();
        const T* py = y.data<T>();
        const T* pg = gy.data<T>();
        T* pgx = gx->data<T>();
        const int64_t n = x.numel();
        const Op op = op_;
        if (std::is_same_v<T, float> && fast_) {
#pragma omp parallel for simd if (n >= kParallelMin) schedule(static)
          for (int64_t i = 0; i < n; ++i) pgx[i] = pg[i] * op.grad(px[i], py[i]);
          return;
        }
        for (int64_t i = 0; i < n; ++i) pgx[i] = pg[i] * op.grad(px[i], py[i]);
      });
    }
  }

 private:
  std::string where_;
  Op op_;
  bool fast_;
};

template <class Op>
std::unique_ptr<Kernel> make_unary_ref(const Node& node, const Graph& graph) {
  if (!dtype_in(Op::types, input_dtype(node, graph, 0))) return nullptr;
  return std::make_unique<UnaryKernel<Op>>(node, false);
}
template <class Op>
std::unique_ptr<Kernel> make_unary_fast(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32) return nullptr;
  return std::make_unique<UnaryKernel<Op>>(node, true);
}
template <class Op>
void add_unary(Registry& r, const std::string& op_type, bool with_fast) {
  if (with_fast) r.add(op_type, "fast", &make_unary_fast<Op>, false);
  r.add(op_type, "ref", &make_unary_ref<Op>, true);
}

// y = op(a, b) with numpy broadcasting (or, when Unidirectional, b broadcast to a's shape as
// PRelu requires). Op: `template <class T> R operator()(T, T) const`; R is T or bool. An op may
// define `static Tensor adapt_second(const Tensor& a, const Tensor& b)` to reshape b first.
template <class Op, bool Unidirectional = false>
class BinaryKernel : public Kernel {
 public:
  BinaryKernel(const Node& node, bool fast)
      : where_(node.label()), op_(make_op<Op>(node)), fast_(fast) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& a = arg(in, 0, where_);
    Tensor b = arg(in, 1, where_);  // a view, so an op may reinterpret its shape
    if constexpr (requires { Op::adapt_second(a, b); }) b = Op::adapt_second(a, b);
    Tensor& y = result(out, 0, where_);
    check(a.dtype() == b.dtype(), where_,
          std::string("input types differ: ") + dtype_name(a.dtype()) + " and " +
              dtype_name(b.dtype()));
    Shape shape = broadcast_all({a.shape(), b.shape()}, where_);
    if constexpr (Unidirectional)
      check(shape == a.shape(), where_,
            "cannot broadcast " + shape_str(b.shape()) + " to " + shape_str(a.shape()));
    visit_dtype<Op::types>(a.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      using R = decltype(op_(T{}, T{}));
      ensure(y, dtype_of<R>(), shape);
      if constexpr (std::is_same_v<T, float>)
        if (fast_ && binary_fast_f32<R>(a, b, y, op_)) return;
      binary_reference<T, T, R>(a, b, y, op_);
    });
  }

  // Backward when Op has `template <class T> T da(T a, T b) const` and `db`, the partial
  // derivatives; float types only. Gradients are summed back over broadcast dimensions.
  static constexpr bool kHasGrad = requires(const Op& op) {
    op.da(0.0, 0.0);
    op.db(0.0, 0.0);
  };
  bool has_backward() const override { return kHasGrad; }

  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if constexpr (!kHasGrad) {
      Kernel::backward(in, out, gout, gin);
    } else {
      const Tensor& a = arg(in, 0, where_);
      const Tensor& b0 = arg(in, 1, where_);
      Tensor b = b0;
      if constexpr (requires { Op::adapt_second(a, b); }) b = Op::adapt_second(a, b);
      const Tensor& gy = grad_arg(gout, 0, where_);
      Tensor* ga = grad_slot(gin, 0);
      Tensor* gb = grad_slot(gin, 1);
      if (!ga && !gb) return;
      Tensor gb_view;  // the gradient in b's adapted shape, reshaped to b's own shape at the end
      visit_dtype<Op::types & kFloatTypes>(a.dtype(), where_, [&](auto tag) {
        using T = typename decltype(tag)::type;
        const Op op = op_;
        auto da = [op](T x, T e) { return op.da(x, e); };
        auto db = [op](T x, T e) { return op.db(x, e); };
        bool done = false;
        if constexpr (std::is_same_v<T, float>)
          if (fast_) done = binary_backward_fast_f32(a, b, gy, ga, gb ? &gb_view : nullptr, da, db);
        if (!done) binary_backward_reference<T, T>(a, b, gy, ga, gb ? &gb_view : nullptr, da, db);
      });
      if (gb) *gb = gb_view.reshaped(b0.shape());
    }
  }

 private:
  std::string where_;
  Op op_;
  bool fast_;
};

template <class Op, bool Unidirectional = false>
std::unique_ptr<Kernel> make_binary_ref(const Node& node, const Graph& graph) {
  if (!dtype_in(Op::types, input_dtype(node, graph, 0))) return nullptr;
  return std::make_unique<BinaryKernel<Op, Unidirectional>>(node, false);
}
template <class Op, bool Unidirectional = false>
std::unique_ptr<Kernel> make_binary_fast(const Node& node, const Graph& graph) {
  if (node.inputs.size() != 2 || input_dtype(node, graph, 0) != DType::f32 ||
      input_dtype(node, graph, 1) != DType::f32)
    return nullptr;
  return std::make_unique<BinaryKernel<Op, Unidirectional>>(node, true);
}

}  // namespace mixq
