#include "data/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"

namespace mixq {

namespace {

// Pillow's Resample.c: 8 bits of result, 2 of headroom, the rest fraction.
constexpr int kPrecisionBits = 32 - 8 - 2;

double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Per output index: first input index, tap count and ksize fixed-point weights (Pillow's
// precompute_coeffs + normalize_coeffs_8bpc for the BILINEAR filter, box = whole image).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;
};

Coeffs bilinear_coeffs(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size * c.ksize), 0);
  std::vector<double> w(c.ksize);
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // C truncation, as Pillow
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = static_cast<int>(in_size);
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = triangle((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[xx * c.ksize + x] = static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits)
                                                         : 0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

uint8_t clip8(int v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over rows [y0, y0 + rows) of in.
Image resample_horizontal(const Image& in, int64_t y0, int64_t rows, const Coeffs& c,
                          int64_t width) {
  Image out;
  out.height = rows;
  out.width = width;
  out.channels = in.channels;
  out.pixels.resize(static_cast<size_t>(rows * width * in.channels));
  const int64_t ch = in.channels;
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* src = in.row(y0 + y);
    uint8_t* dst = out.row(y);
    for (int64_t xx = 0; xx < width; ++xx) {
      const int32_t* k = &c.k[xx * c.ksize];
      const uint8_t* s = src + c.first[xx] * ch;
      for (int64_t b = 0; b < ch; ++b) {
        int acc = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < c.count[xx]; ++x) acc += s[x * ch + b] * k[x];
        dst[xx * ch + b] = clip8(acc);
      }
    }
  }
  return out;
}

// Vertical pass; c.first is relative to in's first row.
Image resample_vertical(const Image& in, const Coeffs& c, int64_t height) {
  Image out;
  out.height = height;
  out.width = in.width;
  out.channels = in.channels;
  const int64_t rowlen = in.width * in.channels;
  out.pixels.resize(static_cast<size_t>(height * rowlen));
  for (int64_t yy = 0; yy < height; ++yy) {
    const int32_t* k = &c.k[yy * c.ksize];
    uint8_t* dst = out.row(yy);
    for (int64_t i = 0; i < rowlen; ++i) {
      int acc = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < c.count[yy]; ++y) acc += in.row(c.first[yy] + y)[i] * k[y];
      dst[i] = clip8(acc);
    }
  }
  return out;
}

}  // namespace

ImageSize resize_shorter_size(ImageSize in, int64_t shorter) {
  check(shorter > 0, "resize", "size must be positive");
  const bool wide = in.width >= in.height;
  const int64_t s = wide ? in.height : in.width;
  const int64_t l = wide ? in.width : in.height;
  // Python: int(size * long / short), a float division then truncation.
  const auto nl = static_cast<int64_t>(static_cast<double>(shorter * l) / static_cast<double>(s));
  return wide ? ImageSize{shorter, nl} : ImageSize{nl, shorter};
}

Image resize_bilinear(const Image& in, int64_t height, int64_t width) {
  check(height > 0 && width > 0, "resize", "output size must be positive");
  if (height == in.height && width == in.width) return in;
  const Coeffs horiz = bilinear_coeffs(in.width, width);
  Coeffs vert = bilinear_coeffs(in.height, height);
  const bool need_h = width != in.width;
  const bool need_v = height != in.height;
  if (!need_h) return resample_vertical(in, vert, height);
  // Only the input rows the vertical pass reads go through the horizontal pass.
  const int y_first = vert.first.front();
  const int y_last = vert.first.back() + vert.count.back();
  for (int& f : vert.first) f -= y_first;
  Image tmp = resample_horizontal(in, y_first, y_last - y_first, horiz, width);
  return need_v ? resample_vertical(tmp, vert, height) : tmp;
}

Image center_crop(const Image& in, int64_t height, int64_t width) {
  check(height > 0 && width > 0, "center crop", "crop size must be positive");
  // Zero padding (left/top get the smaller half), then torchvision's offsets.
  const int64_t pad_top = height > in.height ? (height - in.height) / 2 : 0;
  const int64_t pad_left = width > in.width ? (width - in.width) / 2 : 0;
  const int64_t ph = std::max(height, in.height), pw = std::max(width, in.width);
  auto round_half_even_half = [](int64_t d) {  // round(d / 2.0) in Python
    const int64_t q = d / 2;
    return d % 2 == 0 ? q : q + (q % 2);
  };
  const int64_t top = round_half_even_half(ph - height) - pad_top;
  const int64_t left = round_half_even_half(pw - width) - pad_left;
  Image out;
  out.height = height;
  out.width = width;
  out.channels = in.channels;
  out.pixels.assign(static_cast<size_t>(height * width * in.channels), 0);
  const int64_t ch = in.channels;
  for (int64_t y = 0; y < height; ++y) {
    const int64_t sy = top + y;
    if (sy < 0 || sy >= in.height) continue;
    const int64_t x0 = std::max<int64_t>(0, -left);
    const int64_t x1 = std::min(width, in.width - left);
    if (x1 > x0)
      std::memcpy(out.row(y) + x0 * ch, in.row(sy) + (left + x0) * ch,
                  static_cast<size_t>((x1 - x0) * ch));
  }
  return out;
}

void normalize_to_chw(const Image& in, const std::vector<float>& mean,
                      const std::vector<float>& std, float* out) {
  const int64_t ch = in.channels, hw = in.height * in.width;
  for (int64_t c = 0; c < ch; ++c) {
    const float m = mean.empty() ? 0.0f : mean[mean.size() == 1 ? 0 : c];
    const float s = std.empty() ? 1.0f : std[std.size() == 1 ? 0 : c];
    const uint8_t* src = in.pixels.data() + c;
    float* dst = out + c * hw;
    for (int64_t i = 0; i < hw; ++i) dst[i] = (static_cast<float>(src[i * ch]) / 255.0f - m) / s;
  }
}

ImageSize Preprocessing::output_size(ImageSize in) const {
  ImageSize s = resize > 0 ? resize_shorter_size(in, resize) : in;
  if (crop_height > 0) s = {crop_height, crop_width};
  return s;
}

void Preprocessing::run(Image img, const std::string& where, ImageSize expect, float* out) const {
  img = convert_channels(std::move(img), channels);
  if (resize > 0) {
    const ImageSize s = resize_shorter_size({img.height, img.width}, resize);
    img = resize_bilinear(img, s.height, s.width);
  }
  if (crop_height > 0) img = center_crop(img, crop_height, crop_width);
  check(img.height == expect.height && img.width == expect.width, where,
        "image is " + std::to_string(img.height) + "x" + std::to_string(img.width) +
            " after preprocessing but the dataset's samples are " + std::to_string(expect.height) +
            "x" + std::to_string(expect.width) + " (set resize and/or crop)");
  normalize_to_chw(img, mean, std, out);
}

void Preprocessing::validate(const std::string& where) const {
  check(channels == 1 || channels == 3, where, "channels must be 1 or 3");
  check(resize >= 0, where, "resize must be positive");
  check((crop_height > 0) == (crop_width > 0) && crop_height >= 0, where, "crop must be positive");
  auto count_ok = [&](const std::vector<float>& v) {
    return v.empty() || v.size() == 1 || static_cast<int64_t>(v.size()) == channels;
  };
  const std::string expected =
      channels == 1 ? "expected 1 (1 channel)" : "expected 1 or " + std::to_string(channels);
  check(count_ok(mean), where, "mean has " + std::to_string(mean.size()) + " values, " + expected);
  check(count_ok(std), where, "std has " + std::to_string(std.size()) + " values, " + expected);
  for (float s : std) check(s != 0.0f && std::isfinite(s), where, "std values must be nonzero");
  for (float m : mean) check(std::isfinite(m), where, "mean values must be finite");
}

}  // namespace mixq
