// NumPy data: .npy/.npz parsing (against files numpy itself writes), array datasets fed to
// models with several inputs by name, and the errors for data that does not fit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/memory.h"
#include "data/array_dataset.h"
#include "data/model_inputs.h"
#include "data/npy.h"
#include "eval/evaluate.h"
#include "onnx/import.h"
#include "support/cli_check.h"
#include "support/expect_error.h"
#include "support/onnx_builder.h"

namespace mixq {
namespace {

using test::expect_error;

bool have_numpy() {
  return test::run_command("/usr/bin/python3 -c 'import numpy'").status == 0;
}

// Runs a Python snippet with numpy as np and the folder as D.
void python(const test::TempDir& dir, const std::string& code) {
  std::ofstream(dir.file("make.py")) << "import numpy as np\nD = '" << dir.path() << "'\n" << code;
  const auto r = test::run_command("/usr/bin/python3 " + dir.file("make.py"));
  ASSERT_EQ(r.status, 0) << r.err;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(Npy, ReadsWhatNumpyWritesInEveryLayout) {
  if (!have_numpy()) GTEST_SKIP() << "python3-numpy is not installed";
  test::TempDir dir;
  python(dir, R"(
a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
np.save(D + '/f32.npy', a)
np.save(D + '/f64.npy', a.astype(np.float64))
np.save(D + '/fortran.npy', np.asfortranarray(a))
np.save(D + '/transposed.npy', a.astype(np.float32).T)  # saved with fortran_order True
np.save(D + '/big.npy', a.astype('>f4'))
np.save(D + '/i64.npy', np.arange(-3, 3, dtype=np.int64))
np.save(D + '/i32.npy', np.arange(-3, 3, dtype=np.int32))
np.save(D + '/u8.npy', np.arange(6, dtype=np.uint8).reshape(2, 3))
np.save(D + '/bool.npy', np.array([True, False, True]))
np.save(D + '/scalar.npy', np.float32(2.5))
np.save(D + '/empty.npy', np.zeros((0, 3), np.float32))
np.save(D + '/f16.npy', a.astype(np.float16))
)");
  const Tensor f32 = read_npy(dir.file("f32.npy"));
  ASSERT_EQ(f32.shape(), (Shape{2, 3, 4}));
  for (int i = 0; i < 24; ++i) EXPECT_FLOAT_EQ(f32.data<float>()[i], static_cast<float>(i) / 7);
  EXPECT_EQ(read_npy(dir.file("f64.npy")).dtype(), DType::f64);
  EXPECT_EQ(read_npy(dir.file("fortran.npy")).to_floats(), f32.to_floats());
  EXPECT_EQ(read_npy(dir.file("big.npy")).to_floats(), f32.to_floats());
  const Tensor t = read_npy(dir.file("transposed.npy"));
  ASSERT_EQ(t.shape(), (Shape{4, 3, 2}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        EXPECT_EQ(t.data<float>()[k * 6 + j * 2 + i], f32.data<float>()[i * 12 + j * 4 + k]);
  EXPECT_EQ(read_npy(dir.file("i64.npy")).to_ints(), (std::vector<int64_t>{-3, -2, -1, 0, 1, 2}));
  EXPECT_EQ(read_npy(dir.file("i32.npy")).dtype(), DType::i32);
  EXPECT_EQ(read_npy(dir.file("u8.npy")).shape(), (Shape{2, 3}));
  EXPECT_EQ(read_npy(dir.file("bool.npy")).to_ints(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(read_npy(dir.file("scalar.npy")).shape(), Shape{});
  EXPECT_EQ(read_npy(dir.file("empty.npy")).shape(), (Shape{0, 3}));
  expect_error([&] { read_npy(dir.file("f16.npy")); }, {"f16.npy", "unsupported dtype '<f2'"});
}

TEST(Npy, WrittenBytesReadBackAndNumpyReadsThem) {
  const Tensor a = Tensor::from<int64_t>({2, 2}, {1, -2, 3, 1LL << 40});
  EXPECT_EQ(parse_npy(npy_bytes(a), "mem").to_ints(), a.to_ints());
  const Tensor v = Tensor::from<float>({3}, {0.5f, -1, 2});
  EXPECT_EQ(parse_npy(npy_bytes(v), "mem").shape(), (Shape{3}));
  if (!have_numpy()) GTEST_SKIP() << "python3-numpy is not installed";
  test::TempDir dir;
  write(dir.file("v.npy"), npy_bytes(v));
  python(dir,
         "x = np.load(D + '/v.npy')\nassert x.dtype == np.float32 and x.tolist() == "
         "[0.5, -1, 2], x\n");
}

TEST(Npy, HostileBytesAreOneLineErrors) {
  const std::string good = npy_bytes(Tensor::from<float>({2, 2}, {1, 2, 3, 4}));
  expect_error([&] { parse_npy("", "f.npy"); }, {"f.npy", "bad magic"});
  expect_error([&] { parse_npy("\x93NUMPY\x09\x00", "f.npy"); }, {"f.npy"});
  expect_error([&] { parse_npy(good.substr(0, 20), "f.npy"); }, {"f.npy", "truncated"});
  expect_error([&] { parse_npy(good.substr(0, good.size() - 1), "f.npy"); },
               {"f.npy", "needs 16 bytes of data, the file holds 15"});
  expect_error([&] { parse_npy(good + "x", "f.npy"); }, {"f.npy", "the file holds 17"});
  std::string bad_shape = good;
  bad_shape.replace(bad_shape.find("(2, 2)"), 6, "(2, -2)");
  expect_error([&] { parse_npy(bad_shape, "f.npy"); }, {"f.npy", "bad shape"});
  std::string huge = good;
  huge.replace(huge.find("(2, 2)"), 6, "(9999999999999, 999999)");
  expect_error([&] { parse_npy(huge, "f.npy"); }, {"f.npy", "memory limit"});
  std::string obj = good;
  obj.replace(obj.find("<f4"), 3, "|O8");
  expect_error([&] { parse_npy(obj, "f.npy"); }, {"f.npy", "unsupported dtype '|O8'"});
  expect_error([&] { parse_npz("PK\x03\x04garbage", "d.npz"); },
               {"d.npz", "not a valid .npz (zip) archive"});
  expect_error([&] { read_npy("/nonexistent/x.npy"); }, {"/nonexistent/x.npy"});
}

TEST(Npz, ArchivesOfNumpyStoredAndCompressed) {
  if (!have_numpy()) GTEST_SKIP() << "python3-numpy is not installed";
  test::TempDir dir;
  python(dir, R"(
ids = np.arange(12, dtype=np.int64).reshape(3, 4) % 5
x = np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3)
np.savez(D + '/named.npz', tokens=ids, x=x, labels=np.array([1, 0, 1]))
np.savez_compressed(D + '/packed.npz', tokens=ids, x=x)
np.savez(D + '/positional.npz', x)
np.savez(D + '/mismatch.npz', a=x, b=ids[:2])
np.savez(D + '/badlabels.npz', x=x, labels=np.array([0.5, 1, 2]))
np.savez(D + '/neglabels.npz', x=x, labels=np.array([0, -1, 2]))
open(D + '/notnpy.npz', 'wb').write(open(D + '/named.npz', 'rb').read().replace(b'x.npy', b'x.txt'))
)");
  auto named = open_dataset("npz:" + dir.file("named.npz"));
  EXPECT_EQ(named->size(), 3u);
  EXPECT_TRUE(named->labelled());
  EXPECT_EQ(named->num_classes(), 2);
  const Batch b = named->get({2, 0});
  EXPECT_EQ(b.names, (std::vector<std::string>{"tokens", "x"}));
  EXPECT_EQ(b.inputs[0].to_ints(), (std::vector<int64_t>{3, 4, 0, 1, 0, 1, 2, 3}));
  EXPECT_EQ(b.labels, (std::vector<int64_t>{1, 1}));
  auto packed = open_dataset("npz:" + dir.file("packed.npz"));
  EXPECT_FALSE(packed->labelled());
  EXPECT_EQ(packed->get({1}).inputs[1].to_floats(), named->get({1}).inputs[1].to_floats());
  EXPECT_TRUE(open_dataset("npz:" + dir.file("positional.npz"))->get({0}).names.empty());
  expect_error([&] { open_dataset("npz:" + dir.file("mismatch.npz")); },
               {"mismatch.npz", "'b' has 2 samples, the first array 3"});
  expect_error([&] { open_dataset("npz:" + dir.file("badlabels.npz")); },
               {"badlabels.npz", "labels must be integers"});
  expect_error([&] { open_dataset("npz:" + dir.file("neglabels.npz")); },
               {"neglabels.npz", "label -1 of sample 1 is negative"});
  expect_error([&] { open_dataset("npz:" + dir.file("notnpy.npz")); },
               {"notnpy.npz:x.txt", "not a .npy member"});
  DataOptions with_mean;
  with_mean.mean = {0.5f};
  expect_error([&] { open_dataset("npz:" + dir.file("named.npz"), with_mean); },
               {"apply to images only"});
}

// tokens int64 [N, 4] -> embedding Gather [5, 3] -> mean over tokens, plus x [N, 3] -> [N, 2].
test::OnnxBuilder two_input_builder() {
  test::OnnxBuilder b;
  b.input("tokens", {-1, 4}, onnx::TensorProto::INT64).input("x", {-1, 3}).output("y", {-1, 2});
  b.initializer("emb", Tensor::from<float>({5, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5}));
  b.initializer("w", Tensor::from<float>({3, 2}, {1, -1, 0.5f, 2, -1, 0.25f}));
  b.node("Gather", {"emb", "tokens"}, {"e"});
  auto& m = b.node("ReduceMean", {"e"}, {"m"});
  test::OnnxBuilder::attr(m, "axes", std::vector<int64_t>{1});
  test::OnnxBuilder::attr(m, "keepdims", int64_t{0});
  b.node("Add", {"m", "x"}, {"s"});
  b.node("MatMul", {"s", "w"}, {"y"});
  return b;
}

Graph two_input_model() {
  return load_onnx_bytes(two_input_builder().bytes(), "two_inputs");
}

TEST(ModelInputs, ArraysFeedInputsByNameWithNumpyConversions) {
  const Graph g = two_input_model();
  // x as float64 and tokens as int32, in the other order: matched by name and converted.
  const Tensor ids = Tensor::from<int32_t>({2, 4}, {0, 1, 2, 3, 4, 4, 4, 4});
  const Tensor x = Tensor::from<double>({2, 3}, {1, 2, 3, -1, -2, -3});
  ArrayDataset data({"x", "tokens"}, {x, ids}, Tensor(), "npz:mem");
  const std::vector<Tensor> in = model_inputs(data.get({0, 1}), g, data);
  ASSERT_EQ(in.size(), 2u);
  EXPECT_EQ(in[0].dtype(), DType::i64);
  EXPECT_EQ(in[0].to_ints(), (std::vector<int64_t>{0, 1, 2, 3, 4, 4, 4, 4}));
  EXPECT_EQ(in[1].dtype(), DType::f32);
  // Unlabelled evaluation against the same model: full agreement, exact outputs.
  Executor ex(g, Impl::fast), ref(g, Impl::reference);
  EvalOptions o;
  o.reference = &ref;
  const EvalResult r = evaluate(ex, data, o);
  EXPECT_FALSE(r.labelled);
  EXPECT_EQ(r.samples, 2u);
  ASSERT_TRUE(r.compared);
  EXPECT_EQ(r.agreement.top1, 1.0);
  EXPECT_NEAR(r.agreement.kl, 0.0, 1e-9);
  EXPECT_GT(r.agreement.sqnr_db.at(0), 100.0);

  ArrayDataset missing({"x"}, {x}, Tensor(), "npz:a.npz");
  expect_error([&] { model_inputs(missing.get({0}), g, missing); },
               {"npz:a.npz", "has no array for model input 'tokens'"});
  ArrayDataset extra({"x", "tokens", "mask"}, {x, ids, ids}, Tensor(), "npz:b.npz");
  expect_error([&] { model_inputs(extra.get({0}), g, extra); },
               {"npz:b.npz", "array 'mask' is not an input of the model (inputs: tokens, x)"});
  ArrayDataset floats({"x", "tokens"}, {x, x}, Tensor(), "npz:c.npz");
  expect_error([&] { model_inputs(floats.get({0}), g, floats); },
               {"npz:c.npz", "array 'tokens' is float64, model input 'tokens' expects int64"});
  ArrayDataset positional({}, {x}, Tensor(), "npy:x.npy");
  expect_error([&] { model_inputs(positional.get({0}), g, positional); },
               {"npy:x.npy", "gives 1 input(s), the model has 2 (tokens, x)"});
  ArrayDataset wrong_shape({"x", "tokens"}, {Tensor(DType::f32, {2, 5}), ids}, Tensor(), "npz:d");
  expect_error([&] { evaluate(ex, wrong_shape); }, {"npz:d", "does not fit the model", "'x'"});
  ArrayDataset labelled({"x", "tokens"}, {x, ids}, Tensor::from<int64_t>({2}, {1, 7}), "npz:e");
  expect_error([&] { evaluate(ex, labelled); }, {"npz:e", "label 7", "2 classes"});
}

TEST(ModelInputs, CommandLineRefusesDataThatDoesNotFitInOneLine) {
  test::TempDir dir;
  const std::string model = dir.file("two.onnx");
  two_input_builder().save(model);
  const Tensor ids(DType::i64, {6, 4}), x(DType::f32, {6, 3});
  auto npz = [&](const std::string& name, std::vector<std::pair<std::string, Tensor>> arrays) {
    write(dir.file(name), npz_bytes(arrays, false));
    return " --data npz:" + dir.file(name);
  };
  const std::string mixq = std::string(MIXQ_BINARY) + " ";
  test::expect_clean_error(test::run_command(mixq + "eval " + model + npz("a.npz", {{"x", x}})),
                           "has no array for model input 'tokens'");
  test::expect_clean_error(
      test::run_command(mixq + "eval " + model + npz("b.npz", {{"x", x}, {"tokens", x}})),
      "array 'tokens' is float32, model input 'tokens' expects int64");
  test::expect_clean_error(
      test::run_command(mixq + "eval " + model +
                        npz("c.npz", {{"x", Tensor(DType::f32, {6, 5})}, {"tokens", ids}})),
      "does not fit the model");
  test::expect_clean_error(
      test::run_command(mixq + "eval " + model +
                        npz("d.npz", {{"x", x},
                                      {"tokens", ids},
                                      {"labels", Tensor::from<int64_t>({6}, {0, 1, 2, 0, 1, 0})}})),
      "label 2 is outside the 2 classes");
  test::expect_clean_error(
      test::run_command(mixq + "eval " + model +
                        npz("e.npz", {{"x", x},
                                      {"tokens", ids},
                                      {"labels", Tensor::from<int64_t>({5}, {0, 1, 0, 0, 1})}})),
      "labels must have shape [6]");
  // Unlabelled data where labels are needed: refused before any work or output.
  const std::string unlabelled = npz("f.npz", {{"x", x}, {"tokens", ids}});
  test::expect_clean_error(test::run_command(mixq + "quantize " + model + " --calib-data" +
                                             unlabelled.substr(unlabelled.find(' ', 1)) +
                                             " --finetune 1 -o " + dir.file("out")),
                           "has no labels, and --finetune needs them");
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
  test::expect_clean_error(test::run_command(mixq + "train --init " + model + unlabelled +
                                             " --epochs 1 -o " + dir.file("t.onnx")),
                           "has no labels, and training needs them");
  EXPECT_FALSE(std::filesystem::exists(dir.file("t.onnx")));
  // Without labels, eval runs and says what it could not measure.
  const auto ok = test::run_command(mixq + "eval " + model + unlabelled);
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_NE(ok.out.find("accuracy not measured: the data has no labels"), std::string::npos)
      << ok.out;
}

}  // namespace
}  // namespace mixq
