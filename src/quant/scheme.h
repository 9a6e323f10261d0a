// Quantization schemes as one table, one row per scheme (in the style of ggml's type traits).
// Every scheme quantizes to sign * alpha * level, where the magnitudes form a fixed set in [0, 1]
// for a bit-width, and every level is an integer over a power-of-two-or-odd denominator, so a
// quantized row is an integer tensor times one per-row scale (what export and int8 kernels use).
//
//   fixed  m bits: k / (2^(m-1) - 1),  k = 0 .. 2^(m-1) - 1           (m=4: 15 levels k/7)
//   pot    m bits: 0 and 2^-j, j = 0 .. 2^(m-1) - 2                  (m=4: 0, 1/64 .. 1/2, 1)
//   sp2    m = 1 + m1 + m2 bits, m1 = ceil((m-1)/2), m2 = floor((m-1)/2):
//          q1 + q2, q1 in {0, 2^-1 .. 2^-(2^m1 - 1)}, q2 in {0, 2^-1 .. 2^-(2^m2 - 1)}, divided
//          by the largest sum (1) so the top level is alpha. m=4: {0,1/8,1/4,1/2,5/8,3/4,1},
//          13 signed levels. m=3: {0,1/2,1}; m=5: 11 magnitudes; m=6, m=8 likewise.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mixq {

enum class Scheme : uint8_t { fixed, pot, sp2 };
inline constexpr int kSchemeCount = 3;
inline constexpr int kMinBits = 2;
inline constexpr int kMaxBits = 8;

struct LevelSet {
  std::vector<float> magnitudes;  // ascending, magnitudes[0] == 0, back() == 1
  std::vector<int64_t> integers;  // magnitudes[i] == integers[i] / denominator exactly
  int64_t denominator = 1;
  // Index of the magnitude nearest to |x| (x already divided by alpha); ties go to the smaller.
  size_t nearest(float x) const;
};

struct SchemeTraits {
  const char* name;
  // Level set for a bit-width (2..8), including the sign bit.
  LevelSet (*levels)(int bits);
  // True when multiplying by a level needs no multiplier (shifts and adds only): the scheme's
  // rows run on the FPGA's LUT (shift) array, and MSQ may take it for its shift rows.
  bool multiplier_free;
};

const SchemeTraits& scheme_traits(Scheme s);
// The level set for (scheme, bits), computed once and cached.
const LevelSet& level_set(Scheme s, int bits);
const char* scheme_name(Scheme s);
// Every scheme, in table order.
std::vector<Scheme> all_schemes();
// "fixed, pot, sp2": the schemes' names in table order, joined by `sep`.
std::string scheme_names(const std::string& sep = ", ");
// The stored form of a level in `bits - 1` bits (the sign is kept apart), for packed weights:
// fixed and PoT store the level's index in the level set; SP2 stores its two exponent fields,
// (a << m2) | b with q1 = 2^-a, q2 = 2^-b (0 meaning the term is absent), so shift-add hardware
// reads its shift amounts directly. level_field takes an index into level_set(s, bits).magnitudes;
// field_level returns one, or -1 for a field no level has.
uint32_t level_field(Scheme s, int bits, size_t level);
int64_t field_level(Scheme s, int bits, uint32_t field);
// Parses "fixed", "pot", "sp2"; throws Error naming `where` otherwise.
Scheme parse_scheme(const std::string& name, const std::string& where);

}  // namespace mixq
