// Ops that create or convert values: Cast, CastLike, ConstantOfShape, Range, Dropout (inference,
// and training with a reproducible mask). Backward: Cast and CastLike (between float types),
// Dropout.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// ONNX TensorProto.DataType codes of the types mixq has; others (float16, string, ...) have none.
std::optional<DType> dtype_from_onnx_code(int64_t code) {
  for (const DTypeTraits& t : kDTypeTraits)
    if (t.onnx == code) return t.dtype;
  return std::nullopt;
}

// ONNX Cast semantics: to bool is x != 0; float to integer truncates toward zero. Out-of-range
// and NaN values are undefined in ONNX; they saturate (NaN gives 0) so the result is defined.
template <class D, class S>
D convert(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    if (std::isnan(v)) return 0;
    if (v <= static_cast<S>(std::numeric_limits<D>::min())) return std::numeric_limits<D>::min();
    if (v >= static_cast<S>(std::numeric_limits<D>::max())) return std::numeric_limits<D>::max();
    return static_cast<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

void cast_into(const Tensor& x, DType to, Tensor& y) {
  if (x.dtype() == to) {
    y = x;  // no conversion: share the storage
    return;
  }
  ensure(y, to, x.shape());
  const int64_t n = x.numel();
  visit_dtype(x.dtype(), [&](auto s) {
    using S = typename decltype(s)::type;
    visit_dtype(to, [&](auto d) {
      using D = typename decltype(d)::type;
      const S* src = static_cast<const S*>(x.raw());
      D* dst = static_cast<D*>(y.raw());
      for (int64_t i = 0; i < n; ++i) dst[i] = convert<D, S>(src[i]);
    });
  });
}

bool is_float(DType t) {
  return t == DType::f32 || t == DType::f64;
}

// Backward of a cast: between float types the gradient is cast back to the input's type; a float
// input cast to a non-float type gets a zero gradient (the output is piecewise constant in it).
void cast_backward(const Tensor& x, const std::vector<const Tensor*>& gout, Tensor* gx,
                   const Node& node) {
  if (!gx || !is_float(x.dtype())) return;
  if (!gout.empty() && gout[0] && is_float(gout[0]->dtype())) {
    check(gout[0]->shape() == x.shape(), node.label(), "gradient has the wrong shape");
    cast_into(*gout[0], x.dtype(), *gx);
    return;
  }
  *gx = Tensor(x.dtype(), x.shape());
}

class Cast final : public Kernel {
 public:
  Cast(const Node& node, DType to) : node_(node), to_(to) {}
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    cast_into(required_input(in, 0, node_), to_, *out[0]);
  }
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (!gin.empty()) cast_backward(required_input(in, 0, node_), gout, gin[0], node_);
  }

 private:
  Node node_;
  DType to_;
};

std::unique_ptr<Kernel> make_cast(const Node& node, const Graph&) {
  check(node.has("to"), node.label(), "missing attribute 'to'");
  auto to = dtype_from_onnx_code(node.get_int("to", 0));
  if (!to) return nullptr;  // a type mixq has no DType for
  return std::make_unique<Cast>(node, *to);
}

// CastLike (opset 15): the target type is the type of the second input.
class CastLike final : public Kernel {
 public:
  CastLike(const Node& node, const Graph&) : node_(node) {}
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    cast_into(required_input(in, 0, node_), required_input(in, 1, node_).dtype(), *out[0]);
  }
  // The output does not depend on the values of the second input: its gradient is zero.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (!gin.empty()) cast_backward(required_input(in, 0, node_), gout, gin[0], node_);
    if (grad_slot(gin, 1)) {
      const Tensor& like = required_input(in, 1, node_);
      if (is_float(like.dtype())) *gin[1] = Tensor(like.dtype(), like.shape());
    }
  }

 private:
  Node node_;
};

class ConstantOfShape final : public Kernel {
 public:
  ConstantOfShape(const Node& node, const Graph&) : node_(node) {
    if (const Tensor* v = node.get_tensor("value")) {
      check(v->numel() == 1, node.label(), "'value' must hold exactly one element");
      value_ = *v;
    } else {
      value_ = Tensor::scalar_f32(0.f);
    }
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    Shape s = required_input(in, 0, node_).to_ints();
    for (int64_t d : s) check(d >= 0, node_.label(), "negative dimension in " + shape_str(s));
    ensure(*out[0], value_.dtype(), s);
    const size_t es = dtype_size(value_.dtype());
    auto* dst = static_cast<std::byte*>(out[0]->raw());
    for (int64_t i = 0; i < out[0]->numel(); ++i) std::memcpy(dst + i * es, value_.raw(), es);
  }

 private:
  Node node_;
  Tensor value_;
};

class Range final : public Kernel {
 public:
  Range(const Node& node, const Graph&) : node_(node) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& start = required_input(in, 0, node_);
    const Tensor& limit = required_input(in, 1, node_);
    const Tensor& delta = required_input(in, 2, node_);
    check(start.numel() == 1 && limit.numel() == 1 && delta.numel() == 1, node_.label(),
          "start, limit and delta must be scalars");
    check(start.dtype() == limit.dtype() && start.dtype() == delta.dtype(), node_.label(),
          "start, limit and delta must have one type");
    check(start.dtype() != DType::boolean, node_.label(), "bool is not a Range type");
    visit_dtype(start.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (!std::is_same_v<T, bool>) run<T>(start, limit, delta, *out[0]);
    });
  }

 private:
  template <class T>
  void run(const Tensor& start, const Tensor& limit, const Tensor& delta, Tensor& y) {
    const T s = *static_cast<const T*>(start.raw());
    const T l = *static_cast<const T*>(limit.raw());
    const T d = *static_cast<const T*>(delta.raw());
    check(d != T(0), node_.label(), "delta is zero");
    int64_t n = 0;
    if constexpr (std::is_floating_point_v<T>) {
      const double c = std::ceil(static_cast<double>((l - s) / d));
      check(std::isfinite(c) && c < 1e10, node_.label(), "range is too long");
      n = std::max<int64_t>(0, static_cast<int64_t>(c));
    } else {
      // Exact integer ceil((l - s) / d), clamped at zero.
      const int64_t diff = static_cast<int64_t>(l) - static_cast<int64_t>(s);
      const int64_t step = static_cast<int64_t>(d);
      if ((diff > 0 && step > 0) || (diff < 0 && step < 0)) {
        const int64_t ad = diff < 0 ? -diff : diff, as = step < 0 ? -step : step;
        n = (ad + as - 1) / as;
      }
      check(n < 10'000'000'000, node_.label(), "range is too long");
    }
    ensure(y, dtype_of<T>(), {n});
    T* p = y.data<T>();
    // The ONNX definition accumulates: x[i] = x[i-1] + delta.
    T v = s;
    for (int64_t i = 0; i < n; ++i) {
      p[i] = v;
      v = static_cast<T>(v + d);
    }
  }

  Node node_;
};

// splitmix64: a counter-based generator, so element i of call c draws the same bits whatever
// the threading.
inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Dropout. In inference (the default) the output is the input and the optional mask keeps
// everything. In training mode (set_training(true)) with a ratio > 0 it drops each element with
// probability ratio and scales the kept ones by 1 / (1 - ratio); the mask comes from a
// deterministic generator keyed by the node's `seed` attribute and a count of training calls,
// so a run is reproducible, and backward applies the mask of the last forward.
class Dropout final : public Kernel {
 public:
  Dropout(const Node& node, const Graph& graph)
      : node_(node),
        mask_bool_(graph.opset >= 10),
        ratio_attr_(node.get_float("ratio", 0.5f)),
        seed_(static_cast<uint64_t>(node.get_int("seed", 0))) {}

  void set_training(bool training) override { training_ = training; }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    // Opset 12 made the ratio an input (default 0.5); before it is an attribute.
    const bool ratio_input = optional_input(in, 1);
    if (ratio_input) check(in[1]->numel() == 1, node_.label(), "ratio must be a scalar");
    const double ratio = ratio_input ? in[1]->get_double(0) : ratio_attr_;
    if (!training_ && optional_input(in, 2) && in[2]->numel() == 1 && in[2]->get_int(0) != 0)
      check(ratio == 0, node_.label(),
            "training-mode dropout with a nonzero ratio is not supported");
    dropping_ = training_ && ratio > 0;
    if (!dropping_) {
      keep_.clear();
      *out[0] = x;
      fill_mask(x, out, nullptr);
      return;
    }
    check(ratio < 1, node_.label(), "ratio must be below 1, got " + std::to_string(ratio));
    check(is_float(x.dtype()), node_.label(),
          std::string("training-mode dropout needs a float input, got ") + dtype_name(x.dtype()));
    const int64_t n = x.numel();
    keep_.resize(n);
    scale_ = 1.0 / (1.0 - ratio);
    // Drop when a uniform draw in [0, 1) (53 bits) falls below the ratio.
    const uint64_t key = mix64(seed_ ^ mix64(calls_++));
    const uint64_t threshold = static_cast<uint64_t>(std::ldexp(ratio, 53));
    uint8_t* keep = keep_.data();
#pragma omp parallel for schedule(static) if (n > (int64_t{1} << 18))
    for (int64_t i = 0; i < n; ++i)
      keep[i] = (mix64(key + static_cast<uint64_t>(i)) >> 11) >= threshold;
    ensure(*out[0], x.dtype(), x.shape());
    apply_mask(x, *out[0]);
    fill_mask(x, out, keep);
  }

  bool has_backward() const override {
    return true;
  }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    check(!gout.empty() && gout[0], node_.label(), "no gradient for output 0");
    const Tensor& gy = *gout[0];
    check(gy.shape() == x.shape(), node_.label(), "gradient has the wrong shape");
    if (!dropping_) {
      *gin[0] = gy;
      return;
    }
    check(static_cast<int64_t>(keep_.size()) == gy.numel(), node_.label(),
          "backward does not follow a training-mode forward");
    ensure(*gin[0], gy.dtype(), gy.shape());
    apply_mask(gy, *gin[0]);
  }

 private:
  // y = x * keep * scale.
  void apply_mask(const Tensor& x, Tensor& y) const {
    const int64_t n = x.numel();
    const uint8_t* keep = keep_.data();
    visit_dtype(x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_floating_point_v<T>) {
        const T* px = x.data<T>();
        T* py = y.data<T>();
        const T s = static_cast<T>(scale_);
#pragma omp parallel for simd schedule(static) if (n > (int64_t{1} << 18))
        for (int64_t i = 0; i < n; ++i) py[i] = keep[i] ? px[i] * s : T(0);
      }
    });
  }

  // The optional mask output: keep (all ones when keep is null). Opset 10 made it bool; before
  // it has the input's type.
  void fill_mask(const Tensor& x, const std::vector<Tensor*>& out, const uint8_t* keep) const {
    if (out.size() < 2 || !out[1]) return;
    const DType mt = mask_bool_ ? DType::boolean : x.dtype();
    ensure(*out[1], mt, x.shape());
    visit_dtype(mt, [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* p = static_cast<T*>(out[1]->raw());
      for (int64_t i = 0; i < x.numel(); ++i) p[i] = static_cast<T>(keep ? keep[i] : 1);
    });
  }

  Node node_;
  bool mask_bool_;
  float ratio_attr_;
  uint64_t seed_;
  bool training_ = false;
  bool dropping_ = false;  // the last forward dropped
  uint64_t calls_ = 0;
  double scale_ = 1;
  std::vector<uint8_t> keep_;
};

// Declines (nullptr) a Dropout whose training_mode is decided at run time or is true with a
// ratio that is not a constant 0: such a node is random, not an inference computation.
std::unique_ptr<Kernel> make_dropout(const Node& node, const Graph& graph) {
  if (node.has_input(2)) {
    const int t = node.inputs[2];
    if (!graph.is_constant(t) || graph.constant(t).numel() != 1) return nullptr;
    if (graph.constant(t).get_int(0) != 0) {
      const bool zero_ratio = node.has_input(1) && graph.is_constant(node.inputs[1]) &&
                              graph.constant(node.inputs[1]).numel() == 1 &&
                              graph.constant(node.inputs[1]).get_double(0) == 0;
      if (!zero_ratio) return nullptr;
    }
  }
  return std::make_unique<Dropout>(node, graph);
}

}  // namespace

void register_shape_convert_ops(Registry& r) {
  r.add("Cast", "ref", make_cast, true);
  r.add("CastLike", "ref", make_kernel<CastLike>, true);
  r.add("ConstantOfShape", "ref", make_kernel<ConstantOfShape>, true);
  r.add("Range", "ref", make_kernel<Range>, true);
  r.add("Dropout", "ref", make_dropout, true);
}

}  // namespace mixq
