// Image preprocessing as torchvision does it on PIL images: convert, Resize(S) (shorter side, PIL
// bilinear with antialiasing), CenterCrop(H, W), ToTensor (x/255, HWC -> CHW), Normalize.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace mixq {

// torchvision Resize(int): the shorter side becomes `shorter`, the longer one
// int(shorter * long / short) (truncated as Python's int() does).
ImageSize resize_shorter_size(ImageSize in, int64_t shorter);

// PIL's Image.resize(..., BILINEAR): separable triangle filter whose support grows with the
// downscale factor (antialiasing), 22-bit fixed-point coefficients, horizontal pass first with
// the intermediate rounded to 8 bits, then the vertical pass. Bit-exact with Pillow 9.
Image resize_bilinear(const Image& in, int64_t height, int64_t width);

// torchvision CenterCrop: offsets round((size - crop) / 2) with Python's round-half-even;
// a crop larger than the image pads it with zeros first, as torchvision does.
Image center_crop(const Image& in, int64_t height, int64_t width);

// ToTensor + Normalize: x/255 then (x - mean[c]) / std[c] in float32 as torch computes it,
// written channel-major (CHW) to out. mean/std hold 1 value (all channels), C values, or are
// empty (0 and 1).
void normalize_to_chw(const Image& in, const std::vector<float>& mean,
                      const std::vector<float>& std, float* out);

// The whole per-image pipeline of a dataset.
struct Preprocessing {
  int64_t channels = 3;     // 1 (PIL "L") or 3 ("RGB")
  int64_t resize = 0;       // shorter side; 0 = keep the size
  int64_t crop_height = 0;  // 0 = no crop
  int64_t crop_width = 0;
  std::vector<float> mean;
  std::vector<float> std;

  // Size after resize and crop of an image of size `in`.
  ImageSize output_size(ImageSize in) const;
  // Runs the pipeline and writes channels*H*W floats to out. Throws Error(where, ...) when the
  // result is not `expect` (images of mixed sizes without resize/crop).
  void run(Image img, const std::string& where, ImageSize expect, float* out) const;
  // Checks mean/std against channels; `where` names the dataset in errors.
  void validate(const std::string& where) const;
};

}  // namespace mixq
