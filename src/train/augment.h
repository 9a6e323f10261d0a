// Seeded image augmentation for training batches (NCHW float, after preprocessing): a random
// crop of the image padded by `pad` pixels on every side, and a random horizontal flip, as
// torchvision's RandomCrop(size, padding) and RandomHorizontalFlip. The padding is black in pixel
// space, which after normalisation is -mean/std per channel (fill). Each sample's draw depends
// only on (seed, epoch, position in the epoch), so a resumed run augments identically.
#pragma once
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace mixq {

struct AugmentOptions {
  int64_t pad = 0;          // random crop with this padding; 0 = no crop
  bool flip = false;        // random horizontal flip (probability 1/2)
  std::vector<float> fill;  // padding value per channel (1 or C values; empty = 0)
  bool enabled() const { return pad > 0 || flip; }
};

// The padding torchvision recipes use: 4 for 32x32 images, 2 for 28x28 (an eighth of the side,
// rounded down to even, at least 1).
int64_t default_crop_pad(int64_t height, int64_t width);

// Augments images [n, C, H, W] (f32) in place. Sample i uses the draw of position first + i.
void augment_batch(Tensor& images, const AugmentOptions& o, uint64_t seed, uint64_t epoch,
                   uint64_t first);

}  // namespace mixq
