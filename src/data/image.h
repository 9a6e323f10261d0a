// 8-bit image decoding (JPEG via libjpeg-turbo, PNG via libpng) that reproduces PIL's pixels, and
// PIL's mode conversions to gray ("L") and RGB.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mixq {

// Interleaved 8-bit pixels, row-major HWC; channels is 1 (gray) or 3 (RGB).
struct Image {
  int64_t height = 0;
  int64_t width = 0;
  int64_t channels = 0;
  std::vector<uint8_t> pixels;

  uint8_t* row(int64_t y) { return pixels.data() + y * width * channels; }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * channels; }
};

struct ImageSize {
  int64_t height = 0;
  int64_t width = 0;
};

// Decodes a JPEG or PNG, recognised by its first bytes (not its name, as PIL does). The result
// has the file's own colour model: gray (1) for gray/gray+alpha files, RGB (3) otherwise; alpha
// is dropped and palettes expanded. `where` names the source in errors.
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& where);
Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& where);
Image decode_png(const std::vector<uint8_t>& bytes, const std::string& where);

// Reads just enough of the header to give the image's size.
ImageSize decode_image_size(const std::vector<uint8_t>& bytes, const std::string& where);

// Reads a whole file; throws Error(path, ...) when it cannot.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Converts to 1 (PIL "L": (R*19595 + G*38470 + B*7471 + 0x8000) >> 16) or 3 channels (gray
// replicated). Returns the image unchanged when it already has that many channels.
Image convert_channels(Image img, int64_t channels);

}  // namespace mixq
