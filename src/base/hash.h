// Content hashes for identifying inputs across runs (resume decides by content, not by path):
// 64-bit FNV-1a, stable across machines and builds, written as 16 hex digits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mixq {

class Hasher {
 public:
  Hasher& add(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) h_ = (h_ ^ p[i]) * 0x100000001b3ULL;
    return *this;
  }
  // Strings carry their length, so ("ab", "c") and ("a", "bc") differ.
  Hasher& add(const std::string& s) {
    add(static_cast<uint64_t>(s.size()));
    return add(s.data(), s.size());
  }
  Hasher& add(uint64_t v) { return add(&v, sizeof v); }
  uint64_t value() const { return h_; }
  std::string hex() const {
    static const char* kDigits = "0123456789abcdef";
    std::string s(16, '0');
    for (int i = 0; i < 16; ++i) s[15 - i] = kDigits[(h_ >> (4 * i)) & 15];
    return s;
  }

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace mixq
