// Integers read from untrusted JSON. nlohmann's get<int>() converts a floating-point number with
// a plain cast, undefined behaviour when it is outside the integer's range (1e300): readers check
// with json_int_fits first, which accepts only JSON integers within the type's range.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

namespace mixq {

// T: an integer type, or a container of one (std::vector<int>, Shape).
template <class T>
bool json_int_fits(const nlohmann::json& v) {
  if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned())
      return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    if (!v.is_number_integer()) return false;  // floats, strings, ...
    const int64_t x = v.get<int64_t>();        // negative here
    if constexpr (std::is_signed_v<T>) return x >= std::numeric_limits<T>::min();
    return false;
  } else {
    if (!v.is_array()) return false;
    for (const nlohmann::json& e : v)
      if (!json_int_fits<typename T::value_type>(e)) return false;
    return true;
  }
}

}  // namespace mixq
