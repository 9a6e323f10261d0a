// Inputs the fuzzers (fuzz/, docs/fuzzing.md) found crashing a reader, rebuilt here so the normal
// suite keeps them refused with one Error naming the file. Each test names its fuzz target.
#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "data/idx.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "quant/config.h"
#include "search/candidates.h"
#include "search/sensitivity.h"
#include "support/expect_error.h"
#include "support/onnx_builder.h"

using namespace mixq;
using namespace mixq::test;

namespace {

void put_u64(std::string& out, uint64_t v) {
  out.append(reinterpret_cast<const char*>(&v), 8);
}

// A .mixq file around this header (docs/packed-format.md): magic, version 1, header, padding to
// 64 bytes, no data, and the FNV-1a hash of it all.
std::string packed_file(const std::string& header) {
  std::string out = "MIXQPACK";
  const uint32_t version = 1, zero = 0;
  out.append(reinterpret_cast<const char*>(&version), 4);
  out.append(reinterpret_cast<const char*>(&zero), 4);
  put_u64(out, header.size());
  out += header;
  out.resize((out.size() + 63) / 64 * 64, '\0');
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : out) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  put_u64(out, h);
  return out;
}

}  // namespace

// fuzz_onnx: libonnx's version converter (run on opsets before 7) writes through a null pointer
// when a graph output is a value nothing defines, and its checker lets such an output pass.
TEST(FuzzRegressions, OldOpsetModelWithUndefinedOutputIsCheckedBeforeConversion) {
  OnnxBuilder b(6);
  b.input("x", {1, 4}).output("y", {1, 4}).output("nowhere", {1, 4});
  b.node("Sigmoid", {"x"}, {"y"}, "sigmoid");
  expect_error([&] { load_onnx_bytes(b.bytes(), "old.onnx"); },
               {"old.onnx", "'nowhere'", "nothing defines"});
}

// fuzz_quant_config: a number too large for a double made the JSON parser throw
// out_of_range, which escaped as a non-mixq exception.
TEST(FuzzRegressions, QuantConfigWithOverflowingNumberIsInvalidJson) {
  expect_error(
      [] { parse_quant_config(R"({"format": "mixq-quant", "version": 1E626586914})", "q.json"); },
      {"q.json", "invalid JSON"});
}

// fuzz_onnx: a zero stride made libonnx's shape inference for Conv divide by zero (SIGFPE).
TEST(FuzzRegressions, ConvWithZeroStride) {
  OnnxBuilder b;
  b.input("x", {1, 2, 6, 6}).output("y", {});
  b.initializer("w", Tensor(DType::f32, {4, 2, 3, 3}));
  auto& n = b.node("Conv", {"x", "w"}, {"y"}, "conv");
  OnnxBuilder::attr(n, "strides", std::vector<int64_t>{0, 1});
  expect_error([&] { load_onnx_bytes(b.bytes(), "conv.onnx"); },
               {"conv.onnx", "strides must be positive"});
}

// fuzz_quant_config: "format" or "model" of another type than a string (a repeated key keeps
// its last value, here an array) made nlohmann's value() throw type_error.
TEST(FuzzRegressions, QuantConfigFieldsOfTheWrongType) {
  expect_error([] { parse_quant_config(R"({"format": "mixq-quant", "format": [1]})", "q.json"); },
               {"q.json", "not a mixq quantization config"});
  expect_error(
      [] {
        parse_quant_config(R"({"format": "mixq-quant", "version": 1, "model": 3, "layers": []})",
                           "q.json");
      },
      {"q.json", "'model' has the wrong type"});
}

// fuzz_quant_config: an integer field holding a float beyond int's range: nlohmann's get<int>()
// casts it, undefined behaviour (UBSan: "outside the range of representable values"). The same
// guard covers the .mixq header's sizes and the .omega chunk sizes.
TEST(FuzzRegressions, IntegerFieldsHoldingHugeFloats) {
  expect_error(
      [] { parse_quant_config(R"({"format": "mixq-quant", "version": 5.5e95})", "q.json"); },
      {"q.json", "'version' has the wrong type"});
  expect_error(
      [] {
        parse_quant_config(R"({"format": "mixq-quant", "version": 1, "layers": [{"name": "c",
            "weight": {"scales": [1.0], "row_schemes": ["fixed"], "row_bits": [1e300]}}]})",
                           "q.json");
      },
      {"q.json", "'row_bits' has the wrong type"});
  std::string omega = "MIXQOMG1";
  const std::string header =
      R"({"format": "mixq-sensitivity", "version": 1, "layers": [1], "candidates": [1],
          "chunks": [1e300]})";
  put_u64(omega, header.size());
  omega += header;
  const std::string counters =
      R"({"executed_macs": 0, "naive_macs": 0, "evaluations": 0, "seconds": 0})";
  put_u64(omega, counters.size());
  omega += counters;
  expect_error([&] { parse_sensitivity(omega, "s.omega"); }, {"s.omega", "corrupt"});
  const std::string packed = packed_file(
      R"({"format": "mixq-pack", "version": 1, "model": "m", "layers": [{"name": "c",
          "op_type": "Conv", "weight_shape": [1e300, 1], "row_axis": 0, "rows": 4,
          "has_bias": false, "code_bytes": 0, "offset": 0, "attrs": {}, "input": null}]})");
  expect_error([&] { parse_packed(packed, "m.mixq"); }, {"m.mixq", "must be integers"});
}

// fuzz_omega: a header that is valid JSON but not an object (here the number 5) made
// nlohmann's value() throw type_error.
TEST(FuzzRegressions, SensitivityHeaderThatIsNotAnObject) {
  for (const std::string header : {"5", "[1, 2]", R"({"format": 7})", R"("text")"}) {
    std::string bytes = "MIXQOMG1";
    put_u64(bytes, header.size());
    bytes += header;
    expect_error([&] { parse_sensitivity(bytes, "s.omega"); }, {"s.omega"});
  }
}

// fuzz_onnx: libonnx's shape inference for Conv indexes the input's dimensions by the weight's
// spatial rank; a Conv reading a rank-2 value (here the output of a Conv with a rank-1 weight)
// with a rank-4 weight made it read through a null pointer.
TEST(FuzzRegressions, ConvKernelOfHigherRankThanItsInput) {
  OnnxBuilder b;
  b.input("x", {-1, 2, 6, 6}).output("y", {-1, 4});
  b.initializer("aw", Tensor::from<float>({4}, {1, 2, 3, 4}));
  b.node("Conv", {"x", "aw"}, {"a"}, "conv_a");
  b.initializer("bw", Tensor(DType::f32, {4, 4, 3, 3}));
  b.node("Conv", {"a", "bw"}, {"c"}, "conv_b");
  b.node("Flatten", {"c"}, {"y"}, "flatten");
  expect_error([&] { load_onnx_bytes(b.bytes(), "conv.onnx"); },
               {"conv.onnx", "shape inference", "spatial dimensions"});
}

// fuzz_omega: the bit-widths of a .omega header, read by `mixq allocate`, went through
// nlohmann's value(): a string threw type_error and a huge float was cast to int (undefined).
TEST(FuzzRegressions, SensitivityHeaderBitWidths) {
  OnnxBuilder b;
  b.input("x", {1, 2, 4, 4}).output("y", {1, 3, 2, 2});
  b.initializer("w", Tensor(DType::f32, {3, 2, 3, 3}));
  b.node("Conv", {"x", "w"}, {"y"}, "conv");
  const Graph g = load_onnx_bytes(b.bytes(), "conv");
  for (const char* abits : {R"("8")", "1e300", "40", "-1"}) {
    const nlohmann::json header = nlohmann::json::parse(
        std::string(R"({"layers": ["conv"], "candidates": ["w4"], "abits": )") + abits + "}");
    expect_error([&] { search_space_from_header(g, header, "s.omega"); },
                 {"s.omega", "'abits' must be an integer in 2..16"});
  }
}

// IDX (found reading the code the fuzzer covers, fuzz_idx did not reach it): dimensions
// 2^17 x 2^17 x 2^30 multiply to 2^64, which wrapped to 0, so a header with no data after it
// was read as a huge array holding nothing.
TEST(FuzzRegressions, IdxDimensionsWhoseProductWraps) {
  const std::string bytes(
      "\x00\x00\x08\x03"
      "\x00\x02\x00\x00"
      "\x00\x02\x00\x00"
      "\x40\x00\x00\x00",
      16);
  expect_error([&] { read_idx_bytes(bytes, "i.idx", 3); }, {"i.idx", "more than 16 GiB"});
}

// fuzz_onnx: a value_info with an empty name passes libonnx's checker; the importer looked up
// value -1 for it (UBSan: pointer overflow in vector::operator[]).
TEST(FuzzRegressions, NamelessValueInfo) {
  OnnxBuilder b;
  b.input("x", {1, 4}).output("y", {1, 4});
  b.node("Sigmoid", {"x"}, {"y"}, "sigmoid");
  b.model().mutable_graph()->add_value_info()->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::FLOAT);
  expect_error([&] { load_onnx_bytes(b.bytes(), "nameless.onnx"); },
               {"nameless.onnx", "has no name"});
}

// fuzz_onnx: an initializer of shape [0, 43091488, 2153401065217] holds no elements, but its
// strides overflowed int64 when constant folding broadcast it (UBSan: signed overflow).
TEST(FuzzRegressions, EmptyTensorWithDimensionsMultiplyingPast2To62) {
  OnnxBuilder b;
  b.output("y", {0, 43091488, 2153401065217});
  onnx::TensorProto* c = b.model().mutable_graph()->add_initializer();
  c->set_name("c");
  c->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {int64_t{0}, int64_t{43091488}, int64_t{2153401065217}}) c->add_dims(d);
  b.node("Add", {"c", "c"}, {"y"}, "add");
  expect_error([&] { load_onnx_bytes(b.bytes(), "empty.onnx"); },
               {"empty.onnx", "multiply past 2^62"});
}

// fuzz_onnx: Expand's shape given as floats, one of them -1.6e38; reading it as an integer
// during constant folding was undefined behaviour (UBSan: float outside the range of long).
TEST(FuzzRegressions, FloatShapeOutsideTheIntegerRange) {
  OnnxBuilder b;
  b.output("y", {2});
  b.initializer("x", Tensor::from<float>({1}, {1.f}));
  b.initializer("shape", Tensor::from<float>({1}, {-1.6e38f}));
  b.node("Expand", {"x", "shape"}, {"e"}, "expand");
  b.node("Identity", {"e"}, {"y"}, "identity");
  expect_error([&] { load_onnx_bytes(b.bytes(), "expand.onnx"); },
               {"expand", "not an integer in range"});
}
