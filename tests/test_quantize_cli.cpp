// mixq quantize as the whole job: on the embedded default model with no arguments but a budget,
// CLADO over mixed-scheme candidates under size and FPGA-latency budgets, every output file,
// a resumed second run, the same accuracy from eval --quant, and bad budgets leaving no output.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <tuple>

#include "quant/config.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;
const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

// The number after `label` in the text (NaN when absent).
double number_after(const std::string& text, const std::string& label) {
  const size_t p = text.find(label);
  return p == std::string::npos ? std::nan("") : std::stod(text.substr(p + label.size()));
}

}  // namespace

TEST(QuantizeCli, DefaultModelUnderSizeAndLatencyBudgets) {
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string out = dir.file("q");
  const std::string cmd = "OMP_WAIT_POLICY=passive " + kMixq +
                          " quantize --budget 3.5bits,0.8ms@XC7Z020 --candidates "
                          "w2,w4,w4-msq1.5,w8 --samples 128 --calib-samples 128 --limit 1000 "
                          "--threads 2 -o " +
                          out;
  const CommandResult r = run_command(cmd);
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* f :
       {"quant.json", "model_qdq.onnx", "model.mixq", "report.html", "sensitivity.omega",
        "model.onnx"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  // The IQP's latency is the hardware model's latency of the result, and within the budget.
  const double predicted = number_after(r.out, "predicted latency ");
  const double fpga = number_after(r.out, "FPGA XC7Z020: ");
  EXPECT_NEAR(predicted, fpga, 1e-3) << r.out;
  EXPECT_LE(predicted, 0.8 + 1e-9);
  const QuantConfig cfg = load_quant_config(out + "/quant.json");
  EXPECT_EQ(cfg.info.at("allocation").at("choice").size(), 3u);  // conv2..conv4 searched
  const double top1 = number_after(r.out, "top-1    ");
  EXPECT_GT(top1, 85.0) << r.out;
  // The weights are rounded with compensation (the default): eval --quant of the written config
  // on the written model gives the same top-1, and on the original model it is refused.
  EXPECT_NE(r.out.find("rounding: gptq"), std::string::npos) << r.out;
  EXPECT_EQ(cfg.info.at("rounding"), "gptq");
  const CommandResult e = run_command(kMixq + " eval " + out +
                                      "/model.onnx --data fmnist:test --limit 1000 --quant " +
                                      out + "/quant.json");
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_NEAR(number_after(e.out, "top-1    "), top1, 1e-9) << e.out;
  const CommandResult wrong =
      run_command(kMixq + " eval " + repo_path("models/fmnist_default.onnx") +
                  " --data fmnist:test --limit 1000 --quant " + out + "/quant.json");
  EXPECT_NE(wrong.status, 0);
  EXPECT_NE(wrong.err.find(out + "/quant.json: was made for other weights"), std::string::npos)
      << wrong.err;
  EXPECT_EQ(wrong.out, "");
  // The report shows the allocation, Omega and the FPGA section.
  std::ifstream f(out + "/report.html");
  const std::string html((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("class=\"cell\""), std::string::npos);
  EXPECT_NE(html.find("FPGA: XC7Z020"), std::string::npos);
  EXPECT_NE(html.find("class=\"series\""), std::string::npos);  // accuracy-vs-size curves
  // A second run resumes the finished measurement and writes the same config.
  const CommandResult again = run_command(cmd + " --no-curves");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.out.find("resuming"), std::string::npos);
  EXPECT_EQ(load_quant_config(out + "/quant.json").info.at("allocation"),
            cfg.info.at("allocation"));
}

TEST(QuantizeCli, BadBudgetsAndReusedFoldersFailCleanly) {
  TempDir dir;
  for (const char* budget : {"3bats", "5ms", "5ms@XC9999", "0bits"}) {
    const std::string out = dir.file("out");
    const CommandResult r = run_command(kMixq + " quantize --budget " + budget + " -o " + out);
    EXPECT_EQ(r.status, 2) << budget;
    EXPECT_NE(r.err.find("--budget"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << budget << " left " << out;
  }
  const CommandResult r =
      run_command(kMixq + " quantize some.onnx --budget 3bits -o " + dir.file("x"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--calib-data"), std::string::npos) << r.err;
}

// A budget the candidates cannot meet fails before calibration or any measurement, saying what
// the cheapest assignment needs, and leaves no output folder.
TEST(QuantizeCli, InfeasibleBudgetsFailBeforeAnyMeasurement) {
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string out = dir.file("out");
  for (const auto& [budget, candidates, needs] :
       {std::tuple{"1KB", "w2,w4,w8", "the cheapest assignment needs "},
        std::tuple{"1.5bits", "w2,w4", "the cheapest assignment needs 2.000 bits"},
        std::tuple{"3bits", "w4,w8", "the cheapest assignment needs 4.000 bits"},
        std::tuple{"1BOPs", "w2,w4", "MBOPs"},
        std::tuple{"0.0001ms@XC7Z020", "w2,w4", " ms on XC7Z020"}}) {
    const CommandResult r = run_command(kMixq + " quantize --budget " + budget + " --candidates " +
                                        candidates + " --limit 100 -o " + out);
    EXPECT_EQ(r.status, 2) << budget << r.err;  // the --budget flag asks the impossible
    EXPECT_NE(r.err.find(std::string("--budget: budget '") + budget + "' cannot be met"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(needs), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.out.find("calibrat"), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(out)) << budget << " left " << out;
  }
}

TEST(QuantizeCli, FinetuneWritesTheTrainedModelThatEvalReproduces) {
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string out = dir.file("ft");
  const CommandResult r =
      run_command("OMP_WAIT_POLICY=passive " + kMixq +
                  " quantize --wbits 4 --abits 4 --finetune 1 --limit 512 --threads 2 -o " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(out + "/model.onnx"));
  EXPECT_EQ(load_quant_config(out + "/quant.json").info.at("finetune").at("epochs"), 1);
  const CommandResult e = run_command(kMixq + " eval " + out + "/model.onnx --data fmnist:test " +
                                      "--limit 512 --quant " + out + "/quant.json");
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_NEAR(number_after(e.out, "top-1    "), number_after(r.out, "top-1    "), 1e-9) << e.out;
}
