// The activation quantization grid: a scale, a zero point and the integer range [qmin, qmax].
// It lives in ops because the kernels (mixq.FakeQuant, mixq.QConv) compute it; quant's observers
// only choose its parameters. One rounding rule for all of them keeps FakeQuant in training, the
// integer QConv and the exported QuantizeLinear on the same codes.
#pragma once
#include <cstdint>

namespace mixq {

// The grid code of x before the zero point is added: clamp(round_half_even(x / scale), lo_q,
// hi_q) with integer bounds lo_q = qmin - zp, hi_q = qmax - zp. Clamp first (clamp and round
// commute for integer bounds), then round half to even by adding and subtracting 1.5 * 2^23:
// exact for |v| < 2^22 and vectorisable, unlike nearbyint. Division, not multiplication by
// 1/scale, keeps it bit-identical to ONNX QuantizeLinear. NaN stays NaN.
inline float grid_code(float x, float scale, float lo_q, float hi_q) {
  constexpr float kMagic = 12582912.0f;
  float v = x / scale;
  v = v < lo_q ? lo_q : v;
  v = v > hi_q ? hi_q : v;
  return (v + kMagic) - kMagic;
}

struct ActQuant {
  int bits = 8;
  float scale = 1;
  int32_t zero_point = 0;
  int32_t qmin = 0, qmax = 255;
  // x -> (clamp(round_half_even(x / scale) + zp, qmin, qmax) - zp) * scale, in place.
  void fake_quantize(float* x, int64_t n) const;
  // The same, written as the definition reads (tests compare the two).
  void fake_quantize_reference(float* x, int64_t n) const;
  float lo() const { return (qmin - zero_point) * scale; }
  float hi() const { return (qmax - zero_point) * scale; }
};

}  // namespace mixq
