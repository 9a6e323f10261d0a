// Elementwise ops: arithmetic with numpy broadcasting, variadic Max/Min/Sum/Mean, comparisons,
// logic, Where, and the unary math functions. Integer arithmetic wraps (no undefined behaviour
// on overflow) and integer Div truncates like C; division by zero throws naming the node.
#include <cmath>
#include <cstring>

#include "ops/broadcast.h"

namespace mixq {
namespace {

// ---- binary ops -----------------------------------------------------------------------------

struct AddOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T a, T b) const {
    return static_cast<T>(wrapping(a) + wrapping(b));
  }
};
struct SubOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T a, T b) const {
    return static_cast<T>(wrapping(a) - wrapping(b));
  }
};
struct MulOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T a, T b) const {
    return static_cast<T>(wrapping(a) * wrapping(b));
  }
};
struct DivOp {
  static constexpr unsigned types = kNumericTypes;
  explicit DivOp(const Node& node) : where(node.label()) {}
  template <class T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) throw Error(where, "integer division by zero");
      if constexpr (std::is_signed_v<T>)
        if (b == -1) return static_cast<T>(0 - wrapping(a));  // INT_MIN / -1 wraps
    }
    return static_cast<T>(a / b);
  }
  std::string where;
};
template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>)
    return v != v;
  else
    return false;
}
// NaN in either operand gives NaN, as numpy's maximum / minimum.
struct MaxOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T a, T b) const {
    return pick((a < b) | is_nan(b), b, a);
  }
};
struct MinOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T a, T b) const {
    return pick((b < a) | is_nan(b), b, a);
  }
};

struct EqualOp {
  static constexpr unsigned types = kAllTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a == b;
  }
};
struct LessOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a < b;
  }
};
struct GreaterOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a > b;
  }
};
struct LessOrEqualOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a <= b;
  }
};
struct GreaterOrEqualOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  bool operator()(T a, T b) const {
    return a >= b;
  }
};
struct AndOp {
  static constexpr unsigned types = kBoolTypes;
  bool operator()(bool a, bool b) const { return a && b; }
};
struct OrOp {
  static constexpr unsigned types = kBoolTypes;
  bool operator()(bool a, bool b) const { return a || b; }
};
struct XorOp {
  static constexpr unsigned types = kBoolTypes;
  bool operator()(bool a, bool b) const { return a != b; }
};

// x ** e. Integer powers are exact (wrapping) by squaring; a negative integer exponent and any
// float operand go through double and convert back to x's type, saturating for integers.
template <class T, class U>
T pow_value(T x, U e) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<U, float>) {
    return std::pow(x, e);
  } else if constexpr (std::is_integral_v<T> && std::is_integral_v<U>) {
    if (e < 0) return saturate_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(e)));
    auto base = wrapping(x);
    decltype(base) acc = 1;
    for (auto n = static_cast<uint64_t>(e); n; n >>= 1) {
      if (n & 1) acc *= base;
      base *= base;
    }
    return static_cast<T>(acc);
  } else {
    return saturate_cast<T>(std::pow(static_cast<double>(x), static_cast<double>(e)));
  }
}

// Pow: the exponent may have another type than the base (opset 12+); the result has the base's.
class PowKernel : public Kernel {
 public:
  PowKernel(const Node& node, bool fast) : where_(node.label()), fast_(fast) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = arg(in, 0, where_);
    const Tensor& e = arg(in, 1, where_);
    Tensor& y = result(out, 0, where_);
    Shape shape = broadcast_all({x.shape(), e.shape()}, where_);
    visit_dtype<kNumericTypes>(x.dtype(), where_, [&](auto xt) {
      using T = typename decltype(xt)::type;
      visit_dtype<kNumericTypes>(e.dtype(), where_, [&](auto et) {
        using U = typename decltype(et)::type;
        ensure(y, x.dtype(), shape);
        auto f = [](T a, U b) { return pow_value<T, U>(a, b); };
        if constexpr (std::is_same_v<T, float> && std::is_same_v<U, float>)
          if (fast_ && binary_fast_f32<float>(x, e, y, f)) return;
        binary_reference<T, U, T>(x, e, y, f);
      });
    });
  }

 private:
  std::string where_;
  bool fast_;
};

std::unique_ptr<Kernel> make_pow_ref(const Node& node, const Graph& graph) {
  if (!dtype_in(kNumericTypes, input_dtype(node, graph, 0)) ||
      !dtype_in(kNumericTypes, input_dtype(node, graph, 1)))
    return nullptr;
  return std::make_unique<PowKernel>(node, false);
}
std::unique_ptr<Kernel> make_pow_fast(const Node& node, const Graph& graph) {
  if (input_dtype(node, graph, 0) != DType::f32 || input_dtype(node, graph, 1) != DType::f32)
    return nullptr;
  return std::make_unique<PowKernel>(node, true);
}

// Max, Min, Sum, Mean over one or more inputs, all broadcast together; folded left to right.
template <class Op, bool Mean>
class VariadicKernel : public Kernel {
 public:
  static constexpr unsigned types = Mean ? kFloatTypes : Op::types;
  explicit VariadicKernel(const Node& node) : where_(node.label()), op_(make_op<Op>(node)) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    check(!in.empty(), where_, "needs at least one input");
    std::vector<Shape> shapes;
    for (size_t i = 0; i < in.size(); ++i) {
      const Tensor& t = arg(in, i, where_);
      check(t.dtype() == in[0]->dtype(), where_,
            std::string("input types differ: ") + dtype_name(in[0]->dtype()) + " and " +
                dtype_name(t.dtype()));
      shapes.push_back(t.shape());
    }
    Shape shape = broadcast_all(shapes, where_);
    Tensor& y = result(out, 0, where_);
    visit_dtype<types>(in[0]->dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(y, in[0]->dtype(), shape);
      binary_reference<T, T, T>(y, *in[0], y, [](T, T b) { return b; });  // y = in[0]
      for (size_t i = 1; i < in.size(); ++i) binary_reference<T, T, T>(y, *in[i], y, op_);
      if constexpr (Mean) {
        T* p = y.data<T>();
        const T n = static_cast<T>(in.size());
        for (int64_t i = 0; i < y.numel(); ++i) p[i] /= n;
      }
    });
  }

 private:
  std::string where_;
  Op op_;
};

template <class Op, bool Mean>
std::unique_ptr<Kernel> make_variadic(const Node& node, const Graph& graph) {
  if (!dtype_in(VariadicKernel<Op, Mean>::types, input_dtype(node, graph, 0))) return nullptr;
  return std::make_unique<VariadicKernel<Op, Mean>>(node);
}

// Where(cond, x, y): three-way broadcast; x and y of any one type.
class WhereKernel : public Kernel {
 public:
  explicit WhereKernel(const Node& node) : where_(node.label()) {}

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& c = arg(in, 0, where_);
    const Tensor& a = arg(in, 1, where_);
    const Tensor& b = arg(in, 2, where_);
    check(c.dtype() == DType::boolean, where_,
          std::string("condition must be bool, got ") + dtype_name(c.dtype()));
    check(a.dtype() == b.dtype(), where_,
          std::string("input types differ: ") + dtype_name(a.dtype()) + " and " +
              dtype_name(b.dtype()));
    Shape shape = broadcast_all({c.shape(), a.shape(), b.shape()}, where_);
    Tensor& y = result(out, 0, where_);
    visit_dtype<kAllTypes>(a.dtype(), where_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      ensure(y, a.dtype(), shape);
      BroadcastLoop loop(shape, {c.shape(), a.shape(), b.shape()});
      const bool* pc = c.data<bool>();
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* py = y.data<T>();
      const int64_t n = loop.row_len(), sc = loop.step(0), sa = loop.step(1), sb = loop.step(2);
      loop.for_each_row([&](int64_t o, const int64_t* off) {
        for (int64_t i = 0; i < n; ++i)
          py[o + i] = pc[off[0] + i * sc] ? pa[off[1] + i * sa] : pb[off[2] + i * sb];
      });
    });
  }

 private:
  std::string where_;
};

std::unique_ptr<Kernel> make_where(const Node& node, const Graph&) {
  return std::make_unique<WhereKernel>(node);
}

// ---- unary ops ------------------------------------------------------------------------------

struct NegOp {
  static constexpr unsigned types = kFloatTypes | kSignedIntTypes;
  template <class T>
  T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>)
      return -x;
    else
      return static_cast<T>(0 - wrapping(x));
  }
};
struct AbsOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>)
      return std::fabs(x);
    else if constexpr (std::is_signed_v<T>)
      return x < 0 ? static_cast<T>(0 - wrapping(x)) : x;
    else
      return x;
  }
};
struct SignOp {
  static constexpr unsigned types = kNumericTypes;
  template <class T>
  T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>)
      return x > 0 ? T(1) : T(0);
    else
      return x > 0 ? T(1) : x < 0 ? T(-1) : x == 0 ? T(0) : x;  // NaN stays NaN
  }
};
struct NotOp {
  static constexpr unsigned types = kBoolTypes;
  bool operator()(bool x) const { return !x; }
};
struct ReciprocalOp {
  static constexpr unsigned types = kFloatTypes;
  template <class T>
  T operator()(T x) const {
    return T(1) / x;
  }
};

struct ExpOp {
  static constexpr unsigned types = kFloatTypes;
  template <class T>
  T operator()(T x) const {
    return std::exp(x);
  }
  float fast(float x) const { return vexp(x); }
};

// Float functions of <cmath>, one functor each.
#define MIXQ_FLOAT_UNARY(Name, expr)               \
  struct Name {                                    \
    static constexpr unsigned types = kFloatTypes; \
    template <class T>                             \
    T operator()(T x) const {                      \
      return expr;                                 \
    }                                              \
  };
MIXQ_FLOAT_UNARY(LogOp, std::log(x))
MIXQ_FLOAT_UNARY(SqrtOp, std::sqrt(x))
MIXQ_FLOAT_UNARY(FloorOp, std::floor(x))
MIXQ_FLOAT_UNARY(CeilOp, std::ceil(x))
MIXQ_FLOAT_UNARY(RoundOp, std::nearbyint(x))  // default rounding mode: half to even
MIXQ_FLOAT_UNARY(TanhOp, std::tanh(x))
MIXQ_FLOAT_UNARY(ErfOp, std::erf(x))
MIXQ_FLOAT_UNARY(SinOp, std::sin(x))
MIXQ_FLOAT_UNARY(CosOp, std::cos(x))
MIXQ_FLOAT_UNARY(TanOp, std::tan(x))
MIXQ_FLOAT_UNARY(AsinOp, std::asin(x))
MIXQ_FLOAT_UNARY(AcosOp, std::acos(x))
MIXQ_FLOAT_UNARY(AtanOp, std::atan(x))
MIXQ_FLOAT_UNARY(SinhOp, std::sinh(x))
MIXQ_FLOAT_UNARY(CoshOp, std::cosh(x))
MIXQ_FLOAT_UNARY(AsinhOp, std::asinh(x))
MIXQ_FLOAT_UNARY(AcoshOp, std::acosh(x))
MIXQ_FLOAT_UNARY(AtanhOp, std::atanh(x))
#undef MIXQ_FLOAT_UNARY

template <class Op>
void add_binary(Registry& r, const std::string& op_type, bool with_fast) {
  if (with_fast) r.add(op_type, "fast", &make_binary_fast<Op>, false);
  r.add(op_type, "ref", &make_binary_ref<Op>, true);
}

}  // namespace

void register_elementwise_ops(Registry& r) {
  add_binary<AddOp>(r, "Add", true);
  add_binary<SubOp>(r, "Sub", true);
  add_binary<MulOp>(r, "Mul", true);
  add_binary<DivOp>(r, "Div", true);
  r.add("Pow", "fast", &make_pow_fast, false);
  r.add("Pow", "ref", &make_pow_ref, true);
  // The variadic ops take the binary fast path when given exactly two f32 inputs.
  r.add("Max", "fast", &make_binary_fast<MaxOp>, false);
  r.add("Max", "ref", &make_variadic<MaxOp, false>, true);
  r.add("Min", "fast", &make_binary_fast<MinOp>, false);
  r.add("Min", "ref", &make_variadic<MinOp, false>, true);
  r.add("Sum", "fast", &make_binary_fast<AddOp>, false);
  r.add("Sum", "ref", &make_variadic<AddOp, false>, true);
  r.add("Mean", "ref", &make_variadic<AddOp, true>, true);

  add_binary<EqualOp>(r, "Equal", false);
  add_binary<LessOp>(r, "Less", false);
  add_binary<GreaterOp>(r, "Greater", false);
  add_binary<LessOrEqualOp>(r, "LessOrEqual", false);
  add_binary<GreaterOrEqualOp>(r, "GreaterOrEqual", false);
  add_binary<AndOp>(r, "And", false);
  add_binary<OrOp>(r, "Or", false);
  add_binary<XorOp>(r, "Xor", false);
  r.add("Where", "ref", &make_where, true);

  add_unary<NotOp>(r, "Not", false);
  add_unary<NegOp>(r, "Neg", true);
  add_unary<AbsOp>(r, "Abs", true);
  add_unary<SignOp>(r, "Sign", false);
  add_unary<ReciprocalOp>(r, "Reciprocal", true);
  add_unary<ExpOp>(r, "Exp", true);
  add_unary<LogOp>(r, "Log", true);
  add_unary<SqrtOp>(r, "Sqrt", true);
  add_unary<FloorOp>(r, "Floor", true);
  add_unary<CeilOp>(r, "Ceil", true);
  add_unary<RoundOp>(r, "Round", true);
  add_unary<TanhOp>(r, "Tanh", true);
  add_unary<ErfOp>(r, "Erf", true);
  add_unary<SinOp>(r, "Sin", false);
  add_unary<CosOp>(r, "Cos", false);
  add_unary<TanOp>(r, "Tan", false);
  add_unary<AsinOp>(r, "Asin", false);
  add_unary<AcosOp>(r, "Acos", false);
  add_unary<AtanOp>(r, "Atan", false);
  add_unary<SinhOp>(r, "Sinh", false);
  add_unary<CoshOp>(r, "Cosh", false);
  add_unary<AsinhOp>(r, "Asinh", false);
  add_unary<AcoshOp>(r, "Acosh", false);
  add_unary<AtanhOp>(r, "Atanh", false);
}

}  // namespace mixq
