// Distributed sensitivity: shards balance MAC cost, merged shards equal one process's
// measurement, `mpirun -np 2 mixq sensitivity` writes the single-process Omega, and a job whose
// rank was killed resumes without redoing the units its checkpoints hold.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <regex>

#include "base/error.h"
#include "base/file_io.h"
#include "onnx/import.h"
#include "search/sensitivity.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/synthetic_data.h"
#include "support/tiny_nets.h"

using namespace mixq;
using namespace mixq::test;

namespace {

const std::string kMixq = MIXQ_BINARY;
const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

bool have_mpirun() {
  return run_command("command -v mpirun").status == 0;
}

// Root may run mpirun only when it says so; --oversubscribe lets two ranks share one core.
const std::string kMpirun =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive "
    "mpirun --oversubscribe -np 2 ";

size_t count_lines(const std::string& text, const std::string& pattern) {
  const std::regex re(pattern);
  return static_cast<size_t>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

size_t done_units(const SensitivityData& d) {
  size_t n = 0;
  for (const auto& row : d.done) n += static_cast<size_t>(std::count(row.begin(), row.end(), 1));
  return n;
}

}  // namespace

TEST(Distributed, ShardsBalanceCostNotCount) {
  // One heavy unit and many light ones: by count each rank would get half of them, by cost the
  // heavy unit's rank gets few others.
  std::vector<double> cost = {100, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 50, 50};
  const std::vector<int> owner = assign_shards(cost, 2);
  ASSERT_EQ(owner.size(), cost.size());
  std::vector<double> load(2, 0);
  for (size_t u = 0; u < cost.size(); ++u) {
    ASSERT_GE(owner[u], 0);
    ASSERT_LT(owner[u], 2);
    load[owner[u]] += cost[u];
  }
  // Longest-first greedy is within the largest unit of the ideal split (here exact: 150/150).
  const double total = std::accumulate(cost.begin(), cost.end(), 0.0);
  EXPECT_LE(std::max(load[0], load[1]) - total / 2, 100.0);
  EXPECT_EQ(load[0], load[1]);
  // Every rank computes the same plan; one rank takes everything.
  EXPECT_EQ(assign_shards(cost, 2), owner);
  for (int r : assign_shards(cost, 1)) EXPECT_EQ(r, 0);
  // More ranks than units: each unit alone on a rank.
  const std::vector<int> many = assign_shards({3, 2, 1}, 5);
  EXPECT_EQ(many, (std::vector<int>{0, 1, 2}));
}

TEST(Distributed, MergedShardsEqualOneProcess) {
  Graph g = conv_chain_net(3);
  SyntheticDataset data(80, {2, 6, 6}, 3, 5);
  auto space = make_search_space(g, parse_candidates("w2,w4,w8", "test"), true, 8);
  ASSERT_EQ(space.num_searched(), 4u);
  ObserveOptions oo;
  oo.samples = 48;
  ActivationStats stats = observe_activations(g, data, oo);
  SensitivityOptions so;
  so.samples = 60;
  so.chunk = 16;  // four chunks x four layers: 16 units
  const SensitivityData whole = measure_sensitivity(g, space, stats, data, so);
  ASSERT_TRUE(whole.complete());

  for (int ranks : {2, 3}) {
    std::vector<SensitivityData> shards;
    size_t units = 0;
    for (int r = 0; r < ranks; ++r) {
      so.rank = r;
      so.ranks = ranks;
      shards.push_back(measure_sensitivity(g, space, stats, data, so));
      EXPECT_FALSE(shards.back().complete());
      EXPECT_GT(done_units(shards.back()), 0u) << "rank " << r << " of " << ranks << " idle";
      units += done_units(shards.back());
    }
    EXPECT_EQ(units, whole.chunks * whole.layers);  // no unit measured twice
    const SensitivityData merged = merge_shards(shards);
    ASSERT_TRUE(merged.complete());
    EXPECT_EQ(merged.omega(), whole.omega()) << ranks << " ranks";  // bit-identical
    EXPECT_EQ(merged.L0(), whole.L0());
    EXPECT_EQ(merged.evaluations, whole.evaluations);
    EXPECT_DOUBLE_EQ(merged.executed_macs, whole.executed_macs);
    // The bytes round-trip, as they travel between ranks.
    EXPECT_EQ(parse_sensitivity(sensitivity_bytes(shards[0]), "rank 0").pair, shards[0].pair);
    // A unit measured by two shards, or shards of another measurement, are refused.
    EXPECT_THROW(merge_shards({shards[0], shards[0]}), Error);
    std::vector<SensitivityData> other = shards;
    other[1].header["seed"] = 99;
    EXPECT_THROW(merge_shards(other), Error);
  }
}

TEST(Distributed, TwoRanksWriteTheSingleProcessOmega) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed (Debian openmpi-bin): skipped";
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string args = " sensitivity " + repo_path("models/fmnist_default.onnx") +
                           " --data fmnist:train --samples 384 --chunk 64 -o ";
  const CommandResult one =
      run_command("OMP_WAIT_POLICY=passive " + kMixq + args + dir.file("one.omega"));
  ASSERT_EQ(one.status, 0) << one.err;
  const CommandResult two = run_command(kMpirun + kMixq + args + dir.file("two.omega"));
  ASSERT_EQ(two.status, 0) << two.err;
  // Both ranks worked, rank 0 alone reported, and no shard checkpoint is left behind.
  EXPECT_GT(count_lines(two.err, "rank 0/2: chunk"), 0u) << two.err;
  EXPECT_GT(count_lines(two.err, "rank 1/2: chunk"), 0u) << two.err;
  EXPECT_EQ(count_lines(two.out, "wrote "), 1u) << two.out;
  EXPECT_FALSE(exists(dir.file("two.omega.rank0-of-2")));
  EXPECT_FALSE(exists(dir.file("two.omega.rank1-of-2")));
  const SensitivityData a = load_sensitivity(dir.file("one.omega"));
  const SensitivityData b = load_sensitivity(dir.file("two.omega"));
  EXPECT_EQ(a.header, b.header);
  EXPECT_EQ(a.omega(), b.omega());  // bit-identical
  EXPECT_EQ(a.pair, b.pair);
  EXPECT_EQ(a.evaluations, b.evaluations);
}

TEST(Distributed, KilledRankResumesWithoutRedoingItsShards) {
  if (!have_mpirun()) GTEST_SKIP() << "mpirun not installed (Debian openmpi-bin): skipped";
  MIXQ_SKIP_UNLESS_EXISTS(kFmnist);
  TempDir dir;
  const std::string out = dir.file("s.omega");
  const std::string cmd = kMixq + " sensitivity " + repo_path("models/fmnist_default.onnx") +
                          " --data fmnist:train --samples 512 --chunk 64 -o " + out;
  const CommandResult ref =
      run_command("OMP_WAIT_POLICY=passive " + kMixq + " sensitivity " +
                  repo_path("models/fmnist_default.onnx") +
                  " --data fmnist:train --samples 512 --chunk 64 -o " + dir.file("ref.omega"));
  ASSERT_EQ(ref.status, 0) << ref.err;
  // Rank 1 is killed with SIGKILL as soon as its first unit is checkpointed; mpirun then ends
  // rank 0 as well, wherever it is.
  const std::string shard0 = out + ".rank0-of-2", shard1 = out + ".rank1-of-2";
  const CommandResult killed =
      run_command(kMpirun + "bash -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then " + cmd +
                  " & pid=$!; while [ ! -e " + shard1 +
                  " ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done; kill -9 $pid; wait $pid; "
                  "else exec " +
                  cmd + "; fi'");
  ASSERT_NE(killed.status, 0) << "the job survived the kill";
  EXPECT_FALSE(exists(out)) << "a failed job must not write the merged file";
  ASSERT_TRUE(exists(shard1));
  // Each checkpoint is whole and holds the units finished before the kill.
  size_t done_before = 0;
  for (const auto& f : {shard0, shard1})
    if (exists(f)) {
      EXPECT_NO_THROW(done_before += done_units(load_sensitivity(f))) << f;
    }
  EXPECT_GE(done_before, 1u);
  // Without --resume the leftovers are not overwritten.
  const std::string shard1_bytes = read_file(shard1);
  const CommandResult refused = run_command(kMpirun + cmd);
  EXPECT_NE(refused.status, 0);
  EXPECT_EQ(read_file(shard1), shard1_bytes);

  const CommandResult resumed = run_command(kMpirun + cmd + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const SensitivityData r = load_sensitivity(dir.file("ref.omega"));
  // One progress line per unit measured: the resumed job measured only what was missing.
  EXPECT_EQ(count_lines(resumed.err, "rank [01]/2: chunk"), r.chunks * r.layers - done_before)
      << resumed.err;
  EXPECT_EQ(load_sensitivity(out).omega(), r.omega());
  // A second --resume finds everything done and measures nothing.
  const CommandResult again = run_command(kMpirun + cmd + " --resume");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(count_lines(again.err, "rank [01]/2: chunk"), 0u) << again.err;
  EXPECT_EQ(load_sensitivity(out).omega(), r.omega());
  EXPECT_EQ(load_sensitivity(out).evaluations, r.evaluations);
}
