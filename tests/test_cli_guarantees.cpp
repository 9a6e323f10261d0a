// What the command line guarantees a user (README): outputs never overwrite inputs, outputs are
// checked before any work, the model file respects --mem-limit, every flag acts or is refused
// (exit 2, one line naming it), and messages name what is really wrong.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/file_io.h"
#include "data/idx.h"
#include "quant/config.h"
#include "support/cli_check.h"
#include "support/expect_error.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::test;
namespace fs = std::filesystem;

namespace {

const std::string kMixq = MIXQ_BINARY;

// Conv(1->4, 3x3) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(4->10): ten classes.
OnnxBuilder tiny_model(int64_t extra_floats = 0) {
  OnnxBuilder b;
  b.input("x", {-1, 1, 28, 28}).output("y", {-1, 10});
  Tensor w(DType::f32, {4, 1, 3, 3});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = 0.01f * static_cast<float>(i % 7);
  b.initializer("w", w);
  b.initializer("fc_w", Tensor(DType::f32, {10, 4}));
  b.initializer("fc_b", Tensor(DType::f32, {10}));
  // An unused initializer makes the file as large as a test needs.
  if (extra_floats > 0) b.initializer("pad", Tensor(DType::f32, {extra_floats}));
  b.node("Conv", {"x", "w"}, {"c"}, "conv0");
  b.node("Relu", {"c"}, {"r"}, "relu0");
  b.node("GlobalAveragePool", {"r"}, {"p"}, "gap0");
  b.node("Flatten", {"p"}, {"f"}, "flatten0");
  auto& g = b.node("Gemm", {"f", "fc_w", "fc_b"}, {"y"}, "fc0");
  OnnxBuilder::attr(g, "transB", int64_t{1});
  return b;
}

// Eight 28x28 images with the given labels, as an idx: data spec.
std::string idx_data(const TempDir& d,
                     const std::vector<uint8_t>& labels = {0, 1, 2, 3, 4, 5, 6, 7}) {
  const auto n = static_cast<int64_t>(labels.size());
  std::vector<uint8_t> px(static_cast<size_t>(n) * 28 * 28);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 31);
  write_idx(d.file("x.idx"), {n, 28, 28}, px, false);
  write_idx(d.file("y.idx"), {n}, labels, false);
  return "idx:" + d.file("x.idx") + "," + d.file("y.idx");
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The one-line error of a refused output, and the input left as it was.
void expect_refused_overwrite(const std::string& cmd, const std::string& message,
                              const std::string& input) {
  const std::string before = read_file(input);
  const CommandResult r = run_command(cmd);
  expect_clean_error(r, message, 2);
  EXPECT_EQ(read_file(input), before) << input << " changed";
}

}  // namespace

// ---- Item 3: outputs never overwrite inputs -----------------------------------------------

TEST(CliGuarantees, QuantizeRefusesAnOutputFolderHoldingItsInputModel) {
  TempDir d;
  const std::string model = tiny_model().save(d.file("model_qdq.onnx"));
  expect_refused_overwrite(
      kMixq + " quantize " + model + " --calib-data " + idx_data(d) + " -o " + d.path(),
      "-o " + d.path() + "/model_qdq.onnx: is the input model '" + model +
          "'; choose another output",
      model);
  EXPECT_FALSE(exists(d.file("quant.json")));
  EXPECT_FALSE(exists(d.file("report.html")));
}

TEST(CliGuarantees, CalibrateRefusesItsModelByAnyName) {
  TempDir d;
  const std::string model = tiny_model().save(d.file("m.onnx"));
  const std::string data = idx_data(d);
  fs::create_directories(d.file("sub"));
  fs::create_hard_link(model, d.file("hard.onnx"));
  fs::create_symlink(model, d.file("sym.onnx"));
  for (const std::string& out :
       {model, d.file("sub/../m.onnx"), d.file("hard.onnx"), d.file("sym.onnx")})
    expect_refused_overwrite(kMixq + " calibrate " + model + " --data " + data + " -o " + out,
                             "-o " + out + ": is the input model '" + model + "'", model);
  // The data files are inputs too.
  expect_refused_overwrite(
      kMixq + " calibrate " + model + " --data " + data + " -o " + d.file("y.idx"),
      "-o " + d.file("y.idx") + ": is the --data data '" + d.file("y.idx") + "'", d.file("y.idx"));
}

TEST(CliGuarantees, EveryWritingCommandRefusesItsInputs) {
  TempDir d;
  const std::string model = tiny_model().save(d.file("m.onnx"));
  const std::string data = idx_data(d);
  write_text(d.file("s.omega"), "not read: refused before");
  write_text(d.file("q.json"), "{}");
  const std::string m = d.file("m.onnx"), s = d.file("s.omega"), q = d.file("q.json");
  expect_refused_overwrite(kMixq + " sensitivity " + m + " --data " + data + " -o " + m,
                           "-o " + m + ": is the input model", m);
  expect_refused_overwrite(
      kMixq + " sensitivity " + m + " --data " + data + " -o " + d.file("o.omega") + " --json " + m,
      "--json " + m + ": is the input model", m);
  expect_refused_overwrite(kMixq + " allocate --omega " + s + " --budget 4bits -o " + s,
                           "-o " + s + ": is the sensitivity file", s);
  expect_refused_overwrite(kMixq + " sweep --omega " + s + " --budgets 4bits --sens-data " + data +
                               " --data " + data + " -o " + s,
                           "-o " + s + ": is the sensitivity file", s);
  expect_refused_overwrite(kMixq + " report --quant " + q + " -o " + q,
                           "-o " + q + ": is the --quant config", q);
  expect_refused_overwrite(kMixq + " hw " + m + " --device XC7Z020 --json " + m,
                           "--json " + m + ": is the input model", m);
  expect_refused_overwrite(kMixq + " train --init " + m + " --data " + data + " -o " + m,
                           "-o " + m + ": is the --init model", m);
  // finetune writes DIR/model.onnx and DIR/quant.json.
  const std::string fm = tiny_model().save(d.file("model.onnx"));
  expect_refused_overwrite(
      kMixq + " finetune " + fm + " --quant " + q + " --data " + data + " -o " + d.path(),
      "-o " + d.path() + "/model.onnx: is the input model", fm);
  const std::string fq = d.file("quant.json");
  write_text(fq, "{}");
  expect_refused_overwrite(
      kMixq + " finetune " + m + " --quant " + fq + " --data " + data + " -o " + d.path(),
      "-o " + fq + ": is the --quant config", fq);
}

TEST(CliGuarantees, OutputPathsAreCheckedBeforeAnyWork) {
  TempDir d;
  const std::string model = tiny_model().save(d.file("m.onnx"));
  const std::string data = idx_data(d);
  write_text(d.file("file"), "a regular file");
  // An empty path is bad usage naming the flag.
  expect_clean_error(run_command(kMixq + " calibrate " + model + " --data " + data + " -o ''"),
                     "--output: must not be empty", 2);
  expect_clean_error(run_command(kMixq + " quantize " + model + " --calib-data " + data + " -o ''"),
                     "--out: must not be empty", 2);
  // A folder that cannot be made: under a regular file.
  const std::string under = d.file("file/out");
  CommandResult r =
      run_command(kMixq + " quantize " + model + " --calib-data " + data + " -o " + under);
  expect_clean_error(r, under + ": " + d.file("file") + " is not a folder", 1);
  EXPECT_EQ(r.out.find("calibrate"), std::string::npos) << r.out;
  r = run_command(kMixq + " calibrate " + model + " --data " + data + " -o " + under + ".json");
  expect_clean_error(r, under + ".json: " + d.file("file") + " is not a folder", 1);
  r = run_command(kMixq + " sensitivity " + model + " --data " + data + " -o " +
                  d.file("nowhere/s.omega"));
  expect_clean_error(
      r, d.file("nowhere/s.omega") + ": folder " + d.file("nowhere") + " does not exist", 1);
  if (geteuid() != 0) {  // root writes anywhere
    fs::create_directories(d.file("ro"));
    fs::permissions(d.file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
    r = run_command(kMixq + " quantize " + model + " --calib-data " + data + " -o " +
                    d.file("ro/out"));
    expect_clean_error(r, d.file("ro/out") + ": cannot write in folder " + d.file("ro"), 1);
    fs::permissions(d.file("ro"), fs::perms::owner_all);
  }
}

// ---- Item 6: limits that hold --------------------------------------------------------------

TEST(CliGuarantees, ModelFileMustBeARegularFileWithinTheMemoryLimit) {
  expect_clean_error(run_command(kMixq + " inspect /dev/zero"), "/dev/zero: not a regular file");
  TempDir d;
  expect_clean_error(run_command(kMixq + " inspect " + d.path()),
                     d.path() + ": is a folder, not a file");
  // 300 000 floats: a 1.15 MB file, 2.29 MB while parsing, over a 2 MB limit; checked before
  // reading.
  const std::string big = tiny_model(300000).save(d.file("big.onnx"));
  const CommandResult r = run_command(kMixq + " inspect " + big + " --mem-limit 2M");
  expect_clean_error(r, big +
                            ": reading its 1.15 MB (parsing holds 2x) needs 2.29 MB, over the "
                            "memory limit of 2 MB");
  EXPECT_NE(r.err.find("--mem-limit"), std::string::npos) << r.err;
  EXPECT_EQ(run_command(kMixq + " inspect " + big + " --mem-limit 64M").status, 0);
}

TEST(CliGuarantees, FlagsACommandWouldIgnoreAreRefused) {
  TempDir d;
  const std::string model = tiny_model().save(d.file("m.onnx"));
  const std::string data = idx_data(d);
  // sensitivity and calibrate draw their own seeded subsets (--samples, --calib-samples).
  expect_clean_error(run_command(kMixq + " sensitivity " + model + " --data " + data +
                                 " --limit 4 -o " + d.file("s.omega")),
                     "--limit", 2);
  expect_clean_error(run_command(kMixq + " calibrate " + model + " --data " + data +
                                 " --limit 4 -o " + d.file("q.json")),
                     "--limit", 2);
  expect_clean_error(run_command(kMixq + " train --arch lenet --data " + data + " --lr nan -o " +
                                 d.file("t.onnx")),
                     "--lr: must be a finite number, got 'nan'", 2);
  EXPECT_FALSE(exists(d.file("t.onnx")));
  // Options that only act with another: refused without it (quantize) or beside the one that
  // overrides them (hw with a config).
  expect_clean_error(run_command(kMixq + " quantize " + model + " --calib-data " + data +
                                 " --candidates w2,w4 -o " + d.file("q")),
                     "--candidates requires --budget", 2);
  expect_clean_error(run_command(kMixq + " quantize " + model + " --calib-data " + data +
                                 " --samples 64 -o " + d.file("q")),
                     "--samples requires --budget", 2);
  expect_clean_error(
      run_command(kMixq + " hw --arch resnet18 --device XC7Z020 --quant q.json --wbits 2"),
      "--quant excludes --wbits", 2);
  EXPECT_FALSE(exists(d.file("q")));
}

namespace {

struct HelpOption {
  std::string flag, type;
};

// The options a command lists in its --help (its own option table), with their value types.
std::vector<HelpOption> help_options(const std::string& command) {
  const CommandResult r = run_command(kMixq + " " + command + " --help");
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<HelpOption> out;
  std::istringstream lines(r.out);
  std::string line;
  // "  -o,--output TEXT REQUIRED  ..." or "  --wd FLOAT:FLOAT in [0 - 1]=0.0001  ..."
  const std::regex option(R"(^\s+(?:-\w,)?(--[\w-]+) ([A-Z]+)\b)");
  std::smatch m;
  while (std::getline(lines, line))
    if (std::regex_search(line, m, option) && m[1] != "--mem-limit") out.push_back({m[1], m[2]});
  return out;
}

}  // namespace

// Every value-taking flag of every command, given a bad value, is refused while parsing: exit
// 2 and one line naming the flag. New flags are covered as they appear in --help.
TEST(CliGuarantees, EveryFlagRefusesBadValuesAsUsageErrors) {
  // Free text: paths, specs, names, and regexes (any text that compiles; --keep-float).
  const std::set<std::string> paths = {"FILE", "DIR", "SPEC", "NAME", "REGEX"};
  const std::set<std::string> numbers = {"INT", "UINT", "FLOAT"};
  size_t checked = 0;
  for (const char* command : {"inspect", "eval", "calibrate", "quantize", "sensitivity", "allocate",
                              "sweep", "hw", "report", "train", "finetune"}) {
    const std::vector<HelpOption> options = help_options(command);
    EXPECT_EQ(options.empty(), std::string(command) == "inspect") << command;  // only --json
    for (const HelpOption& o : options) {
      std::vector<std::string> bad = {"''"};
      if (numbers.count(o.type)) {
        for (const char* v : {"nan", "inf", "-inf", "1e999", "x1", "-1"}) bad.push_back(v);
        // A seed may be any 64-bit number; -1 is refused as not unsigned, still exit 2.
      } else if (!paths.count(o.type)) {
        bad.push_back("'%garbage%'");
      }
      for (const std::string& v : bad) {
        const CommandResult r = run_command(kMixq + " " + command + " " + o.flag + " " + v);
        SCOPED_TRACE(std::string(command) + " " + o.flag + " " + v + " (" + o.type + ")");
        expect_clean_error(r, o.flag, 2);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 300u);
}

// ---- Item 7: messages that say what is wrong -----------------------------------------------

TEST(CliGuarantees, ExternalDataIsReadBesideTheModel) {
  TempDir d;
  fs::create_directories(d.file("m"));
  const std::string model = tiny_model().save_external(d.file("m/ext.onnx"), "ext.bin");
  ASSERT_TRUE(exists(d.file("m/ext.bin")));
  // From another working folder: the location is relative to the model, not to the cwd.
  const CommandResult r = run_command("cd / && " + kMixq + " inspect " + model);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("params 86"), std::string::npos) << r.out;  // 36 + 40 + 10
  const CommandResult e =
      run_command(kMixq + " eval " + model + " --data " + idx_data(d) + " --json");
  EXPECT_EQ(e.status, 0) << e.err;
  // Short, then missing.
  const std::string bytes = read_file(d.file("m/ext.bin"));
  write_text(d.file("m/ext.bin"), bytes.substr(0, 200));  // w whole, fc_w cut
  expect_clean_error(run_command(kMixq + " inspect " + model),
                     model + ": initializer 'fc_w': external data file " + d.file("m/ext.bin") +
                         " has 200 bytes, needs 160 at offset 144");
  fs::remove(d.file("m/ext.bin"));
  expect_clean_error(
      run_command(kMixq + " inspect " + model),
      model + ": initializer 'w': external data file " + d.file("m/ext.bin") + " does not exist");
}

TEST(CliGuarantees, ScalesOutOfFloatRangeSaySo) {
  const std::string head = R"({"format": "mixq-quant", "version": )" +
                           std::to_string(QuantConfig::kVersion) +
                           R"(, "layers": [{"name": "conv0", )";
  expect_error(
      [&] {
        parse_quant_config(
            head + R"("weight": {"scheme": "fixed", "bits": 4, "scales": [1e39]}}]})", "q.json");
      },
      {"q.json: layer 'conv0'", "row 0 weight scale 1e+39 is out of float range"});
  expect_error(
      [&] {
        parse_quant_config(head + R"("weight": {"scheme": "fixed", "bits": 4, "scales": [-2]}}]})",
                           "q.json");
      },
      {"q.json: layer 'conv0'", "row 0 weight scale -2 must be positive"});
  expect_error(
      [&] {
        parse_quant_config(head + R"("input": {"bits": 8, "scale": 1e39, "zero_point": 0,
                                       "qmin": 0, "qmax": 255}}]})",
                           "q.json");
      },
      {"q.json: layer 'conv0'", "activation scale 1e+39 is out of float range"});
}

TEST(CliGuarantees, ABadLabelIsBlamedOnTheData) {
  TempDir d;
  const std::string model = tiny_model().save(d.file("m.onnx"));
  const std::string data = idx_data(d, {0, 1, 2, 12, 4, 5, 6, 7});
  const CommandResult r = run_command(kMixq + " eval " + model + " --data " + data);
  expect_clean_error(r, data +
                            " (8 images): label 12 is outside the 10 classes of the "
                            "model's output (" +
                            model + ")");
}

TEST(CliGuarantees, UsageErrorsFoundWhileRunningExit2) {
  TempDir d;
  const std::string model = tiny_model().save(d.file("m.onnx"));
  const std::string data = idx_data(d);
  // Found by the command, not the parser: still a flag, still exit 2.
  expect_clean_error(run_command(kMixq + " quantize " + model + " -o " + d.file("o")),
                     "--calib-data: required with a model of your own", 2);
  expect_clean_error(run_command(kMixq + " train --data " + data + " -o " + d.file("t.onnx")),
                     "--arch: give exactly one of --arch and --init", 2);
  // Bad input stays 1.
  expect_clean_error(run_command(kMixq + " eval " + d.file("none.onnx") + " --data " + data),
                     d.file("none.onnx") + ": cannot open file", 1);
}
