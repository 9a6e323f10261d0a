#include "quant/scheme.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <set>

#include "base/error.h"

namespace mixq {
namespace {

LevelSet from_integers(std::set<int64_t> ints, int64_t denominator) {
  LevelSet ls;
  ls.denominator = denominator;
  for (int64_t k : ints) {
    ls.integers.push_back(k);
    ls.magnitudes.push_back(static_cast<float>(static_cast<double>(k) / denominator));
  }
  return ls;
}

LevelSet fixed_levels(int bits) {
  const int64_t top = (int64_t{1} << (bits - 1)) - 1;
  std::set<int64_t> ints;
  for (int64_t k = 0; k <= top; ++k) ints.insert(k);
  return from_integers(ints, top);
}

LevelSet pot_levels(int bits) {
  const int64_t jmax = (int64_t{1} << (bits - 1)) - 2;  // smallest nonzero level 2^-jmax
  // Denominators past 2^62 cannot be held; clamp the exponent range (bits >= 7 only: their
  // extra levels are below 2^-62 * alpha and never chosen in practice).
  const int64_t j_cap = std::min<int64_t>(jmax, 62);
  std::set<int64_t> ints{0};
  for (int64_t j = 0; j <= j_cap; ++j) ints.insert(int64_t{1} << (j_cap - j));
  return from_integers(ints, int64_t{1} << j_cap);
}

LevelSet sp2_levels(int bits) {
  const int m1 = bits / 2;                    // ceil((bits-1)/2)
  const int m2 = (bits - 1) / 2;              // floor((bits-1)/2)
  const int64_t e1 = (int64_t{1} << m1) - 1;  // q1 exponents 1..e1
  const int64_t e2 = (int64_t{1} << m2) - 1;
  const int64_t e = std::max(e1, e2);
  // q = 2^-a, expressed over 2^e; the largest sum 1/2 + 1/2 = 1 is 2^e.
  std::set<int64_t> ints;
  for (int64_t a = 0; a <= e1; ++a)
    for (int64_t b = 0; b <= e2; ++b) {
      int64_t q1 = a == 0 ? 0 : int64_t{1} << (e - a);
      int64_t q2 = b == 0 ? 0 : int64_t{1} << (e - b);
      ints.insert(q1 + q2);
    }
  // The largest sum is 1 (= 2^e) from 3 bits on; at 2 bits q2 is empty and the top is 1/2.
  return from_integers(ints, *ints.rbegin());
}

const SchemeTraits kTraits[kSchemeCount] = {
    {"fixed", fixed_levels, false, 0},
    {"pot", pot_levels, true, 1},
    {"sp2", sp2_levels, true, 2},
};

}  // namespace

size_t LevelSet::nearest(float x) const {
  auto it = std::lower_bound(magnitudes.begin(), magnitudes.end(), x);
  if (it == magnitudes.begin()) return 0;
  if (it == magnitudes.end()) return magnitudes.size() - 1;
  size_t hi = static_cast<size_t>(it - magnitudes.begin());
  return (x - magnitudes[hi - 1] <= magnitudes[hi] - x) ? hi - 1 : hi;
}

const SchemeTraits& scheme_traits(Scheme s) {
  return kTraits[static_cast<int>(s)];
}

const char* scheme_name(Scheme s) {
  return scheme_traits(s).name;
}

const LevelSet& level_set(Scheme s, int bits) {
  check(bits >= kMinBits && bits <= kMaxBits, "quantizer",
        "bit-width " + std::to_string(bits) + " outside " + std::to_string(kMinBits) + ".." +
            std::to_string(kMaxBits));
  static std::array<std::array<LevelSet, kMaxBits + 1>, kSchemeCount> cache;
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sc = 0; sc < kSchemeCount; ++sc)
      for (int b = kMinBits; b <= kMaxBits; ++b) cache[sc][b] = kTraits[sc].levels(b);
  });
  return cache[static_cast<int>(s)][bits];
}

Scheme parse_scheme(const std::string& name, const std::string& where) {
  for (int s = 0; s < kSchemeCount; ++s)
    if (name == kTraits[s].name) return static_cast<Scheme>(s);
  throw Error(where, "unknown scheme '" + name + "' (fixed, pot, sp2)");
}

}  // namespace mixq
