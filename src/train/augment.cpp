#include "train/augment.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "base/rng.h"

namespace mixq {

int64_t default_crop_pad(int64_t height, int64_t width) {
  const int64_t side = std::min(height, width);
  return std::max<int64_t>(1, (side / 8) & ~int64_t{1});
}

void augment_batch(Tensor& images, const AugmentOptions& o, uint64_t seed, uint64_t epoch,
                   uint64_t first) {
  if (!o.enabled()) return;
  check(images.dtype() == DType::f32 && images.rank() == 4, "augment",
        "needs float32 NCHW images, got " + shape_str(images.shape()));
  check(o.pad >= 0, "augment", "padding must be non-negative");
  const int64_t n = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);
  check(o.fill.empty() || o.fill.size() == 1 || static_cast<int64_t>(o.fill.size()) == c, "augment",
        "fill needs 1 or " + std::to_string(c) + " values");
  if (!images.unique()) images = images.clone();
  float* data = images.data<float>();
  const int64_t plane = h * w;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    Rng rng(mix_seed({seed, epoch, first + static_cast<uint64_t>(i), 0x617567ull}));
    // Offsets of the crop window in the padded image, then the flip: always both draws, so
    // turning one off does not change the other's stream.
    const int64_t dy = static_cast<int64_t>(rng.below(2 * o.pad + 1)) - o.pad;
    const int64_t dx = static_cast<int64_t>(rng.below(2 * o.pad + 1)) - o.pad;
    const bool flip = (rng.next() >> 63) != 0;
    const int64_t oy = o.pad > 0 ? dy : 0, ox = o.pad > 0 ? dx : 0;
    const bool fl = o.flip && flip;
    if (oy == 0 && ox == 0 && !fl) continue;
    std::vector<float> src(static_cast<size_t>(plane));
    for (int64_t ch = 0; ch < c; ++ch) {
      float* p = data + (i * c + ch) * plane;
      std::memcpy(src.data(), p, sizeof(float) * plane);
      const float fill = o.fill.empty() ? 0.f : o.fill[o.fill.size() == 1 ? 0 : ch];
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = y + oy;
        for (int64_t x = 0; x < w; ++x) {
          // Crop from the padded image, then mirror the crop.
          const int64_t sx = (fl ? w - 1 - x : x) + ox;
          p[y * w + x] = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[sy * w + sx] : fill;
        }
      }
    }
  }
}

}  // namespace mixq
