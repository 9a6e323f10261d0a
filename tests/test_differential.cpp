// The fast path against the reference on whole graphs: generated graphs (residual chains,
// shape computations, attention blocks, layouts, fusions, values read again), a ViT as PyTorch
// exports it, and every model the repository holds or finds beside it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "onnx/import.h"
#include "runtime/differential.h"
#include "runtime/executor.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/peer.h"
#include "support/random_graph.h"

namespace mixq::test {
namespace {

namespace fs = std::filesystem;

// Random inputs for every graph input of g, batch n where the batch is symbolic.
std::vector<Tensor> random_inputs(const Graph& g, int64_t n, uint64_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<Tensor> in;
  for (int v : g.inputs) {
    Shape s = g.values[v].shape;
    for (int64_t& k : s)
      if (k < 0) k = n;
    Tensor t(DType::f32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
    in.push_back(t);
  }
  return in;
}

TEST(Differential, TensorsAgreeTreatsNonFiniteValuesByKind) {
  DifferentialOptions o;
  auto t = [](std::vector<float> v) { return Tensor::from<float>({int64_t(v.size())}, v); };
  EXPECT_TRUE(tensors_agree(t({1, NAN, INFINITY}), t({1.00001f, NAN, INFINITY}), o));
  EXPECT_FALSE(tensors_agree(t({1, NAN}), t({1, 0})));
  EXPECT_FALSE(tensors_agree(t({1, 0}), t({1, NAN})));
  EXPECT_FALSE(tensors_agree(t({INFINITY}), t({-INFINITY})));
  EXPECT_FALSE(tensors_agree(t({1, 2}), t({1, 2.1f})));
  EXPECT_FALSE(tensors_agree(t({1, 2}), t({1, 2, 3})));
}

// The acceptance corpus: 1,000 generated graphs, each fed a batch of 1 to 5 rows, the fast run
// with two threads so batch slices are exercised where the graph allows them.
TEST(Differential, GeneratedGraphsAgreeWithTheReference) {
  DifferentialOptions o;
  o.batch_threads = 2;
  int failures = 0, tokens = 0;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    RandomGraph r = random_graph(seed);
    if (r.summary.find("tokens") != std::string::npos) ++tokens;
    Graph g;
    try {
      g = load_onnx_bytes(r.onnx, "generated graph " + std::to_string(seed));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "seed " << seed << " (" << r.summary << "): " << e.what();
      if (++failures >= 10) break;
      continue;
    }
    Divergence d;
    try {
      d = compare_fast_to_reference(g, r.inputs, o);
    } catch (const std::exception& e) {
      d.found = true;
      d.node = std::string("threw: ") + e.what();
      d.value = "-";
    }
    if (d.found) {
      ADD_FAILURE() << "seed " << seed << " (" << r.summary << "): " << d.describe();
      if (++failures >= 10) break;
    }
  }
  // The generator must keep producing both kinds of graph.
  EXPECT_GT(tokens, 200);
  EXPECT_LT(tokens, 800);
}

TEST(Differential, GeneratorIsDeterministicAndVaried) {
  EXPECT_EQ(random_graph(7).onnx, random_graph(7).onnx);
  EXPECT_NE(random_graph(7).onnx, random_graph(8).onnx);
}

// The graph shape on which the optimised executor once computed a different network: a
// channels-last Conv output read by Shape (transposed back) and then by Reshape, which read the
// NHWC buffer as NCHW.
TEST(Differential, VitAsPyTorchExportsItAgreesWithTheReference) {
  for (int64_t batch : {1, 3, 8}) {
    RandomGraph r = vit_like_graph(5, 4);
    Graph g = load_onnx_bytes(r.onnx, "vit");
    const Divergence d = compare_fast_to_reference(g, random_inputs(g, batch, 11));
    EXPECT_FALSE(d.found) << "batch " << batch << ": " << d.describe();
  }
}

// The same ViT graph in ONNX Runtime: mixq's fast and reference outputs match it to 1e-4.
TEST(Differential, VitAsPyTorchExportsItAgreesWithOnnxRuntime) {
  const std::string missing = peer_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  RandomGraph r = vit_like_graph(5, 4);
  TempDir dir;
  const std::string path = dir.file("vit.onnx");
  std::ofstream(path, std::ios::binary) << r.onnx;
  Graph g = load_onnx(path);
  const Tensor x = random_inputs(g, 4, 17)[0];
  const std::map<std::string, Tensor> ort = run_peer_outputs(path, x);
  DifferentialOptions o;
  o.abs_tol = 1e-5;
  o.rel_tol = 1e-4;
  for (Impl impl : {Impl::fast, Impl::reference}) {
    Executor ex(g, impl, impl == Impl::fast);
    const Tensor y = ex.run({x})[0];
    const std::string name = g.values[g.outputs[0]].name;
    ASSERT_EQ(ort.count(name), 1u);
    double worst = 0;
    EXPECT_TRUE(tensors_agree(ort.at(name), y, o, &worst))
        << (impl == Impl::fast ? "fast" : "reference") << " differs by " << worst;
  }
}

TEST(Differential, ChannelsLastValueReadAgainAfterItWasTransposedBack) {
  // Found by the ViT: Shape(conv) then Reshape(conv, that shape).
  RandomGraph r = vit_like_graph(1, 0);
  Graph g = load_onnx_bytes(r.onnx, "vit");
  Executor fast(g, Impl::fast, true);
  // The patch-embedding conv runs channels-last; every node reading it must see NCHW data.
  const Graph& o = fast.graph();
  bool conv_nhwc = false;
  for (const Node& n : o.nodes) {
    if (n.op_type == "Conv") conv_nhwc = fast.channels_last(n.outputs[0]);
    if (n.op_type == "Reshape" || n.op_type == "Shape") {
      EXPECT_FALSE(fast.channels_last(n.inputs[0])) << n.label() << " reads NHWC data";
    }
  }
  EXPECT_TRUE(conv_nhwc);
  EXPECT_FALSE(compare_fast_to_reference(g, r.inputs).found);
}

// Every ONNX model in the repository and beside it (../shared/models), optimised against the
// reference at batch 1 and 4.
TEST(Differential, EveryModelAtHandAgreesWithTheReference) {
  std::vector<std::string> models;
  for (const std::string& dir : {repo_path("models"), shared_path("models")}) {
    if (!fs::exists(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".onnx") models.push_back(e.path().string());
  }
  std::sort(models.begin(), models.end());
  ASSERT_FALSE(models.empty()) << "no model under models/";
  if (!exists(shared_path("models")))
    std::cout << "../shared/models missing: only the repository's models compared\n";
  DifferentialOptions o;
  o.batch_threads = 2;
  for (const std::string& m : models) {
    Graph g = load_onnx(m);
    for (int64_t batch : {1, 4}) {
      const Divergence d = compare_fast_to_reference(g, random_inputs(g, batch, 3), o);
      EXPECT_FALSE(d.found) << m << " batch " << batch << ": " << d.describe();
    }
  }
}

}  // namespace
}  // namespace mixq::test
