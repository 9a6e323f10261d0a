// Fuzzes the image path of folder datasets: JPEG/PNG decoding, the header-only size read, the
// channel conversions and the preprocessing steps run on every decoded image.
#include "data/image.h"
#include "data/preprocess.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
  const std::vector<uint8_t> bytes(data, data + size);
  fuzz::accept_errors([&] {
    const Image img = decode_image(bytes, "fuzz.img");
    fuzz::require(img.height > 0 && img.width > 0, "a decoded image is not empty");
    fuzz::require(img.channels == 1 || img.channels == 3, "gray or RGB");
    fuzz::require(img.pixels.size() == static_cast<size_t>(img.height * img.width * img.channels),
                  "pixel count matches the size");
    // Datasets size their batches from the header: it must agree with the decoded image.
    const ImageSize s = decode_image_size(bytes, "fuzz.img");
    fuzz::require(s.height == img.height && s.width == img.width, "header size = decoded size");
    for (int64_t c : {1, 3}) {
      const Image conv = convert_channels(img, c);
      fuzz::require(conv.pixels.size() == static_cast<size_t>(img.height * img.width * c),
                    "converted pixel count");
    }
    // Small fixed outputs, so an odd-shaped input cannot ask for a huge result.
    const Image small = resize_bilinear(img, 5, 7);
    const Image crop = center_crop(small, 4, 9);
    std::vector<float> out(static_cast<size_t>(crop.channels * 4 * 9));
    normalize_to_chw(crop, {0.5f}, {0.25f}, out.data());
  });
  return 0;
}
