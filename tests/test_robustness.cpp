// Deterministic results and nothing lost: the same command twice writes byte-identical configs
// and exports; a sensitivity run killed with SIGKILL leaves a loadable checkpoint (or none), and
// --resume finishes with the Omega of an uninterrupted run.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/file_io.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "quant/config.h"
#include "search/sensitivity.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;
const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

}  // namespace

TEST(Robustness, SameCommandWritesIdenticalFiles) {
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  for (const char* out : {"a", "b"}) {
    const CommandResult r =
        run_command("OMP_WAIT_POLICY=passive " + kMixq +
                    " quantize --budget 3bits --candidates w2,w4,w4-msq1.5,w8 --samples 128 "
                    "--calib-samples 128 --limit 500 --no-curves --threads 2 -o " +
                    dir.file(out));
    ASSERT_EQ(r.status, 0) << r.err;
  }
  for (const char* f : {"quant.json", "model_qdq.onnx", "model.mixq"})
    EXPECT_EQ(read_file(dir.file(std::string("a/") + f)),
              read_file(dir.file(std::string("b/") + f)))
        << f;
  // The sensitivity file also records the time it took; its measurements are identical.
  EXPECT_EQ(load_sensitivity(dir.file("a/sensitivity.omega")).omega(),
            load_sensitivity(dir.file("b/sensitivity.omega")).omega());
}

TEST(Robustness, KilledSensitivityRunResumesToTheSameOmega) {
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string model = repo_path("models/fmnist_default.onnx");
  const std::string base = kMixq + " sensitivity " + model +
                           " --data fmnist:train --samples 512 --chunk 128 --threads 1 -o ";
  const std::string env = "OMP_WAIT_POLICY=passive ";
  const CommandResult full = run_command(env + base + dir.file("full.omega"));
  ASSERT_EQ(full.status, 0) << full.err;
  // Kill a second run with SIGKILL part of the way through, a few times at different moments.
  const std::string part = dir.file("part.omega");
  for (int ms : {300, 900, 1500}) {
    const CommandResult r =
        run_command("timeout -s KILL " + std::to_string(ms / 1000.0) + " " + base + part +
                    (std::filesystem::exists(part) ? " --resume" : ""));
    if (r.status == 0) break;  // finished before the kill: fine too
    EXPECT_EQ(r.status, 128 + 9) << r.err;
    // Writes go to a temporary file renamed into place: the checkpoint, if any, is whole.
    if (std::filesystem::exists(part)) {
      EXPECT_NO_THROW(load_sensitivity(part));
    }
  }
  const CommandResult done =
      run_command(env + base + part + (std::filesystem::exists(part) ? " --resume" : ""));
  ASSERT_EQ(done.status, 0) << done.err;
  EXPECT_EQ(load_sensitivity(part).omega(), load_sensitivity(dir.file("full.omega")).omega());
}

namespace {

// Every file a killed quantize run left in `dir` is whole: it loads, or, for the report, ends
// its document. Temporary files may remain (hidden, named after their target); they are
// returned so the caller can check the next run clears them.
std::vector<std::string> expect_whole_files(const std::string& dir) {
  std::vector<std::string> temporaries;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string(), path = e.path().string();
    if (name[0] == '.') {
      temporaries.push_back(name);
    } else if (name == "quant.json") {
      EXPECT_NO_THROW(load_quant_config(path)) << path;
    } else if (name == "model_qdq.onnx" || name == "model.onnx") {
      EXPECT_NO_THROW(load_onnx(path)) << path;
    } else if (name == "model.mixq") {
      EXPECT_NO_THROW(load_packed(path)) << path;
    } else if (name == "sensitivity.omega") {
      EXPECT_NO_THROW(load_sensitivity(path)) << path;
    } else if (name == "report.html") {
      const std::string html = read_file(path);
      EXPECT_NE(html.rfind("</html>"), std::string::npos) << path;
    } else {
      ADD_FAILURE() << "unexpected file " << path;
    }
  }
  return temporaries;
}

}  // namespace

TEST(Robustness, KilledQuantizeRunsLeaveOnlyWholeFiles) {
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string cmd = kMixq +
                          " quantize --budget 3bits --candidates w2,w4,w4-msq1.5,w8 --samples 256 "
                          "--calib-samples 128 --limit 500 --no-curves --threads 1 -o ";
  const std::string env = "OMP_WAIT_POLICY=passive ";
  const CommandResult ref = run_command(env + cmd + dir.file("ref"));
  ASSERT_EQ(ref.status, 0) << ref.err;
  // SIGKILL at moments spread over a run: during calibration, sensitivities, the search, the
  // exports and the report. Each run continues the folder the last one left.
  const std::string out = dir.file("out");
  int killed = 0;
  for (int ms : {150, 400, 700, 1000, 1300, 1600, 1900, 2200, 2600, 3000}) {
    const CommandResult r =
        run_command(env + "timeout -s KILL " + std::to_string(ms / 1000.0) + " " + cmd + out);
    if (r.status == 0) continue;  // finished before the kill
    EXPECT_EQ(r.status, 128 + 9) << r.err;
    ++killed;
    if (std::filesystem::exists(out)) expect_whole_files(out);
  }
  EXPECT_GT(killed, 0) << "every run finished before its kill";
  const CommandResult done = run_command(env + cmd + out);
  ASSERT_EQ(done.status, 0) << done.err;
  EXPECT_TRUE(expect_whole_files(out).empty()) << "temporary files left after a whole run";
  // The finished folder holds what an uninterrupted run wrote.
  for (const char* f : {"quant.json", "model_qdq.onnx", "model.mixq"})
    EXPECT_EQ(read_file(out + "/" + f), read_file(dir.file(std::string("ref/") + f))) << f;
  EXPECT_EQ(load_sensitivity(out + "/sensitivity.omega").omega(),
            load_sensitivity(dir.file("ref/sensitivity.omega")).omega());
}
