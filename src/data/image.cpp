#include "data/image.h"

// jpeglib.h needs FILE declared first.
#include <cstdio>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "base/memory.h"

namespace mixq {

namespace {

// PIL refuses images above twice its MAX_IMAGE_PIXELS as decompression bombs; so do we.
constexpr int64_t kMaxPixels = 2 * 89478485;

void check_dims(int64_t w, int64_t h, const std::string& where) {
  check(w > 0 && h > 0, where, "image has an empty size");
  check(w * h <= kMaxPixels, where,
        "image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels is too large");
  // Decoded bytes plus the float copy preprocessing makes, for up to four channels.
  check_memory(static_cast<double>(w) * static_cast<double>(h) * 4 * (1 + sizeof(float)), where,
               "decoding an image of " + std::to_string(w) + "x" + std::to_string(h) + " pixels");
}

// ---- JPEG ----------------------------------------------------------------------------------
// libjpeg reports errors through a callback that must not return; the default one calls exit().
// Ours longjmps back to the setjmp in the step that called libjpeg. Each step below is a plain
// function whose locals have no destructors, so the longjmp skips nothing that needs cleanup.

struct JpegErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings are silent as in PIL, except running out of data: PIL reports such a file as
// truncated, while libjpeg would pad it with gray.
void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
}

struct JpegDecoder {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  bool created = false;
  ~JpegDecoder() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

bool jpeg_read_header_step(JpegDecoder* d, const uint8_t* data, size_t size) {
  d->cinfo.err = jpeg_std_error(&d->err.pub);
  d->err.pub.error_exit = jpeg_fail;
  d->err.pub.emit_message = jpeg_message;
  d->err.message[0] = 0;
  if (setjmp(d->err.jump)) return false;
  jpeg_create_decompress(&d->cinfo);
  d->created = true;
  jpeg_mem_src(&d->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&d->cinfo, TRUE);
  return true;
}

// Decodes every scanline into out (output_components bytes per pixel). Like PIL, it does not
// call jpeg_finish_decompress, so a missing EOI marker after complete image data is accepted.
bool jpeg_read_pixels_step(JpegDecoder* d, uint8_t* out) {
  if (setjmp(d->err.jump)) return false;
  jpeg_start_decompress(&d->cinfo);
  const size_t stride = static_cast<size_t>(d->cinfo.output_width) * d->cinfo.output_components;
  while (d->cinfo.output_scanline < d->cinfo.output_height) {
    JSAMPROW row = out + d->cinfo.output_scanline * stride;
    jpeg_read_scanlines(&d->cinfo, &row, 1);
  }
  return true;
}

// PIL's "CMYK;I" unpacking (Adobe polarity, always assumed) followed by its cmyk2rgb.
void adobe_cmyk_to_rgb(const uint8_t* in, uint8_t* out, size_t pixels) {
  auto muldiv255 = [](int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
  };
  for (size_t i = 0; i < pixels; ++i, in += 4, out += 3) {
    int nk = in[3];  // 255 - (255 - raw K)
    for (int c = 0; c < 3; ++c) {
      int v = nk - muldiv255(255 - in[c], nk);
      out[c] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
  }
}

std::string jpeg_error_text(const JpegDecoder& d) {
  return std::string("invalid JPEG: ") + d.err.message;
}

// ---- PNG -----------------------------------------------------------------------------------
// libpng's error callback must not return either: it records the message and longjmps.

struct PngDecoder {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {0};
  ~PngDecoder() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void png_fail(png_structp png, png_const_charp msg) {
  auto* d = static_cast<PngDecoder*>(png_get_error_ptr(png));
  std::snprintf(d->message, sizeof(d->message), "%s", msg);
  png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* d = static_cast<PngDecoder*>(png_get_io_ptr(png));
  if (n > d->size - d->pos) png_error(png, "file is truncated");
  std::memcpy(out, d->data + d->pos, n);
  d->pos += n;
}

bool png_create(PngDecoder* d) {
  d->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, png_fail, png_warn);
  if (!d->png) return false;
  d->info = png_create_info_struct(d->png);
  return d->info != nullptr;
}

// Reads the header and sets up the transforms to 8-bit gray, gray+alpha, RGB or RGBA.
bool png_read_header_step(PngDecoder* d) {
  if (setjmp(png_jmpbuf(d->png))) return false;
  png_set_read_fn(d->png, d, png_read_memory);
  png_read_info(d->png, d->info);
  int color = png_get_color_type(d->png, d->info);
  int depth = png_get_bit_depth(d->png, d->info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(d->png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(d->png);
  if (depth == 16) png_set_strip_16(d->png);
  png_set_interlace_handling(d->png);
  png_read_update_info(d->png, d->info);
  return true;
}

bool png_read_pixels_step(PngDecoder* d, png_bytepp rows) {
  if (setjmp(png_jmpbuf(d->png))) return false;
  png_read_image(d->png, rows);
  return true;
}

bool is_jpeg(const std::vector<uint8_t>& b) {
  return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}
bool is_png(const std::vector<uint8_t>& b) {
  return b.size() >= 8 && png_sig_cmp(b.data(), 0, 8) == 0;
}

}  // namespace

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& where) {
  JpegDecoder d;
  if (!jpeg_read_header_step(&d, bytes.data(), bytes.size()))
    throw Error(where, jpeg_error_text(d));
  J_COLOR_SPACE cs = d.cinfo.out_color_space;
  check(cs == JCS_GRAYSCALE || cs == JCS_RGB || cs == JCS_CMYK, where,
        "unsupported JPEG colour space with " + std::to_string(d.cinfo.num_components) +
            " components");
  check_dims(d.cinfo.image_width, d.cinfo.image_height, where);
  Image img;
  img.width = d.cinfo.image_width;
  img.height = d.cinfo.image_height;
  const int64_t comps = cs == JCS_GRAYSCALE ? 1 : (cs == JCS_RGB ? 3 : 4);
  std::vector<uint8_t> raw(static_cast<size_t>(img.width * img.height * comps));
  if (!jpeg_read_pixels_step(&d, raw.data())) throw Error(where, jpeg_error_text(d));
  check(d.cinfo.output_components == comps && d.cinfo.output_width == img.width &&
            d.cinfo.output_height == img.height,
        where, "unexpected JPEG output layout");
  if (comps == 4) {
    img.channels = 3;
    img.pixels.resize(static_cast<size_t>(img.width * img.height * 3));
    adobe_cmyk_to_rgb(raw.data(), img.pixels.data(), static_cast<size_t>(img.width * img.height));
  } else {
    img.channels = comps;
    img.pixels = std::move(raw);
  }
  return img;
}

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& where) {
  PngDecoder d;
  d.data = bytes.data();
  d.size = bytes.size();
  check(png_create(&d), where, "out of memory creating the PNG decoder");
  if (!png_read_header_step(&d)) throw Error(where, std::string("invalid PNG: ") + d.message);
  const int64_t w = png_get_image_width(d.png, d.info);
  const int64_t h = png_get_image_height(d.png, d.info);
  const int64_t comps = png_get_channels(d.png, d.info);
  check_dims(w, h, where);
  check(comps >= 1 && comps <= 4 && png_get_rowbytes(d.png, d.info) == size_t(w * comps), where,
        "unsupported PNG pixel layout");
  std::vector<uint8_t> raw(static_cast<size_t>(w * h * comps));
  std::vector<png_bytep> rows(static_cast<size_t>(h));
  for (int64_t y = 0; y < h; ++y) rows[y] = raw.data() + y * w * comps;
  if (!png_read_pixels_step(&d, rows.data()))
    throw Error(where, std::string("invalid PNG: ") + d.message);

  Image img;
  img.width = w;
  img.height = h;
  if (comps == 1 || comps == 3) {
    img.channels = comps;
    img.pixels = std::move(raw);
    return img;
  }
  // Drop alpha (gray+alpha -> gray, RGBA -> RGB) as PIL's convert does: no compositing.
  img.channels = comps - 1;
  img.pixels.resize(static_cast<size_t>(w * h * img.channels));
  const uint8_t* in = raw.data();
  uint8_t* out = img.pixels.data();
  for (int64_t i = 0; i < w * h; ++i, in += comps, out += img.channels)
    std::memcpy(out, in, static_cast<size_t>(img.channels));
  return img;
}

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& where) {
  if (is_jpeg(bytes)) return decode_jpeg(bytes, where);
  if (is_png(bytes)) return decode_png(bytes, where);
  throw Error(where, bytes.empty() ? "empty file" : "not a JPEG or PNG image");
}

ImageSize decode_image_size(const std::vector<uint8_t>& bytes, const std::string& where) {
  if (is_jpeg(bytes)) {
    JpegDecoder d;
    if (!jpeg_read_header_step(&d, bytes.data(), bytes.size()))
      throw Error(where, jpeg_error_text(d));
    check_dims(d.cinfo.image_width, d.cinfo.image_height, where);
    return {d.cinfo.image_height, d.cinfo.image_width};
  }
  if (is_png(bytes)) {
    PngDecoder d;
    d.data = bytes.data();
    d.size = bytes.size();
    check(png_create(&d), where, "out of memory creating the PNG decoder");
    if (!png_read_header_step(&d)) throw Error(where, std::string("invalid PNG: ") + d.message);
    ImageSize s{png_get_image_height(d.png, d.info), png_get_image_width(d.png, d.info)};
    check_dims(s.width, s.height, where);
    return s;
  }
  throw Error(where, bytes.empty() ? "empty file" : "not a JPEG or PNG image");
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), path, "not a readable file");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  check(f != nullptr, path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f.get())) > 0)
    bytes.insert(bytes.end(), chunk, chunk + n);
  check(!std::ferror(f.get()), path, "read error");
  return bytes;
}

Image convert_channels(Image img, int64_t channels) {
  check(channels == 1 || channels == 3, "image", "channels must be 1 or 3");
  if (img.channels == channels) return img;
  Image out;
  out.width = img.width;
  out.height = img.height;
  out.channels = channels;
  const size_t n = static_cast<size_t>(img.width * img.height);
  out.pixels.resize(n * channels);
  const uint8_t* in = img.pixels.data();
  uint8_t* o = out.pixels.data();
  if (channels == 3) {
    for (size_t i = 0; i < n; ++i) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = in[i];
  } else {
    for (size_t i = 0; i < n; ++i, in += 3)
      o[i] = static_cast<uint8_t>((in[0] * 19595 + in[1] * 38470 + in[2] * 7471 + 0x8000) >> 16);
  }
  return out;
}

}  // namespace mixq
