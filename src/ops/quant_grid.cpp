#include "ops/quant_grid.h"

#include <algorithm>
#include <cmath>

namespace mixq {

void ActQuant::fake_quantize(float* x, int64_t n) const {
  const float lo_q = static_cast<float>(qmin - zero_point);
  const float hi_q = static_cast<float>(qmax - zero_point);
  const float s = scale;
#pragma omp parallel for if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] = grid_code(x[i], s, lo_q, hi_q) * s;
}

void ActQuant::fake_quantize_reference(float* x, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) {
    float q = std::nearbyint(x[i] / scale) + static_cast<float>(zero_point);
    q = std::min(std::max(q, static_cast<float>(qmin)), static_cast<float>(qmax));
    x[i] = (q - static_cast<float>(zero_point)) * scale;
  }
}

}  // namespace mixq
