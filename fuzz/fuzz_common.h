// Shared by the fuzz targets. A reader may reject its input only by throwing mixq::Error; any
// other exception escapes LLVMFuzzerTestOneInput and libFuzzer reports it as a crash, as it does
// sanitizer reports, timeouts and allocations over -rss_limit_mb / -malloc_limit_mb.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/error.h"

namespace mixq::fuzz {

// Runs fn; an Error is the expected rejection of a bad input.
template <class Fn>
void accept_errors(Fn&& fn) {
  try {
    fn();
  } catch (const Error&) {
  }
}

// An invariant a successfully read input must satisfy; a violation is a finding.
inline void require(bool cond, const char* what) {
  if (cond) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// Runs fn, which must not be refused: e.g. reading back what mixq itself just wrote.
template <class Fn>
auto must_accept(Fn&& fn, const char* what) {
  try {
    return fn();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    require(false, what);
    throw;
  }
}

inline std::string as_string(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace mixq::fuzz
