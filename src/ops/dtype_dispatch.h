// Dtype sets and dispatch for kernels written once as templates over the element type
// (visit_dtype), with the conversions that keep every input free of undefined behaviour
// (saturate_cast, wrapping) and a vectorisable select (pick). The elementwise, activation,
// reduction and shape kernels share them.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "tensor/tensor.h"

namespace mixq {

// ---- dtype sets and dispatch ----------------------------------------------------------------

constexpr unsigned dtype_bit(DType t) {
  return 1u << static_cast<unsigned>(t);
}
inline constexpr unsigned kFloatTypes = dtype_bit(DType::f32) | dtype_bit(DType::f64);
inline constexpr unsigned kSignedIntTypes =
    dtype_bit(DType::i64) | dtype_bit(DType::i32) | dtype_bit(DType::i16) | dtype_bit(DType::i8);
inline constexpr unsigned kIntTypes = kSignedIntTypes | dtype_bit(DType::u8);
inline constexpr unsigned kNumericTypes = kFloatTypes | kIntTypes;
inline constexpr unsigned kBoolTypes = dtype_bit(DType::boolean);
inline constexpr unsigned kAllTypes = kNumericTypes | kBoolTypes;

inline bool dtype_in(unsigned types, DType t) {
  return (types & dtype_bit(t)) != 0;
}

// Calls f(TypeTag<T>{}) with the C++ type of t; throws Error(where) when t is not in Types.
// Only the types in Types are instantiated, so f may use operations they alone support.
template <unsigned Types, class F>
void visit_dtype(DType t, const std::string& where, F&& f) {
  check(dtype_in(Types, t), where, std::string("unsupported input type ") + dtype_name(t));
  visit_dtype(t, [&](auto tag) {
    if constexpr ((Types & dtype_bit(dtype_of<typename decltype(tag)::type>())) != 0) f(tag);
  });
}

// Converts a double to T: saturating for integers (NaN becomes 0) so no input can trigger the
// undefined behaviour of an out-of-range float-to-int conversion.
template <class T>
T saturate_cast(double v) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(v);
  } else {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  }
}

// Integer operands widened to the unsigned type of their promotion, so +, -, * wrap instead of
// overflowing; floats pass through.
template <class T>
auto wrapping(T v) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<std::make_unsigned_t<decltype(v + v)>>(v);
  else
    return v;
}

// c ? a : b. For float it blends bit patterns with a mask: GCC does not if-convert a float
// select whose operands are float arithmetic (they might trap under the default trapping math),
// so a plain ?: would keep loops using it from vectorising.
template <class T>
T pick(bool c, T a, T b) {
  if constexpr (std::is_same_v<T, float>) {
    const uint32_t m = 0u - static_cast<uint32_t>(c);
    return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & m) |
                                (std::bit_cast<uint32_t>(b) & ~m));
  } else {
    return c ? a : b;
  }
}

// ---- kernel argument helpers ----------------------------------------------------------------

inline const Tensor& arg(const std::vector<const Tensor*>& in, size_t i, const std::string& where) {
  check(i < in.size() && in[i] != nullptr, where, "missing required input " + std::to_string(i));
  return *in[i];
}
inline Tensor& result(const std::vector<Tensor*>& out, size_t i, const std::string& where) {
  check(i < out.size() && out[i] != nullptr, where, "missing output " + std::to_string(i));
  return *out[i];
}

}  // namespace mixq
