// The public API as a user of libmixq sees it: this executable includes only mixq/mixq.h and
// links only mixq::mixq, so a header that leaks an internal type or a symbol libmixq.so does not
// export fails to build here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "mixq/mixq.h"

namespace api = mixq::api;
namespace fs = std::filesystem;

namespace {

// A fresh folder removed with the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string name = "mixq_api_";
    name += std::to_string(::getpid());
    name += '_';
    name += ::testing::UnitTest::GetInstance()->current_test_info()->name();
    path = fs::temp_directory_path() / name;
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The Error's text when `f` throws mixq::Error, else a failure.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const mixq::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no mixq::Error thrown";
  return "";
}

}  // namespace

TEST(Api, DefaultModelIsFoundAndDescribesItself) {
  EXPECT_FALSE(api::version().empty());
  const api::Model m = api::Model::load(api::default_model_path());
  ASSERT_EQ(m.inputs().size(), 1u);
  ASSERT_EQ(m.outputs().size(), 1u);
  const std::vector<api::LayerInfo> layers = m.layers();
  ASSERT_GE(layers.size(), 2u);
  for (const api::LayerInfo& l : layers) {
    EXPECT_FALSE(l.name.empty());
    EXPECT_GT(l.rows, 0);
    EXPECT_EQ(l.weights % l.rows, 0) << l.name;
  }
}

TEST(Api, BadInputsAreErrorsNamingTheirSource) {
  TempDir d;
  EXPECT_NE(error_of([&] { api::Model::load(d.file("missing.onnx")); }).find("missing.onnx"),
            std::string::npos);
  EXPECT_NE(error_of([] { api::Model::from_bytes("not a protobuf", "junk.bin"); }).find("junk.bin"),
            std::string::npos);
  EXPECT_NE(error_of([] { api::Data::open("nosuch:thing"); }).find("nosuch"), std::string::npos);
  EXPECT_NE(error_of([] {
              api::Data::from_arrays({{"x", api::Array{{2, 3}, std::vector<float>(5)}}});
            }).find("shape needs 6"),
            std::string::npos);
  // A value used before it was made is an error, not a crash.
  EXPECT_NE(error_of([] { api::Model().layers(); }).find("model"), std::string::npos);
  EXPECT_NE(error_of([] { api::Allocation().layers(); }).find("allocation"), std::string::npos);
}

TEST(Api, ArraysFeedTheModelAndLabelsAreOptional) {
  const api::Model m = api::Model::load(api::default_model_path());
  api::Array x{{4, 1, 28, 28}, std::vector<float>(4 * 28 * 28)};
  for (size_t i = 0; i < x.values.size(); ++i) x.values[i] = static_cast<float>(i % 17) / 17.0f;
  const api::Data unlabelled = api::Data::from_arrays({{"", x}});
  EXPECT_EQ(unlabelled.size(), 4u);
  EXPECT_FALSE(unlabelled.labelled());
  const api::Accuracy a = api::evaluate(m, unlabelled);
  EXPECT_EQ(a.samples, 4u);
  EXPECT_FALSE(a.labelled);
  const api::Data labelled = api::Data::from_arrays({{"", x}}, {0, 1, 2, 3});
  EXPECT_TRUE(labelled.labelled());
  EXPECT_TRUE(api::evaluate(m, labelled).labelled);
}

// The whole pipeline of `mixq quantize` through the API on the default model and Fashion-MNIST.
TEST(Api, QuantizesUnderABudgetAndExportsWhatItMeasured) {
  api::Data train, test;
  try {
    train = api::Data::open("fmnist:train");
    test = api::Data::open("fmnist:test");
  } catch (const mixq::Error& e) {
    GTEST_SKIP() << "Fashion-MNIST not installed (apt install dataset-fashion-mnist): " << e.what();
  }
  const api::Model model = api::Model::load(api::default_model_path());
  api::CalibrateOptions co;
  co.samples = 128;
  const api::Calibration cal = api::calibrate(model, train, co);
  EXPECT_EQ(cal.activation_bits(), 8);
  EXPECT_EQ(cal.samples(), 128u);

  api::SensitivityOptions so;
  so.candidates = {"w2", "w4", "w8"};
  so.samples = 64;
  int progress_lines = 0;
  so.progress = [&](const std::string&) { ++progress_lines; };
  const api::Sensitivities s = api::measure_sensitivities(model, cal, train, so);
  const size_t L = s.layers().size(), C = s.candidates().size();
  ASSERT_GE(L, 2u);
  ASSERT_LE(L, model.layers().size());  // the first and last layers may stay at 8 bits
  ASSERT_EQ(C, 3u);
  ASSERT_EQ(s.single().size(), L * C);
  ASSERT_EQ(s.omega().size(), L * C * L * C);
  EXPECT_GT(progress_lines, 0);
  // Omega's diagonal is the single-layer perturbation; Omega is symmetric.
  const std::vector<double> om = s.omega(), single = s.single();
  for (size_t i = 0; i < L * C; ++i) {
    EXPECT_NEAR(om[i * L * C + i], single[i], 1e-9);
    for (size_t j = 0; j < L * C; ++j) EXPECT_DOUBLE_EQ(om[i * L * C + j], om[j * L * C + i]);
  }

  EXPECT_NE(error_of([&] { api::allocate(s, "1bits"); }).find("1bits"), std::string::npos);
  const api::Allocation a = api::allocate(s, "4bits");
  EXPECT_EQ(a.method(), "clado");
  ASSERT_EQ(a.layers().size(), L);
  ASSERT_EQ(a.budgets().size(), 1u);
  EXPECT_EQ(a.budgets()[0].budget, "4bits");
  EXPECT_DOUBLE_EQ(a.budgets()[0].limit, 4.0);
  EXPECT_LE(a.budgets()[0].used, 4.0 + 1e-9);
  EXPECT_TRUE(std::isfinite(a.predicted_loss_increase()));

  // Per-layer control: the first searched layer pinned to w8, the last layer kept float; a bits
  // budget averages over the searched layers left free.
  api::AllocateOptions ao;
  ao.pins = {"^" + s.layers()[0] + "$=w8"};
  ao.keep_float = {"^" + model.layers().back().name + "$"};
  const api::Allocation fixed = api::allocate(s, "3bits", ao);
  const std::vector<api::LayerInfo> all_layers = model.layers();
  double free_bits = 0, free_weights = 0;
  for (const api::LayerChoice& c : fixed.layers()) {
    const auto l = std::find_if(all_layers.begin(), all_layers.end(),
                                [&](const api::LayerInfo& i) { return i.name == c.layer; });
    ASSERT_NE(l, all_layers.end()) << c.layer;
    if (c.layer == s.layers()[0]) {
      EXPECT_EQ(c.candidate, "w8");
    } else if (c.layer == all_layers.back().name) {
      EXPECT_EQ(c.candidate, "float");
      EXPECT_EQ(c.bits, 32);
    } else {
      free_bits += c.bits * l->weights;
      free_weights += l->weights;
    }
  }
  ASSERT_EQ(fixed.layers().size(), L + 1);  // the searched layers and the float last layer
  EXPECT_NEAR(free_bits / free_weights, fixed.budgets()[0].used, 1e-9);
  EXPECT_LE(fixed.budgets()[0].used, 3.0 + 1e-9);
  EXPECT_NE(api::apply(model, cal, fixed).config_json().find("\"fixed_layers\""),
            std::string::npos);
  api::AllocateOptions bad;
  bad.pins = {"nosuch=w4"};
  EXPECT_NE(error_of([&] {
              api::allocate(s, "3bits", bad);
            }).find("pins 'nosuch=w4': matches no quantizable layer"),
            std::string::npos);
  bad.pins = {"conv=w4"};
  bad.keep_float = {s.layers()[0]};
  EXPECT_NE(
      error_of([&] { api::allocate(s, "3bits", bad); }).find("is also kept float by keep_float"),
      std::string::npos);

  const api::QuantizedModel q = api::apply(model, cal, a);
  // What the allocation says it uses is what its layer choices hold: a bits budget is the
  // average over the searched layers; the others stay at 8 bits in the applied model.
  double searched_bits = 0, searched_weights = 0, all_bits = 0, all_weights = 0;
  for (const api::LayerInfo& l : model.layers()) {
    double bits = 8;
    for (const api::LayerChoice& c : a.layers())
      if (c.layer == l.name) {
        bits = c.bits;
        searched_bits += c.bits * l.weights;
        searched_weights += l.weights;
      }
    all_bits += bits * l.weights;
    all_weights += l.weights;
  }
  EXPECT_NEAR(searched_bits / searched_weights, a.budgets()[0].used, 1e-9);
  EXPECT_NEAR(q.average_weight_bits(), all_bits / all_weights, 1e-9);
  // The per-layer table: every quantized layer, the searched ones as allocated.
  const std::vector<api::QuantizedLayer> table = q.layers();
  ASSERT_EQ(table.size(), model.layers().size());
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].name, model.layers()[i].name);
    EXPECT_EQ(table[i].weights, model.layers()[i].weights);
    EXPECT_EQ(table[i].activation_bits, 8) << table[i].name;
    EXPECT_EQ(table[i].schemes, "fixed") << table[i].name;
    double bits = 8;
    for (const api::LayerChoice& c : a.layers())
      if (c.layer == table[i].name) bits = c.bits;
    EXPECT_NEAR(table[i].weight_bits, bits, 1e-9) << table[i].name;
  }
  EXPECT_GT(q.weight_bytes(), 0);

  TempDir d;
  q.export_qdq(d.file("q.onnx"));
  q.save_config(d.file("q.json"));
  q.export_packed(d.file("q.mixq"));
  for (const char* f : {"q.onnx", "q.json", "q.mixq"}) EXPECT_GT(fs::file_size(d.file(f)), 0u);

  const api::Accuracy fp = api::evaluate(model, test, 500);
  const api::Accuracy qa = api::evaluate(q, test, 500);
  const api::Accuracy exported = api::evaluate(api::Model::load(d.file("q.onnx")), test, 500);
  EXPECT_EQ(qa.samples, 500u);
  EXPECT_GT(fp.top1, 0.8);
  EXPECT_GT(qa.top1, fp.top1 - 0.1);
  // The exported QDQ graph computes what the quantized model measured.
  EXPECT_NEAR(exported.top1, qa.top1, 0.01);

  // Values from another model do not mix.
  const api::Model other = api::Model::load(api::default_model_path());
  EXPECT_NE(error_of([&] { api::apply(other, cal, a); }).find("allocation"), std::string::npos);
}
