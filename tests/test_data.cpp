// Tests for src/data: IDX files, JPEG/PNG decoding, preprocessing, image folders, data specs and
// batch iteration, plus the real Fashion-MNIST and CIFAR-10 data when they are installed.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <jpeglib.h>
#include <png.h>

#include "base/error.h"
#include "data/batch_iterator.h"
#include "data/dataset.h"
#include "data/folder_dataset.h"
#include "data/idx.h"
#include "data/idx_dataset.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "support/expect_error.h"

using namespace mixq;
using mixq::test::expect_error;
namespace fs = std::filesystem;

namespace {

// A fresh temporary folder per test, removed afterwards.
class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("mixq_data_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes, bool gz = false) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    ASSERT_EQ(gzclose(f), Z_OK);
    return;
  }
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// IDX bytes written by hand (independently of write_idx).
std::vector<uint8_t> idx_bytes(uint8_t rank, const std::vector<uint32_t>& dims,
                               const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b = {0, 0, 0x08, rank};
  for (uint32_t d : dims) {
    b.push_back(d >> 24);
    b.push_back((d >> 16) & 255);
    b.push_back((d >> 8) & 255);
    b.push_back(d & 255);
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// ---- image writers (libpng / libjpeg used directly, independent of the decoder) ----

// rows: packed row bytes as libpng expects for this colour type and depth.
void write_png(const std::string& path, int w, int h, int color_type, int depth,
               const std::vector<std::vector<uint8_t>>& rows,
               const std::vector<png_color>& palette = {}, bool interlace = false) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
    FAIL() << "libpng failed writing " << path;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, w, h, depth, color_type,
               interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  png_write_info(png, info);
  std::vector<png_bytep> ptrs;
  for (auto& r : rows) ptrs.push_back(const_cast<png_bytep>(r.data()));
  png_write_image(png, ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

void write_jpeg(const std::string& path, int w, int h, int comps, const std::vector<uint8_t>& px,
                int quality) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &mem, &size);
  c.image_width = w;
  c.image_height = h;
  c.input_components = comps;
  c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  // 4:4:4: full-resolution chroma, so quality 100 stays within a couple of levels.
  for (int i = 0; i < c.num_components; ++i)
    c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(px.data() + c.next_scanline * w * comps);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  write_bytes(path, std::vector<uint8_t>(mem, mem + size));
  std::free(mem);
}

// A gray PNG of one value, to tell files apart after loading.
void write_gray_png(const std::string& path, int w, int h, uint8_t value) {
  write_png(path, w, h, PNG_COLOR_TYPE_GRAY, 8,
            std::vector<std::vector<uint8_t>>(h, std::vector<uint8_t>(w, value)));
}

Image make_image(int64_t h, int64_t w, int64_t c, std::vector<uint8_t> px) {
  Image img;
  img.height = h;
  img.width = w;
  img.channels = c;
  img.pixels = std::move(px);
  return img;
}

}  // namespace

// ---- IDX -----------------------------------------------------------------------------------

class DataIdx : public DataTest {
 protected:
  // Three 2x3 images and labels {2, 0, 1}.
  void write_pair(bool gz) {
    std::vector<uint8_t> px(18);
    for (int i = 0; i < 18; ++i) px[i] = static_cast<uint8_t>(i * 15);
    write_bytes(path("img"), idx_bytes(3, {3, 2, 3}, px), gz);
    write_bytes(path("lbl"), idx_bytes(1, {3}, {2, 0, 1}), gz);
  }
  void check_pair() {
    auto ds = open_dataset("idx:" + path("img") + "," + path("lbl"));
    EXPECT_EQ(ds->size(), 3u);
    EXPECT_EQ(ds->num_classes(), 3);
    EXPECT_EQ(ds->sample_shape(), (Shape{1, 2, 3}));
    Batch b = ds->get_batch(1, 2);
    EXPECT_EQ(b.inputs[0].shape(), (Shape{2, 1, 2, 3}));
    EXPECT_EQ(b.labels, (std::vector<int64_t>{0, 1}));
    const float* p = b.inputs[0].data<float>();
    for (int i = 0; i < 12; ++i) EXPECT_FLOAT_EQ(p[i], static_cast<float>((i + 6) * 15) / 255.0f);
  }
};

TEST_F(DataIdx, RoundTripRaw) {
  write_pair(false);
  check_pair();
}

TEST_F(DataIdx, RoundTripGzip) {
  write_pair(true);
  EXPECT_EQ(read_raw(path("img"))[0], 0x1f);  // really compressed
  check_pair();
}

TEST_F(DataIdx, WriteIdxIsReadBack) {
  std::vector<uint8_t> px = {1, 2, 3, 4, 5, 6, 7, 8};
  write_idx(path("a.gz"), {2, 2, 2}, px, true);
  IdxArray a = read_idx(path("a.gz"), 3);
  EXPECT_EQ(a.dims, (Shape{2, 2, 2}));
  EXPECT_EQ(a.data, px);
  write_idx(path("a"), {2, 2, 2}, px, false);
  EXPECT_EQ(read_raw(path("a")), idx_bytes(3, {2, 2, 2}, px));
}

TEST_F(DataIdx, ChannelsAndNormalization) {
  write_bytes(path("img"), idx_bytes(3, {1, 1, 2}, {0, 255}));
  write_bytes(path("lbl"), idx_bytes(1, {1}, {4}));
  DataOptions o;
  o.channels = 3;
  o.mean = {0.5f};
  o.std = {0.25f};
  auto ds = open_dataset("idx:" + path("img") + "," + path("lbl"), o);
  EXPECT_EQ(ds->sample_shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(ds->num_classes(), 5);
  Batch b = ds->get_batch(0, 1);
  EXPECT_EQ(b.inputs[0].to_floats(), (std::vector<float>{-2, 2, -2, 2, -2, 2}));
}

TEST_F(DataIdx, TruncatedFilesNameFileAndWhatIsShort) {
  std::vector<uint8_t> full = idx_bytes(3, {4, 5, 5}, std::vector<uint8_t>(100, 7));
  for (bool gz : {false, true}) {
    std::vector<uint8_t> cut(full.begin(), full.end() - 10);
    write_bytes(path("img"), cut, gz);
    expect_error([&] { read_idx(path("img"), 3); },
                 {path("img"), "truncated", "100 bytes", "found 90"});
    write_bytes(path("img"), std::vector<uint8_t>(full.begin(), full.begin() + 10), gz);
    expect_error([&] { read_idx(path("img"), 3); }, {path("img"), "truncated", "dimensions"});
    write_bytes(path("img"), {0, 0}, gz);
    expect_error([&] { read_idx(path("img"), 3); }, {path("img"), "truncated", "magic"});
  }
  // A gzip stream cut short.
  write_bytes(path("img.gz"), full, true);
  std::vector<uint8_t> gz = read_raw(path("img.gz"));
  gz.resize(gz.size() / 2);
  write_bytes(path("img.gz"), gz);
  EXPECT_THROW(read_idx(path("img.gz"), 3), Error);
  // Trailing bytes.
  std::vector<uint8_t> longer = full;
  longer.push_back(1);
  write_bytes(path("img"), longer);
  expect_error([&] { read_idx(path("img"), 3); }, {path("img"), "after"});
}

TEST_F(DataIdx, BadMagicAndRank) {
  write_bytes(path("lbl"), idx_bytes(1, {3}, {0, 1, 2}));
  expect_error([&] { read_idx(path("lbl"), 3); }, {path("lbl"), "magic", "0x00000801"});
  write_bytes(path("png"), {0x89, 'P', 'N', 'G', 0, 0, 0, 0});
  expect_error([&] { read_idx(path("png"), 3); }, {path("png"), "bad magic", "not an IDX"});
  std::vector<uint8_t> ints = idx_bytes(1, {1}, {0, 0, 0, 0});
  ints[2] = 0x0C;  // int32 elements
  write_bytes(path("ints"), ints);
  expect_error([&] { read_idx(path("ints"), 1); }, {path("ints"), "unsigned byte"});
  expect_error([&] { read_idx(path("missing"), 1); }, {path("missing")});
  write_bytes(path("zero"), idx_bytes(3, {0, 2, 2}, {}));
  expect_error([&] { read_idx(path("zero"), 3); }, {path("zero"), "dimension 0"});
}

TEST_F(DataIdx, LabelMismatchAndRange) {
  write_bytes(path("img"), idx_bytes(3, {3, 1, 1}, {1, 2, 3}));
  write_bytes(path("lbl"), idx_bytes(1, {2}, {0, 1}));
  expect_error([&] { open_dataset("idx:" + path("img") + "," + path("lbl")); },
               {path("lbl"), "2 labels", "3 images"});
  // Swapped files: the labels file is not rank 3.
  expect_error([&] { open_dataset("idx:" + path("lbl") + "," + path("img")); },
               {path("lbl"), "magic"});
  write_bytes(path("lbl"), idx_bytes(1, {3}, {0, 1, 12}));
  expect_error([&] { IdxDataset(path("img"), path("lbl"), {}, 10); },
               {path("lbl"), "label 12", "sample 2", "0..9"});
}

// ---- decoding ------------------------------------------------------------------------------

class DataImage : public DataTest {};

TEST_F(DataImage, PngColorTypesDecodeExactly) {
  // RGB 3x2
  std::vector<std::vector<uint8_t>> rgb = {{1, 2, 3, 40, 50, 60, 250, 251, 252},
                                           {9, 8, 7, 100, 0, 255, 33, 66, 99}};
  write_png(path("rgb.png"), 3, 2, PNG_COLOR_TYPE_RGB, 8, rgb);
  Image a = decode_image(read_file_bytes(path("rgb.png")), "rgb.png");
  EXPECT_EQ(a.channels, 3);
  EXPECT_EQ(a.height, 2);
  EXPECT_EQ(a.width, 3);
  std::vector<uint8_t> want;
  for (auto& r : rgb) want.insert(want.end(), r.begin(), r.end());
  EXPECT_EQ(a.pixels, want);

  // RGBA: alpha dropped, colour kept (no compositing, as PIL's convert("RGB")).
  write_png(path("rgba.png"), 2, 1, PNG_COLOR_TYPE_RGBA, 8, {{10, 20, 30, 0, 40, 50, 60, 128}});
  Image b = decode_image(read_file_bytes(path("rgba.png")), "rgba.png");
  EXPECT_EQ(b.channels, 3);
  EXPECT_EQ(b.pixels, (std::vector<uint8_t>{10, 20, 30, 40, 50, 60}));

  // Gray + alpha -> gray; gray -> RGB replicates.
  write_png(path("ga.png"), 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {{77, 0, 200, 255}});
  Image c = decode_image(read_file_bytes(path("ga.png")), "ga.png");
  EXPECT_EQ(c.channels, 1);
  EXPECT_EQ(c.pixels, (std::vector<uint8_t>{77, 200}));
  EXPECT_EQ(convert_channels(c, 3).pixels, (std::vector<uint8_t>{77, 77, 77, 200, 200, 200}));

  // Palette, 4 bits per index.
  std::vector<png_color> pal = {{0, 0, 0}, {255, 0, 0}, {12, 34, 56}};
  write_png(path("pal.png"), 3, 1, PNG_COLOR_TYPE_PALETTE, 4, {{0x21, 0x00}}, pal);
  Image d = decode_image(read_file_bytes(path("pal.png")), "pal.png");
  EXPECT_EQ(d.pixels, (std::vector<uint8_t>{12, 34, 56, 255, 0, 0, 0, 0, 0}));

  // 16-bit gray keeps the high byte; 1-bit gray expands to 0/255.
  write_png(path("g16.png"), 2, 1, PNG_COLOR_TYPE_GRAY, 16, {{0x12, 0x34, 0xAB, 0xCD}});
  EXPECT_EQ(decode_image(read_file_bytes(path("g16.png")), "g16").pixels,
            (std::vector<uint8_t>{0x12, 0xAB}));
  write_png(path("g1.png"), 3, 1, PNG_COLOR_TYPE_GRAY, 1, {{0xA0}});
  EXPECT_EQ(decode_image(read_file_bytes(path("g1.png")), "g1").pixels,
            (std::vector<uint8_t>{255, 0, 255}));

  // Interlaced.
  std::vector<std::vector<uint8_t>> rows(9, std::vector<uint8_t>(9));
  std::vector<uint8_t> flat;
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 9; ++x) flat.push_back(rows[y][x] = static_cast<uint8_t>(y * 20 + x));
  write_png(path("adam7.png"), 9, 9, PNG_COLOR_TYPE_GRAY, 8, rows, {}, true);
  EXPECT_EQ(decode_image(read_file_bytes(path("adam7.png")), "adam7").pixels, flat);
}

TEST_F(DataImage, JpegQuality100WithinTolerance) {
  const int w = 24, h = 16;
  std::vector<uint8_t> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px.push_back(static_cast<uint8_t>(x * 10));
      px.push_back(static_cast<uint8_t>(y * 15));
      px.push_back(static_cast<uint8_t>(128 + (x - y) * 2));
    }
  write_jpeg(path("c.jpg"), w, h, 3, px, 100);
  Image img = decode_image(read_file_bytes(path("c.jpg")), "c.jpg");
  ASSERT_EQ(img.channels, 3);
  ASSERT_EQ(img.pixels.size(), px.size());
  for (size_t i = 0; i < px.size(); ++i) EXPECT_NEAR(img.pixels[i], px[i], 2) << i;

  std::vector<uint8_t> gray(w * h);
  for (int i = 0; i < w * h; ++i) gray[i] = static_cast<uint8_t>((i * 7) % 256 / 4 + 60);
  write_jpeg(path("g.jpg"), w, h, 1, gray, 100);
  Image g = decode_image(read_file_bytes(path("g.jpg")), "g.jpg");
  ASSERT_EQ(g.channels, 1);
  for (int i = 0; i < w * h; ++i) EXPECT_NEAR(g.pixels[i], gray[i], 2) << i;
  EXPECT_EQ(decode_image_size(read_file_bytes(path("g.jpg")), "g.jpg").width, w);
}

TEST_F(DataImage, CorruptAndTruncatedFilesNameTheFile) {
  std::mt19937 gen(3);
  std::vector<uint8_t> noise(500);
  for (auto& b : noise) b = static_cast<uint8_t>(gen());
  noise[0] = 0x12;
  write_bytes(path("noise.jpg"), noise);
  expect_error([&] { decode_image(read_file_bytes(path("noise.jpg")), path("noise.jpg")); },
               {path("noise.jpg"), "not a JPEG or PNG"});
  // Random bytes behind a JPEG marker reach libjpeg, whose error must not exit().
  noise[0] = 0xFF, noise[1] = 0xD8, noise[2] = 0xFF;
  write_bytes(path("bad.jpg"), noise);
  expect_error([&] { decode_image(read_file_bytes(path("bad.jpg")), path("bad.jpg")); },
               {path("bad.jpg"), "JPEG"});

  std::vector<uint8_t> px(64 * 64 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(gen());
  write_jpeg(path("ok.jpg"), 64, 64, 3, px, 90);
  std::vector<uint8_t> jpg = read_raw(path("ok.jpg"));
  jpg.resize(jpg.size() / 2);
  expect_error([&] { decode_jpeg(jpg, "half.jpg"); }, {"half.jpg"});

  write_gray_png(path("ok.png"), 8, 8, 10);
  std::vector<uint8_t> png = read_raw(path("ok.png"));
  png.resize(png.size() - 20);
  expect_error([&] { decode_png(png, "half.png"); }, {"half.png", "PNG"});
  expect_error([&] { decode_image({}, "empty.png"); }, {"empty.png", "empty"});
}

TEST(DataConvert, GrayUsesPilRounding) {
  // PIL "L" = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
  Image rgb = make_image(1, 5, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 1, 1, 10, 200, 30});
  EXPECT_EQ(convert_channels(rgb, 1).pixels, (std::vector<uint8_t>{76, 150, 29, 1, 124}));
}

// ---- preprocessing -------------------------------------------------------------------------

TEST(DataPreprocess, ResizeDownMatchesPilBilinear) {
  // 4x4 -> 2x2: support 2 taps weighted 3/7, 3/7, 1/7 (hand computed, equals PIL 9.4).
  std::vector<uint8_t> px;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) px.push_back(static_cast<uint8_t>(10 * x + 70 * y));
  Image out = resize_bilinear(make_image(4, 4, 1, px), 2, 2);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{57, 73, 167, 183}));
}

TEST(DataPreprocess, ResizeUpMatchesPilBilinear) {
  // 2x2 -> 4x4: weights 1 | 3/4,1/4 | 1/4,3/4 | 1 per axis, rounded after each pass.
  Image out = resize_bilinear(make_image(2, 2, 1, {0, 200, 100, 40}), 4, 4);
  EXPECT_EQ(out.pixels, (std::vector<uint8_t>{0, 50, 150, 200, 25, 59, 126, 160, 75, 76, 79, 80,
                                              100, 85, 55, 40}));
  // Channels are resampled independently.
  Image rgb = resize_bilinear(make_image(1, 2, 3, {0, 10, 20, 200, 30, 20}), 1, 4);
  EXPECT_EQ(rgb.pixels, (std::vector<uint8_t>{0, 10, 20, 50, 15, 20, 150, 25, 20, 200, 30, 20}));
}

TEST(DataPreprocess, ShorterSideAndCenterCrop) {
  EXPECT_EQ(resize_shorter_size({32, 48}, 24).width, 36);
  EXPECT_EQ(resize_shorter_size({375, 500}, 256).width, 341);  // int(256*500/375) = 341
  EXPECT_EQ(resize_shorter_size({500, 375}, 256).height, 341);
  // 5x4 -> 2x2: top = round(1.5) = 2, left = round(1.0) = 1.
  std::vector<uint8_t> px(20);
  for (int i = 0; i < 20; ++i) px[i] = static_cast<uint8_t>(i);
  Image c = center_crop(make_image(5, 4, 1, px), 2, 2);
  EXPECT_EQ(c.pixels, (std::vector<uint8_t>{9, 10, 13, 14}));
  // 3 -> 2 rows: round(0.5) = 0 (half to even).
  EXPECT_EQ(center_crop(make_image(3, 1, 1, {1, 2, 3}), 2, 1).pixels, (std::vector<uint8_t>{1, 2}));
  // Larger than the image: zero padding, left/top get the smaller half.
  EXPECT_EQ(center_crop(make_image(1, 2, 1, {7, 8}), 2, 5).pixels,
            (std::vector<uint8_t>{0, 7, 8, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(DataPreprocess, NormalizeIsChannelMajor) {
  Preprocessing p;
  p.channels = 3;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.std = {0.229f, 0.224f, 0.225f};
  p.validate("test");
  Image img = make_image(1, 2, 3, {255, 0, 51, 0, 102, 255});
  std::vector<float> out(6);
  p.run(img, "img", {1, 2}, out.data());
  const float want[6] = {(1.0f - 0.485f) / 0.229f, (0.0f - 0.485f) / 0.229f,
                         (0.0f - 0.456f) / 0.224f, (0.4f - 0.456f) / 0.224f,
                         (0.2f - 0.406f) / 0.225f, (1.0f - 0.406f) / 0.225f};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(out[i], want[i], 1e-6) << i;
  EXPECT_FLOAT_EQ(out[0], 2.2489083f);
  expect_error([&] { p.run(img, "img.png", {2, 2}, out.data()); }, {"img.png", "1x2", "2x2"});
  p.std = {1, 2};
  expect_error([&] { p.validate("ds"); }, {"ds", "std", "2 values"});
}

// ---- folders -------------------------------------------------------------------------------

class DataFolder : public DataTest {};

TEST_F(DataFolder, OrderingLabelsAndIgnoredFiles) {
  fs::create_directories(dir_ / "zebra" / "sub");
  fs::create_directories(dir_ / "apple");
  fs::create_directories(dir_ / "Mango");
  write_gray_png(path("apple/b.png"), 2, 2, 20);
  write_gray_png(path("apple/a.PNG"), 2, 2, 10);
  write_bytes(path("apple/notes.txt"), {1, 2, 3});
  write_gray_png(path("Mango/x.png"), 2, 2, 30);
  write_gray_png(path("zebra/10.png"), 2, 2, 50);
  write_gray_png(path("zebra/2.png"), 2, 2, 60);
  write_gray_png(path("zebra/sub/0.png"), 2, 2, 70);
  std::vector<uint8_t> px(2 * 2 * 3, 200);
  write_jpeg(path("zebra/1.jpeg"), 2, 2, 3, px, 100);
  write_bytes(path("top_level_file.png"), {0});  // not in a class folder: ignored

  FolderDataset ds(dir_.string(), {});
  EXPECT_EQ(ds.class_names(), (std::vector<std::string>{"Mango", "apple", "zebra"}));
  ASSERT_EQ(ds.size(), 7u);
  EXPECT_EQ(ds.sample_shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(fs::path(ds.file(1)).filename(), "a.PNG");
  Batch b = ds.get_batch(0, 7);
  EXPECT_EQ(b.labels, (std::vector<int64_t>{0, 1, 1, 2, 2, 2, 2}));
  const float* p = b.inputs[0].data<float>();
  // Sample order: x, a, b, 1.jpeg, 10, 2, sub/0; gray replicated over 3 channels.
  const int want[7] = {30, 10, 20, 200, 50, 60, 70};
  for (int i = 0; i < 7; ++i) {
    EXPECT_NEAR(p[i * 12] * 255.0f, want[i], i == 3 ? 2.0 : 1e-4) << i;
    if (i != 3) {
      EXPECT_EQ(p[i * 12], p[i * 12 + 4 + 3]) << i;  // gray replicated
    }
  }
  // Any order, repeats, deterministic.
  Batch r = ds.get({6, 0, 6});
  EXPECT_EQ(r.labels, (std::vector<int64_t>{2, 0, 2}));
  EXPECT_FLOAT_EQ(r.inputs[0].data<float>()[0], 70.0f / 255.0f);

  DataOptions gray;
  gray.channels = 1;
  auto g = open_dataset("folder:" + dir_.string(), gray);
  EXPECT_EQ(g->sample_shape(), (Shape{1, 2, 2}));
}

TEST_F(DataFolder, ResizeCropAndSizeMismatch) {
  fs::create_directories(dir_ / "a");
  write_gray_png(path("a/0.png"), 4, 4, 100);
  write_gray_png(path("a/1.png"), 6, 12, 50);  // 6 wide, 12 high
  DataOptions none;
  FolderDataset plain(dir_.string(), none);
  EXPECT_EQ(plain.sample_shape(), (Shape{3, 4, 4}));
  expect_error([&] { plain.get_batch(0, 2); }, {path("a/1.png"), "12x6", "4x4"});

  DataOptions o;
  o.resize = 3;
  o.crop_height = 3;
  o.crop_width = 2;
  auto ds = open_dataset("folder:" + dir_.string(), o);
  EXPECT_EQ(ds->sample_shape(), (Shape{3, 3, 2}));
  Batch b = ds->get_batch(0, 2);
  for (int i = 0; i < 18; ++i) EXPECT_FLOAT_EQ(b.inputs[0].data<float>()[i], 100.0f / 255.0f);
  for (int i = 18; i < 36; ++i) EXPECT_FLOAT_EQ(b.inputs[0].data<float>()[i], 50.0f / 255.0f);

  DataOptions r;
  r.resize = 2;  // 4x4 -> 2x2 but 12x6 -> 4x2: only the shorter side is fixed
  FolderDataset rs(dir_.string(), r);
  EXPECT_EQ(rs.sample_shape(), (Shape{3, 2, 2}));
  expect_error([&] { rs.get_batch(1, 1); }, {path("a/1.png"), "4x2", "2x2"});
}

TEST_F(DataFolder, ErrorsNameThePath) {
  expect_error([&] { FolderDataset(path("missing"), {}); }, {path("missing"), "does not exist"});
  expect_error([&] { FolderDataset(dir_.string(), {}); }, {dir_.string(), "no class"});
  fs::create_directories(dir_ / "a");
  fs::create_directories(dir_ / "b");
  write_gray_png(path("a/0.png"), 2, 2, 1);
  write_bytes(path("b/readme.txt"), {1});
  expect_error([&] { FolderDataset(dir_.string(), {}); }, {path("b"), "no .jpg"});

  std::vector<uint8_t> noise(300);
  std::mt19937 gen(5);
  for (auto& v : noise) v = static_cast<uint8_t>(gen());
  write_bytes(path("b/corrupt.jpg"), noise);
  FolderDataset ds(dir_.string(), {});
  EXPECT_EQ(ds.size(), 2u);
  ds.get_batch(0, 1);
  expect_error([&] { ds.get_batch(0, 2); }, {path("b/corrupt.jpg")});
  expect_error([&] { ds.get_batch(1, 5); }, {"outside"});
}

TEST_F(DataFolder, ImagesWithoutClassFoldersAreUnlabelled) {
  write_gray_png(path("b.png"), 2, 2, 200);
  write_gray_png(path("a.png"), 2, 2, 100);
  write_bytes(path("notes.txt"), {1});
  FolderDataset ds(dir_.string(), {});
  EXPECT_FALSE(ds.labelled());
  EXPECT_EQ(ds.num_classes(), 0);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_NE(ds.description().find("unlabelled"), std::string::npos);
  const Batch b = ds.get({1, 0});  // sorted by name: a.png (100) first
  EXPECT_TRUE(b.labels.empty());
  ASSERT_EQ(b.inputs.at(0).shape(), (Shape{2, 3, 2, 2}));
  EXPECT_FLOAT_EQ(b.inputs[0].data<float>()[0], 200.0f / 255.0f);
  EXPECT_FLOAT_EQ(b.inputs[0].data<float>()[12], 100.0f / 255.0f);
  expect_error([&] { ds.label(0); }, {"has no labels"});
}

// ---- specs and iteration ---------------------------------------------------------------------

TEST(DataSpec, MalformedSpecsNameTheSpec) {
  expect_error([] { open_dataset("cifar:test"); }, {"cifar:test", "unknown data scheme"});
  expect_error([] { open_dataset("nocolon"); }, {"nocolon", "SCHEME:ARGS"});
  expect_error([] { open_dataset("idx:only_images"); }, {"idx:only_images", "missing comma"});
  expect_error([] { open_dataset("idx:a,b,c"); }, {"idx:a,b,c", "more than one comma"});
  expect_error([] { open_dataset("idx:,b"); }, {"idx:,b", "empty"});
  expect_error([] { open_dataset("fmnist:val"); }, {"fmnist:val", "test or train"});
  expect_error([] { open_dataset("folder:"); }, {"folder:", "empty"});
  expect_error([] { open_dataset("idx:/nonexistent/i,/nonexistent/l"); }, {"/nonexistent/i"});
}

TEST(DataSpec, OptionParsing) {
  EXPECT_EQ(parse_float_list("0.485, 0.456,0.406", "--mean"),
            (std::vector<float>{0.485f, 0.456f, 0.406f}));
  EXPECT_EQ(parse_float_list("-1e-1", "--mean"), (std::vector<float>{-0.1f}));
  expect_error([] { parse_float_list("1,,2", "--std"); }, {"--std", "1,,2"});
  expect_error([] { parse_float_list("abc", "--std"); }, {"--std"});
  EXPECT_EQ(parse_size("224", "--crop"), (std::pair<int64_t, int64_t>{224, 224}));
  EXPECT_EQ(parse_size("32x48", "--crop"), (std::pair<int64_t, int64_t>{32, 48}));
  expect_error([] { parse_size("32x", "--crop"); }, {"--crop", "32x"});
  expect_error([] { parse_size("0", "--crop"); }, {"--crop"});
}

class DataIterator : public DataTest {
 protected:
  std::unique_ptr<Dataset> make(int n) {
    std::vector<uint8_t> px(n), lbl(n);
    for (int i = 0; i < n; ++i)
      px[i] = static_cast<uint8_t>(i), lbl[i] = static_cast<uint8_t>(i % 7);
    write_bytes(path("img"), idx_bytes(3, {static_cast<uint32_t>(n), 1, 1}, px));
    write_bytes(path("lbl"), idx_bytes(1, {static_cast<uint32_t>(n)}, lbl));
    return open_dataset("idx:" + path("img") + "," + path("lbl"));
  }
  static std::vector<int> walk(BatchIterator& it, std::vector<size_t>* sizes = nullptr) {
    std::vector<int> ids;
    Batch b;
    while (it.next(b)) {
      if (sizes) sizes->push_back(b.labels.size());
      for (int64_t i = 0; i < b.inputs[0].numel(); ++i)
        ids.push_back(static_cast<int>(std::lround(b.inputs[0].data<float>()[i] * 255)));
    }
    return ids;
  }
};

TEST_F(DataIterator, SequentialLimitAndBatchSizes) {
  auto ds = make(10);
  IterOptions o;
  o.batch_size = 4;
  BatchIterator it(*ds, o);
  EXPECT_EQ(it.num_batches(), 3u);
  std::vector<size_t> sizes;
  EXPECT_EQ(walk(it, &sizes), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 4, 2}));
  o.limit = 5;
  BatchIterator first(*ds, o);
  EXPECT_EQ(walk(first), (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_F(DataIterator, SeededShuffleAndRandomSubset) {
  auto ds = make(50);
  IterOptions o;
  o.batch_size = 8;
  o.shuffle = true;
  o.seed = 42;
  BatchIterator a(*ds, o), b(*ds, o);
  std::vector<int> wa = walk(a);
  EXPECT_EQ(wa, walk(b));  // same seed, same order
  std::vector<int> sorted = wa;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sorted[i], i);  // a permutation
  EXPECT_NE(wa, sorted);
  a.start_epoch(1);
  EXPECT_NE(walk(a), wa);  // a new order per epoch

  IterOptions s;
  s.limit = 12;
  s.random_subset = true;
  s.seed = 7;
  BatchIterator c(*ds, s), d(*ds, s);
  std::vector<int> sub = walk(c);
  EXPECT_EQ(sub, walk(d));
  EXPECT_EQ(sub.size(), 12u);
  EXPECT_EQ(std::set<int>(sub.begin(), sub.end()).size(), 12u);
  EXPECT_TRUE(std::is_sorted(sub.begin(), sub.end()));
  EXPECT_NE(sub.back(), 11);  // not simply the first 12
  s.seed = 8;
  BatchIterator e(*ds, s);
  EXPECT_NE(walk(e), sub);
  EXPECT_EQ(random_subset(5, 9, 1).size(), 5u);
}

// ---- real data -------------------------------------------------------------------------------

TEST(DataFashionMnist, TestSplitFromDebianPackage) {
  const std::string images = std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(images))
    GTEST_SKIP() << images << " is absent (install the Debian package dataset-fashion-mnist)";
  auto ds = open_dataset("fmnist:test");
  EXPECT_EQ(ds->size(), 10000u);
  EXPECT_EQ(ds->num_classes(), 10);
  EXPECT_EQ(ds->sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(ds->label(0), 9);
  EXPECT_EQ(ds->class_names()[9], "Ankle boot");
  Batch b = ds->get_batch(0, 500);
  EXPECT_EQ(b.inputs[0].shape(), (Shape{500, 1, 28, 28}));
  EXPECT_EQ(b.labels[0], 9);
  std::vector<int> per_class(10, 0);
  for (size_t i = 0; i < ds->size(); ++i) per_class[ds->label(i)]++;
  for (int c : per_class) EXPECT_EQ(c, 1000);  // the test split is balanced
  const float* p = b.inputs[0].data<float>();
  float lo = 1, hi = 0;
  double sum = 0;
  for (int64_t i = 0; i < b.inputs[0].numel(); ++i) {
    lo = std::min(lo, p[i]);
    hi = std::max(hi, p[i]);
    sum += p[i];
    ASSERT_NEAR(p[i] * 255.0f, std::round(p[i] * 255.0f), 1e-3);  // k/255
  }
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  const double mean = sum / b.inputs[0].numel();
  EXPECT_GT(mean, 0.2);  // Fashion-MNIST's pixel mean is about 0.286
  EXPECT_LT(mean, 0.4);
  // Border pixels of the first image (an ankle boot) are background.
  EXPECT_EQ(p[0], 0.0f);
}

TEST(DataCifar10, JpegFolderFromSharedData) {
  // ../shared beside the repository root (absolute, so any working directory works).
  const std::string dir = std::string(MIXQ_SOURCE_DIR) + "/../shared/data/cifar10/test";
  if (!fs::is_directory(dir))
    GTEST_SKIP() << dir << " is absent (the CIFAR-10 JPEG folder of the shared data)";
  DataOptions o;
  o.mean = {0.485f, 0.456f, 0.406f};
  o.std = {0.229f, 0.224f, 0.225f};
  auto ds = open_dataset("folder:" + dir, o);
  EXPECT_EQ(ds->size(), 10000u);
  EXPECT_EQ(ds->num_classes(), 10);
  EXPECT_EQ(ds->class_names()[0], "airplane");
  EXPECT_EQ(ds->class_names()[9], "truck");
  EXPECT_EQ(ds->sample_shape(), (Shape{3, 32, 32}));
  EXPECT_EQ(ds->label(0), 0);
  EXPECT_EQ(ds->label(9999), 9);
  Batch b = ds->get_batch(995, 10);  // crosses from airplane to automobile
  EXPECT_EQ(b.inputs[0].shape(), (Shape{10, 3, 32, 32}));
  EXPECT_EQ(b.labels, (std::vector<int64_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
  const float* p = b.inputs[0].data<float>();
  for (int64_t i = 0; i < b.inputs[0].numel(); ++i) {
    ASSERT_GE(p[i], -0.485f / 0.229f - 1e-5f);
    ASSERT_LE(p[i], (1 - 0.406f) / 0.225f + 1e-5f);
  }
  // Parallel decoding is deterministic.
  Batch again = ds->get_batch(995, 10);
  EXPECT_EQ(again.inputs[0].to_floats(), b.inputs[0].to_floats());
}
