// Writes the seed corpora of the fuzz targets: small valid inputs of each format, made by mixq's
// own writers (and libpng/libjpeg for images), so every fuzzer starts from inputs that reach deep
// into its reader. Usage: fuzz_seeds DIR; writes DIR/<target>/<name>.
#include <onnx/onnx_pb.h>
#include <png.h>
// jpeglib.h needs FILE declared first.
#include <cstdio>

#include <jpeglib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "base/error.h"
#include "data/idx.h"
#include "data/npy.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "search/candidates.h"
#include "search/sensitivity.h"
#include "seed_models.h"
#include "support/onnx_builder.h"
#include "support/synthetic_data.h"

using namespace mixq;
using mixq::fuzz::conv_net;
using mixq::fuzz::weights;
using mixq::test::OnnxBuilder;

namespace {

std::string g_dir;

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::filesystem::path dir = std::filesystem::path(g_dir) / target;
  std::filesystem::create_directories(dir);
  std::ofstream f(dir / name, std::ios::binary);
  f << bytes;
  if (!f) throw Error((dir / name).string(), "cannot write the seed");
}

// Conv -> BatchNormalization -> Relu -> MaxPool -> Reshape (Constant shape) -> Dropout ->
// MatMul -> Add -> Softmax at opset 11: the passes fold BN and constants and drop Dropout.
OnnxBuilder bn_net() {
  OnnxBuilder b(11);
  b.input("x", {1, 1, 4, 4}).output("y", {1, 2});
  b.initializer("w", weights({2, 1, 3, 3}, 6, 1.0f));
  auto& conv = b.node("Conv", {"x", "w"}, {"c"}, "conv");
  OnnxBuilder::attr(conv, "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.initializer("scale", weights({2}, 7, 1.0f)).initializer("bias", weights({2}, 8, 0.5f));
  b.initializer("mean", weights({2}, 9, 0.5f));
  b.initializer("var", Tensor::from<float>({2}, {1.0f, 0.5f}));
  auto& bn = b.node("BatchNormalization", {"c", "scale", "bias", "mean", "var"}, {"n"}, "bn");
  OnnxBuilder::attr(bn, "epsilon", 1e-5f);
  b.node("Relu", {"n"}, {"r"}, "relu");
  auto& pool = b.node("MaxPool", {"r"}, {"m"}, "pool");
  OnnxBuilder::attr(pool, "kernel_shape", std::vector<int64_t>{2, 2});
  OnnxBuilder::attr(pool, "strides", std::vector<int64_t>{2, 2});
  auto& shape = b.node("Constant", {}, {"shape"}, "shape");
  auto* value = shape.add_attribute();
  value->set_name("value");
  value->set_type(onnx::AttributeProto::TENSOR);
  auto* t = value->mutable_t();
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(2);
  t->add_int64_data(1);
  t->add_int64_data(8);
  b.node("Reshape", {"m", "shape"}, {"flat"}, "reshape");
  b.node("Dropout", {"flat"}, {"d"}, "dropout");
  b.initializer("fc_w", weights({8, 2}, 10, 1.0f)).initializer("fc_b", weights({2}, 11, 0.2f));
  b.node("MatMul", {"d", "fc_w"}, {"mm"}, "matmul");
  b.node("Add", {"mm", "fc_b"}, {"logits"}, "add");
  auto& sm = b.node("Softmax", {"logits"}, {"y"}, "softmax");
  OnnxBuilder::attr(sm, "axis", int64_t{1});
  return b;
}

// Opset 6 (converted to 13 on import), IR version 3 with an initializer missing from the
// inputs, as old exporters wrote.
OnnxBuilder old_net() {
  OnnxBuilder b(6);
  b.model().set_ir_version(3);
  b.input("x", {1, 4}).output("y", {1, 4});
  b.initializer("k", weights({1, 4}, 12, 1.0f));
  b.node("Mul", {"x", "k"}, {"m"}, "mul");
  b.node("Sigmoid", {"m"}, {"s"}, "sigmoid");
  b.node("Sum", {"s", "x"}, {"y"}, "sum");
  return b;
}

// Opset 20 (IR 9): the forms rewritten to opset 17 on import (reduction axes as an input,
// Split's num_outputs, Gelu, Mish).
OnnxBuilder new_opset_net() {
  OnnxBuilder b(20);
  b.model().set_ir_version(9);
  b.input("x", {1, 2, 4}).output("y", {1, 2});
  b.initializer("axes", Tensor::from<int64_t>({1}, std::vector<int64_t>{2}));
  auto& gelu = b.node("Gelu", {"x"}, {"g"}, "gelu");
  auto* a = gelu.add_attribute();
  a->set_name("approximate");
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s("tanh");
  b.node("Mish", {"g"}, {"m"}, "mish");
  auto& split = b.node("Split", {"m"}, {"s1", "s2"}, "split");
  OnnxBuilder::attr(split, "axis", int64_t{2});
  OnnxBuilder::attr(split, "num_outputs", int64_t{2});
  b.node("Add", {"s1", "s2"}, {"t"}, "add");
  OnnxBuilder::attr(b.node("ReduceMean", {"t", "axes"}, {"y"}, "mean"), "keepdims", int64_t{0});
  return b;
}

// ---- images ----------------------------------------------------------------------------------

std::string png(int w, int h, int color_type, int depth, bool interlace) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error("png seed", "libpng failed");
  }
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep data, png_size_t n) {
        static_cast<std::string*>(png_get_io_ptr(p))->append(reinterpret_cast<char*>(data), n);
      },
      nullptr);
  png_set_IHDR(png, info, w, h, depth, color_type,
               interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, palette, 4);
  png_write_info(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  std::vector<std::vector<uint8_t>> rows(h, std::vector<uint8_t>(row_bytes));
  for (int y = 0; y < h; ++y)
    for (size_t x = 0; x < row_bytes; ++x)
      rows[y][x] = static_cast<uint8_t>(x * 37 + y * 11);  // any byte is a valid palette index
  std::vector<png_bytep> ptrs;
  for (auto& r : rows) ptrs.push_back(r.data());
  png_write_image(png, ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string jpeg(int w, int h, J_COLOR_SPACE space, int comps, bool progressive) {
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
  c.in_color_space = space;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 75, TRUE);
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<uint8_t> row(static_cast<size_t>(w * comps));
  while (c.next_scanline < c.image_height) {
    for (size_t x = 0; x < row.size(); ++x)
      row[x] = static_cast<uint8_t>(x * 29 + c.next_scanline * 13);
    JSAMPROW p = row.data();
    jpeg_write_scanlines(&c, &p, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::string out(reinterpret_cast<char*>(mem), size);
  std::free(mem);
  return out;
}

// ---- IDX -------------------------------------------------------------------------------------

std::string idx(const Shape& dims, bool gz) {
  std::vector<uint8_t> data(static_cast<size_t>(shape_numel(dims)));
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  const std::string path = (std::filesystem::path(g_dir) / ".idx.tmp").string();
  write_idx(path, dims, data, gz);
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seeds DIR\n";
    return 2;
  }
  g_dir = argv[1];
  try {
    // ONNX: three hand-built models and a quantized one exported as QDQ.
    write("fuzz_onnx", "conv_net.onnx", conv_net().bytes());
    write("fuzz_onnx", "bn_net.onnx", bn_net().bytes());
    write("fuzz_onnx", "old_opset.onnx", old_net().bytes());
    write("fuzz_onnx", "new_opset.onnx", new_opset_net().bytes());
    load_onnx_bytes(new_opset_net().bytes(), "new_opset_net");  // a seed must load

    const Graph g = load_onnx_bytes(conv_net().bytes(), "conv_net");
    test::SyntheticDataset data(48, {2, 6, 6}, 3, 7);
    ObserveOptions oo;
    oo.samples = 32;
    const ActivationStats stats = observe_activations(g, data, oo);
    UniformOptions uo;
    uo.wbits = 4;
    const QuantConfig uniform = uniform_config(g, &stats, uo);
    uo.msq.ratio = 1.5;  // rows of mixed schemes
    const QuantConfig msq = uniform_config(g, &stats, uo);

    // quant.json as mixq writes it (save_quant_config's text).
    write("fuzz_quant_config", "uniform_w4.json", to_json(uniform).dump(1) + "\n");
    write("fuzz_quant_config", "msq.json", to_json(msq).dump(1) + "\n");
    // Version 2: a config for weights moved by compensated rounding.
    QuantConfig moved = uniform;
    moved.weights_hash = config_weights_hash(g, uniform);
    write("fuzz_quant_config", "weights_hash.json", to_json(moved).dump(1) + "\n");

    // .mixq of both configs.
    write("fuzz_packed", "uniform_w4.mixq", serialize_packed(pack_model(g, uniform)));
    write("fuzz_packed", "msq.mixq", serialize_packed(pack_model(g, msq)));

    // .omega: a complete two-chunk measurement and one rank's shard of it (incomplete).
    const SearchSpace space = make_search_space(g, parse_candidates("w2,w8", "seeds"), true, 8);
    SensitivityOptions so;
    so.samples = 12;
    so.chunk = 6;
    write("fuzz_omega", "complete.omega",
          sensitivity_bytes(measure_sensitivity(g, space, stats, data, so)));
    SensitivityOptions gptq = so;
    gptq.rounding = make_rounding(Rounding::gptq, g, data, oo);
    write("fuzz_omega", "gptq.omega",
          sensitivity_bytes(measure_sensitivity(g, space, stats, data, gptq)));
    so.ranks = 2;
    so.rank = 1;
    write("fuzz_omega", "shard.omega",
          sensitivity_bytes(measure_sensitivity(g, space, stats, data, so)));

    onnx::ModelProto qdq;
    graph_to_model(apply_quant(g, uniform), qdq);
    write("fuzz_onnx", "conv_net_qdq.onnx", qdq.SerializeAsString());

    // Graph choices: a few byte strings that steer the generator to different structures.
    for (int k = 0; k < 4; ++k) {
      std::string choices;
      for (int i = 0; i < 24; ++i) choices.push_back(static_cast<char>((k * 67 + i * 29) % 256));
      write("fuzz_graph", "choices" + std::to_string(k), choices);
    }

    // IDX: images (rank 3) and labels (rank 1), raw and gzip.
    write("fuzz_idx", "images.idx", idx({2, 3, 3}, false));
    write("fuzz_idx", "images.idx.gz", idx({2, 3, 3}, true));
    write("fuzz_idx", "labels.idx", idx({5}, false));
    write("fuzz_idx", "labels.idx.gz", idx({5}, true));

    // NumPy: .npy of several types and ranks, .npz stored and deflated with labels.
    const Tensor f = Tensor::from<float>({2, 3}, {0.5f, -1, 2, 3, 4, 5});
    const Tensor ids = Tensor::from<int64_t>({2, 2}, {1, 0, 3, 2});
    write("fuzz_npy", "f32.npy", npy_bytes(f));
    write("fuzz_npy", "i64.npy", npy_bytes(ids));
    write("fuzz_npy", "u8.npy", npy_bytes(Tensor::from<uint8_t>({4}, {1, 2, 3, 4})));
    write("fuzz_npy", "scalar.npy", npy_bytes(Tensor::scalar_f32(1)));
    const std::vector<std::pair<std::string, Tensor>> arrays = {
        {"x", f}, {"tokens", ids}, {"labels", Tensor::from<int64_t>({2}, {1, 0})}};
    write("fuzz_npy", "stored.npz", npz_bytes(arrays, false));
    write("fuzz_npy", "deflated.npz", npz_bytes(arrays, true));

    // Images: every PNG colour type and a 16-bit and interlaced one; JPEG gray, RGB,
    // progressive and CMYK.
    write("fuzz_image", "gray.png", png(5, 3, PNG_COLOR_TYPE_GRAY, 8, false));
    write("fuzz_image", "gray2.png", png(5, 3, PNG_COLOR_TYPE_GRAY, 2, false));
    write("fuzz_image", "gray_alpha.png", png(4, 4, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false));
    write("fuzz_image", "rgb16.png", png(3, 2, PNG_COLOR_TYPE_RGB, 16, false));
    write("fuzz_image", "rgba_interlaced.png", png(9, 9, PNG_COLOR_TYPE_RGB_ALPHA, 8, true));
    write("fuzz_image", "palette.png", png(6, 2, PNG_COLOR_TYPE_PALETTE, 2, false));
    write("fuzz_image", "gray.jpg", jpeg(8, 8, JCS_GRAYSCALE, 1, false));
    write("fuzz_image", "rgb.jpg", jpeg(17, 9, JCS_RGB, 3, false));
    write("fuzz_image", "rgb_progressive.jpg", jpeg(16, 16, JCS_RGB, 3, true));
    write("fuzz_image", "cmyk.jpg", jpeg(8, 8, JCS_CMYK, 4, false));
  } catch (const std::exception& e) {
    std::cerr << "fuzz_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
