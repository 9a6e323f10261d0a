// mixq train through the command line: a short run writes an ONNX model that mixq eval reads, a
// run stopped by its checkpoint and resumed ends with the same model bytes as an uninterrupted
// one, and bad flags give one clean error line. Skips when the fmnist data or the train command
// is not there.
#include <gtest/gtest.h>

#include "base/file_io.h"
#include "data/dataset.h"
#include "support/onnx_builder.h"
#include "support/paths.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;

// --threads 1: the tests compare bytes, and results are deterministic per thread count.
const std::string kTrain = kMixq +
                           " train --arch lenet --data fmnist:train --limit 384 --batch 64" +
                           " --threads 1 --seed 3";

#define SKIP_UNLESS_TRAIN_AVAILABLE()                                                       \
  do {                                                                                      \
    MIXQ_SKIP_UNLESS_EXISTS(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz"); \
    if (run_command(kMixq + " train --help").status != 0)                                   \
      GTEST_SKIP() << "this mixq has no train command";                                     \
  } while (0)

}  // namespace

TEST(TrainCli, TrainsExportsAndEvaluates) {
  SKIP_UNLESS_TRAIN_AVAILABLE();
  TempDir d;
  auto r =
      run_command(kTrain + " --epochs 2 --val-data fmnist:test --lr 0.02 -o " + d.file("m.onnx"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("epoch   2/2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("val top-1"), std::string::npos) << r.out;
  auto e = run_command(kMixq + " eval " + d.file("m.onnx") + " --data fmnist:test --limit 500");
  ASSERT_EQ(e.status, 0) << e.err;
  EXPECT_NE(e.out.find("top-1"), std::string::npos);
}

TEST(TrainCli, StoppedAndResumedRunWritesTheSameModel) {
  SKIP_UNLESS_TRAIN_AVAILABLE();
  TempDir d;
  const std::string common = kTrain + " --epochs 2 --checkpoint-minutes 0";
  ASSERT_EQ(run_command(common + " -o " + d.file("whole.onnx")).status, 0);
  // Stop mid-way through the first epoch (6 batches of 64), then continue from the checkpoint.
  const std::string ckpt = " --checkpoint " + d.file("c.ckpt");
  auto first = run_command(common + ckpt + " --max-steps 4 -o " + d.file("resumed.onnx"));
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_NE(first.out.find("stopped at epoch 1, step 4"), std::string::npos) << first.out;
  EXPECT_FALSE(exists(d.file("resumed.onnx")));
  auto second = run_command(common + ckpt + " --resume -o " + d.file("resumed.onnx"));
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_NE(second.out.find("resumed from"), std::string::npos) << second.out;
  EXPECT_EQ(read_file(d.file("whole.onnx")), read_file(d.file("resumed.onnx")));
}

TEST(TrainCli, BadFlagsGiveOneCleanError) {
  SKIP_UNLESS_TRAIN_AVAILABLE();
  TempDir d;
  auto r = run_command(kMixq + " train --arch alexnet --data fmnist:train -o " + d.file("m.onnx"));
  EXPECT_EQ(r.status, 2);  // a flag's value: bad usage
  EXPECT_NE(r.err.find("unknown architecture 'alexnet'"), std::string::npos) << r.err;
  r = run_command(kMixq + " train --data fmnist:train -o " + d.file("m.onnx"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("exactly one of --arch and --init"), std::string::npos) << r.err;
  r = run_command(kTrain + " --resume -o " + d.file("m.onnx"));
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  r = run_command(kTrain + " -o /nonexistent/dir/m.onnx");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  r = run_command(kTrain + " --checkpoint " + d.file("none.ckpt") + " --resume -o " +
                  d.file("m.onnx"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("none.ckpt"), std::string::npos) << r.err;
  EXPECT_FALSE(exists(d.file("m.onnx")));
}
