// Bad input through the command line: every case ends with one line on stderr naming the file,
// node or flag and the cause, a non-zero exit status, and no crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "support/cli_check.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;

// Conv(1->4, 3x3) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(4->10).
OnnxBuilder tiny_model(const Shape& input_shape = {-1, 1, 28, 28}) {
  OnnxBuilder b;
  b.input("x", input_shape).output("y", {-1, 10});
  b.initializer("w", Tensor(DType::f32, {4, input_shape[1], 3, 3}));
  b.initializer("fc_w", Tensor(DType::f32, {10, 4}));
  b.initializer("fc_b", Tensor(DType::f32, {10}));
  b.node("Conv", {"x", "w"}, {"c"}, "conv0");
  b.node("Relu", {"c"}, {"r"}, "relu0");
  b.node("GlobalAveragePool", {"r"}, {"p"}, "gap0");
  b.node("Flatten", {"p"}, {"f"}, "flatten0");
  auto& g = b.node("Gemm", {"f", "fc_w", "fc_b"}, {"y"}, "fc0");
  OnnxBuilder::attr(g, "transB", int64_t{1});
  return b;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

}  // namespace

TEST(CliErrors, MissingModelFile) {
  auto r = run_command(kMixq + " inspect /nonexistent/model.onnx");
  expect_clean_error(r, "/nonexistent/model.onnx: cannot open file");
}

TEST(CliErrors, EmptyModelFile) {
  TempDir d;
  write_bytes(d.file("empty.onnx"), "");
  expect_clean_error(run_command(kMixq + " inspect " + d.file("empty.onnx")), "file is empty");
}

TEST(CliErrors, TruncatedModelFile) {
  TempDir d;
  std::string bytes = tiny_model().bytes();
  write_bytes(d.file("cut.onnx"), bytes.substr(0, bytes.size() / 2));
  auto r = run_command(kMixq + " inspect " + d.file("cut.onnx"));
  expect_clean_error(r, d.file("cut.onnx") + ": ");
}

TEST(CliErrors, RandomBytesModelFile) {
  TempDir d;
  std::mt19937 rng(7);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  write_bytes(d.file("noise.onnx"), bytes);
  expect_clean_error(run_command(kMixq + " inspect " + d.file("noise.onnx")),
                     d.file("noise.onnx") + ": ");
}

TEST(CliErrors, UnsupportedOperatorNamesTheNode) {
  TempDir d;
  OnnxBuilder b;
  b.input("x", {2, 2}).output("y", {});
  b.node("Det", {"x"}, {"y"}, "det0");
  b.save(d.file("det.onnx"));
  // inspect lists it; eval refuses, naming node and operator.
  auto ins = run_command(kMixq + " inspect " + d.file("det.onnx"));
  EXPECT_EQ(ins.status, 0) << ins.err;
  EXPECT_NE(ins.out.find("unsupported ops: Det"), std::string::npos) << ins.out;
  MIXQ_SKIP_UNLESS_EXISTS("/usr/share/datasets/fashion-mnist");
  auto r = run_command(kMixq + " eval " + d.file("det.onnx") + " --data fmnist:test --limit 8");
  expect_clean_error(r, "Det node 'det0': unsupported operator Det");
}

TEST(CliErrors, InputShapeDoesNotMatchData) {
  MIXQ_SKIP_UNLESS_EXISTS("/usr/share/datasets/fashion-mnist");
  TempDir d;
  tiny_model({-1, 3, 32, 32}).save(d.file("rgb.onnx"));
  auto r = run_command(kMixq + " eval " + d.file("rgb.onnx") + " --data fmnist:test --limit 8");
  expect_clean_error(r, "model input 'x': expects shape [N,3,32,32], got [8,1,28,28]");
}

TEST(CliErrors, EmptyDataFolder) {
  TempDir d;
  tiny_model().save(d.file("m.onnx"));
  std::filesystem::create_directories(d.file("empty"));
  auto r = run_command(kMixq + " eval " + d.file("m.onnx") + " --data folder:" + d.file("empty"));
  expect_clean_error(r, d.file("empty"));
}

TEST(CliErrors, MissingDataFolder) {
  TempDir d;
  tiny_model().save(d.file("m.onnx"));
  auto r = run_command(kMixq + " eval " + d.file("m.onnx") + " --data folder:/nonexistent/dir");
  expect_clean_error(r, "/nonexistent/dir");
}

TEST(CliErrors, CorruptImageNamesTheFile) {
  TempDir d;
  tiny_model().save(d.file("m.onnx"));
  std::filesystem::create_directories(d.file("data/cat"));
  write_bytes(d.file("data/cat/0000.jpg"), std::string(300, '\x5a'));
  auto r = run_command(kMixq + " eval " + d.file("m.onnx") + " --data folder:" + d.file("data") +
                       " --channels 1");
  expect_clean_error(r, d.file("data/cat/0000.jpg"));
}

TEST(CliErrors, BadDataSpec) {
  TempDir d;
  tiny_model().save(d.file("m.onnx"));
  expect_clean_error(run_command(kMixq + " eval " + d.file("m.onnx") + " --data nosuch:thing"),
                     "nosuch:thing");
}

TEST(CliErrors, BadFlags) {
  expect_clean_error(run_command(kMixq + " frobnicate"), "frobnicate", 2);
  expect_clean_error(run_command(kMixq + " eval"), "model", 2);
  expect_clean_error(run_command(kMixq + " eval m.onnx --data fmnist:test --batch 0"), "--batch",
                     2);
  expect_clean_error(run_command(kMixq + " eval m.onnx --data fmnist:test --threads x"),
                     "--threads", 2);
  expect_clean_error(run_command(kMixq + " eval m.onnx --data fmnist:test --mean 0.1,abc"),
                     "--mean", 2);
}
