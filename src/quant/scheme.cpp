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

// SP2's split of the m - 1 magnitude bits into the exponent fields of q1 and q2.
struct Sp2Split {
  int m1, m2;      // field widths: ceil((bits-1)/2), floor((bits-1)/2)
  int64_t e1, e2;  // exponent ranges 1..e1, 1..e2 (0: term absent)
  int64_t e;       // common denominator 2^e
  explicit Sp2Split(int bits)
      : m1(bits / 2),
        m2((bits - 1) / 2),
        e1((int64_t{1} << m1) - 1),
        e2((int64_t{1} << m2) - 1),
        e(std::max(e1, e2)) {}
  // q1 + q2 over 2^e for exponent fields a, b.
  int64_t sum(int64_t a, int64_t b) const {
    return (a == 0 ? 0 : int64_t{1} << (e - a)) + (b == 0 ? 0 : int64_t{1} << (e - b));
  }
};

LevelSet sp2_levels(int bits) {
  const Sp2Split sp(bits);
  std::set<int64_t> ints;
  for (int64_t a = 0; a <= sp.e1; ++a)
    for (int64_t b = 0; b <= sp.e2; ++b) ints.insert(sp.sum(a, b));
  // The largest sum is 1 (= 2^e) from 3 bits on; at 2 bits q2 is empty and the top is 1/2.
  return from_integers(ints, *ints.rbegin());
}

const SchemeTraits kTraits[kSchemeCount] = {
    {"fixed", fixed_levels, false},
    {"pot", pot_levels, true},
    {"sp2", sp2_levels, true},
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

std::vector<Scheme> all_schemes() {
  std::vector<Scheme> out;
  for (int s = 0; s < kSchemeCount; ++s) out.push_back(static_cast<Scheme>(s));
  return out;
}

std::string scheme_names(const std::string& sep) {
  std::string out;
  for (Scheme s : all_schemes()) out += (out.empty() ? "" : sep) + scheme_name(s);
  return out;
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

uint32_t level_field(Scheme s, int bits, size_t level) {
  const LevelSet& ls = level_set(s, bits);
  check(level < ls.magnitudes.size(), "quantizer", "level index out of range");
  if (s != Scheme::sp2) return static_cast<uint32_t>(level);
  // The first (a, b) in order whose sum is the level: a deterministic choice among equal pairs.
  const Sp2Split sp(bits);
  const int64_t k = ls.integers[level];  // the sums themselves (over their largest, the top)
  for (int64_t a = 0; a <= sp.e1; ++a)
    for (int64_t b = 0; b <= sp.e2; ++b)
      if (sp.sum(a, b) == k) return static_cast<uint32_t>((a << sp.m2) | b);
  throw Error("quantizer", "SP2 level without exponent fields");
}

int64_t field_level(Scheme s, int bits, uint32_t field) {
  const LevelSet& ls = level_set(s, bits);
  if (field >> (bits - 1)) return -1;
  if (s != Scheme::sp2) return field < ls.magnitudes.size() ? static_cast<int64_t>(field) : -1;
  const Sp2Split sp(bits);
  const int64_t a = field >> sp.m2, b = field & ((int64_t{1} << sp.m2) - 1);
  if (a > sp.e1 || b > sp.e2) return -1;
  const int64_t k = sp.sum(a, b);
  auto it = std::lower_bound(ls.integers.begin(), ls.integers.end(), k);
  return it != ls.integers.end() && *it == k ? it - ls.integers.begin() : -1;
}

Scheme parse_scheme(const std::string& name, const std::string& where) {
  for (int s = 0; s < kSchemeCount; ++s)
    if (name == kTraits[s].name) return static_cast<Scheme>(s);
  throw Error(where, "unknown scheme '" + name + "' (" + scheme_names() + ")");
}

}  // namespace mixq
