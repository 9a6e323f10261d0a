// Numbers from command-line text: the whole string or nothing (no leading space, no trailing
// characters, finite), so "4x", " 4" and "nan" are refused instead of half-read.
#pragma once
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>

namespace mixq {

inline std::optional<double> parse_number(const std::string& s) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace mixq
