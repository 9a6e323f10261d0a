// Elementwise unary ops: Neg, Abs, Sign, Not, Reciprocal, Exp and the float functions of
// <cmath>, on the unary kernel template of ops/elementwise_kernel.h. Backward (float types) for the
// differentiable ones, from their input and output; rounding, sign and Not have none.
#include <cmath>
#include <cstring>

#include "ops/broadcast.h"
#include "ops/elementwise_kernel.h"

namespace mixq {
namespace {

struct NegOp {
  static constexpr unsigned types = kFloatTypes | kSignedIntTypes;
  template <class T>
  T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>)
      return -x;
    else
      return static_cast<T>(0 - wrapping(x));
  }
  template <class T>
  T grad(T, T) const {
    return T(-1);
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
  template <class T>
  T grad(T x, T) const {
    return pick(x > T(0), T(1), pick(x < T(0), T(-1), T(0)));
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
  template <class T>
  T grad(T, T y) const {
    return -y * y;
  }
};

struct ExpOp {
  static constexpr unsigned types = kFloatTypes;
  template <class T>
  T operator()(T x) const {
    return std::exp(x);
  }
  float fast(float x) const { return vexp(x); }
  template <class T>
  T grad(T, T y) const {
    return y;
  }
};

// Float functions of <cmath>, one functor each; the differentiable ones with their derivative
// (the optional third argument) written from the input x and output y.
#define MIXQ_FLOAT_UNARY(Name, expr, ...)                                            \
  struct Name {                                                                      \
    static constexpr unsigned types = kFloatTypes;                                   \
    template <class T>                                                               \
    T operator()(T x) const {                                                        \
      return expr;                                                                   \
    }                                                                                \
    __VA_OPT__(template <class T> T grad([[maybe_unused]] T x, [[maybe_unused]] T y) \
                   const { return __VA_ARGS__; })                                    \
  };
MIXQ_FLOAT_UNARY(LogOp, std::log(x), T(1) / x)
MIXQ_FLOAT_UNARY(SqrtOp, std::sqrt(x), T(0.5) / y)
MIXQ_FLOAT_UNARY(FloorOp, std::floor(x))
MIXQ_FLOAT_UNARY(CeilOp, std::ceil(x))
MIXQ_FLOAT_UNARY(RoundOp, std::nearbyint(x))  // default rounding mode: half to even
MIXQ_FLOAT_UNARY(TanhOp, std::tanh(x), T(1) - y * y)
MIXQ_FLOAT_UNARY(ErfOp, std::erf(x), T(1.1283791670955126) * std::exp(-x * x))  // 2/sqrt(pi)
MIXQ_FLOAT_UNARY(SinOp, std::sin(x), std::cos(x))
MIXQ_FLOAT_UNARY(CosOp, std::cos(x), -std::sin(x))
MIXQ_FLOAT_UNARY(TanOp, std::tan(x), T(1) + y * y)
MIXQ_FLOAT_UNARY(AsinOp, std::asin(x), T(1) / std::sqrt(T(1) - x * x))
MIXQ_FLOAT_UNARY(AcosOp, std::acos(x), T(-1) / std::sqrt(T(1) - x * x))
MIXQ_FLOAT_UNARY(AtanOp, std::atan(x), T(1) / (T(1) + x * x))
MIXQ_FLOAT_UNARY(SinhOp, std::sinh(x), std::cosh(x))
MIXQ_FLOAT_UNARY(CoshOp, std::cosh(x), std::sinh(x))
MIXQ_FLOAT_UNARY(AsinhOp, std::asinh(x), T(1) / std::sqrt(x * x + T(1)))
MIXQ_FLOAT_UNARY(AcoshOp, std::acosh(x), T(1) / std::sqrt(x * x - T(1)))
MIXQ_FLOAT_UNARY(AtanhOp, std::atanh(x), T(1) / (T(1) - x * x))
#undef MIXQ_FLOAT_UNARY

}  // namespace

void register_unary_ops(Registry& r) {
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
