// --keep-float and --pin on the command line: quantize on the embedded default model keeps the
// float layer float and the pinned layers at their candidate within a budget that counts them;
// allocate and calibrate take the same rules; bad rules are one-line usage errors leaving no
// output.
#include <gtest/gtest.h>

#include <filesystem>

#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/config.h"
#include "support/cli_check.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;
const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

// The default model's layers: conv1 (first), conv2..conv4 (searched), fc (last).
std::vector<QuantLayer> layers_named(const Graph& g, const std::vector<std::string>& names) {
  std::vector<QuantLayer> out;
  for (const QuantLayer& l : find_quant_layers(g))
    for (const std::string& n : names)
      if (l.name == n) out.push_back(l);
  return out;
}

void expect_float(const QuantConfig& cfg, const std::string& layer) {
  ASSERT_NE(cfg.find(layer), nullptr) << layer;
  EXPECT_TRUE(cfg.find(layer)->rows.empty()) << layer;
  EXPECT_FALSE(cfg.find(layer)->input.has_value()) << layer;
}

void expect_bits(const QuantConfig& cfg, const std::string& layer, int bits) {
  ASSERT_NE(cfg.find(layer), nullptr) << layer;
  ASSERT_FALSE(cfg.find(layer)->rows.empty()) << layer;
  for (const RowQuant& r : cfg.find(layer)->rows) EXPECT_EQ(r.bits, bits) << layer;
  EXPECT_TRUE(cfg.find(layer)->input.has_value()) << layer;
}

}  // namespace

TEST(LayerRulesCli, QuantizeAndAllocateHonourPinsAndFloatLayersInTheBudget) {
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string out = dir.file("q");
  // A size budget the float fc (123 KB at 32 bits) and the pinned conv3 take most of.
  const CommandResult r = run_command(
      "OMP_WAIT_POLICY=passive " + kMixq +
      " quantize --pin 'conv1=w8' --pin '^conv3$=w8' --keep-float 'fc' --budget 3bits,160KB "
      "--samples 64 --calib-samples 64 --limit 200 --no-curves --threads 2 -o " +
      out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("fixed    conv1 w8, conv3 w8, fc float\n"), std::string::npos) << r.out;
  const QuantConfig cfg = load_quant_config(out + "/quant.json");
  expect_bits(cfg, "conv1", 8);
  expect_bits(cfg, "conv3", 8);
  expect_float(cfg, "fc");
  EXPECT_EQ(cfg.info.at("fixed_layers"),
            nlohmann::json({{"conv1", "w8"}, {"conv3", "w8"}, {"fc", "float"}}));
  const Graph g = load_onnx(repo_path("models/fmnist_default.onnx"));
  // Both budgets met: the size of the whole model with its fixed layers, the bits over the
  // searched layers left free.
  EXPECT_LE(weight_bytes(g, cfg), 160.0 * 1024);
  EXPECT_LE(average_weight_bits(g, cfg, layers_named(g, {"conv2", "conv4"})), 3.0 + 1e-9);
  EXPECT_GT(weight_bytes(g, cfg), 4.0 * 31360);  // fc is float in it

  // allocate on the measurement with other rules; the same measurement serves them.
  const std::string omega = out + "/sensitivity.omega", q = dir.file("a.json");
  const CommandResult a = run_command(kMixq + " allocate --omega " + omega +
                                      " --budget 3bits --method greedy --keep-float conv2 " +
                                      "--keep-float '^conv1$' --pin 'conv4=w2' -o " + q);
  ASSERT_EQ(a.status, 0) << a.err;
  const QuantConfig acfg = load_quant_config(q);
  expect_float(acfg, "conv1");
  expect_float(acfg, "conv2");
  expect_bits(acfg, "conv4", 2);
  expect_bits(acfg, "fc", 8);  // an edge layer no rule names
  EXPECT_LE(average_weight_bits(g, acfg, layers_named(g, {"conv3"})), 3.0 + 1e-9);

  // Bad rules: one line naming the flag and its text, exit 2, nothing written.
  for (const auto& [rules, says] : std::vector<std::pair<std::string, std::string>>{
           {"--keep-float 'nosuch'", "--keep-float 'nosuch': matches no quantizable layer"},
           {"--pin 'conv=w4' --pin 'conv2=w8'",
            "--pin 'conv2=w8': layer 'conv2' is also pinned to w4 by --pin 'conv=w4'"},
           {"--keep-float conv2 --pin 'conv[23]=w4'", "layer 'conv2' is also kept float"},
           {"--pin 'conv2=w6'", "--pin 'conv2=w6': w6 is not among the searched candidates"},
           {"--pin conv2", "--pin: must be REGEX=CANDIDATE"},
           {"--keep-float '('", "--keep-float: bad regular expression"}}) {
    const std::string bad = dir.file("bad");
    expect_clean_error(run_command(kMixq + " allocate --omega " + omega + " --budget 3bits " +
                                   rules + " -o " + bad),
                       says, 2);
    EXPECT_FALSE(std::filesystem::exists(bad)) << rules;
    expect_clean_error(
        run_command(kMixq + " quantize --budget 3bits " + rules + " --limit 100 -o " + bad), says,
        2);
    EXPECT_FALSE(std::filesystem::exists(bad)) << rules;
  }
}

TEST(LayerRulesCli, CalibrateAppliesTheRulesToAUniformConfig) {
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string q = dir.file("c.json");
  // Without a search any candidate pins (w6 is no --candidates member here).
  const CommandResult r = run_command(
      "OMP_WAIT_POLICY=passive " + kMixq + " calibrate " + repo_path("models/fmnist_default.onnx") +
      " --data fmnist:train --calib-samples 64 --wbits 4 --pin 'conv2=w6' --keep-float fc "
      "--threads 2 -o " +
      q);
  ASSERT_EQ(r.status, 0) << r.err;
  const QuantConfig cfg = load_quant_config(q);
  expect_bits(cfg, "conv1", 8);
  expect_bits(cfg, "conv2", 6);
  expect_bits(cfg, "conv3", 4);
  expect_float(cfg, "fc");
  expect_clean_error(
      run_command(kMixq + " calibrate " + repo_path("models/fmnist_default.onnx") +
                  " --data fmnist:train --keep-float 'conv9' -o " + dir.file("d.json")),
      "--keep-float 'conv9': matches no quantizable layer", 2);
  EXPECT_FALSE(std::filesystem::exists(dir.file("d.json")));
}
