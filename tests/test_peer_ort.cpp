// mixq against ONNX Runtime on the same preprocessed images: the FP32 model and the exported
// fake-quantized model must give the same top-1 (within 0.05 points) and nearly the same
// predictions. Skips when the peer or ../shared is absent.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "eval/evaluate.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "search/allocate.h"
#include "support/onnx_builder.h"
#include "support/paths.h"
#include "support/peer.h"

using namespace mixq;
using namespace mixq::test;

namespace {

constexpr size_t kSamples = 2000;

std::unique_ptr<Dataset> cifar(const std::string& split) {
  DataOptions o;
  o.mean = {0.485f, 0.456f, 0.406f};
  o.std = {0.229f, 0.224f, 0.225f};
  return open_dataset("folder:" + shared_path("data/cifar10/" + split), o);
}

// Top-1 and predictions of mixq on the first n samples.
std::pair<double, std::vector<int64_t>> mixq_eval(const Graph& g, const Dataset& data, size_t n) {
  Executor ex(g, Impl::fast, true);
  std::vector<int64_t> pred(n);
  size_t correct = 0;
  for (size_t first = 0; first < n; first += 500) {
    const size_t count = std::min<size_t>(500, n - first);
    Batch b = data.get_batch(first, count);
    Tensor logits = ex.run({b.inputs[0]})[0];
    const int64_t k = logits.dim(1);
    for (size_t i = 0; i < count; ++i) {
      const float* row = logits.data<float>() + i * k;
      pred[first + i] = std::max_element(row, row + k) - row;
      correct += pred[first + i] == b.labels[i];
    }
  }
  return {100.0 * correct / n, pred};
}

// The peer's inputs must be the first n samples (write_peer_inputs).
void compare_with_peer(const Graph& g, const std::string& model_path, const Dataset& data,
                       const std::string& dir, bool keep_qdq, size_t max_disagree,
                       size_t n = kSamples) {
  auto [top1, pred] = mixq_eval(g, data, n);
  nlohmann::json peer = run_peer_eval(model_path, dir, data.sample_shape(), keep_qdq);
  const double peer_top1 = peer["top1"].get<double>();
  size_t agree = 0;
  for (size_t i = 0; i < n; ++i) agree += peer["predictions"][i].get<int64_t>() == pred[i];
  std::cout << "mixq top-1 " << top1 << " %, ONNX Runtime " << peer_top1 << " %, predictions agree "
            << agree << "/" << n << "\n";
  EXPECT_LE(std::fabs(top1 - peer_top1), 0.05 + 1e-9);
  EXPECT_GE(agree, n - max_disagree);
}

}  // namespace

TEST(PeerOrt, Fp32ResNet20MatchesOnnxRuntime) {
  const std::string missing = peer_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  const std::string model = shared_path("models/cifar10_resnet20.onnx");
  MIXQ_SKIP_UNLESS_EXISTS(model);
  TempDir dir;
  auto test = cifar("test");
  write_peer_inputs(*test, kSamples, dir.path());
  compare_with_peer(load_onnx(model), model, *test, dir.path(), false, 2);
}

TEST(PeerOrt, QdqCladoMsqAllocationMatchesOnnxRuntime) {
  const std::string missing = peer_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  const std::string model = shared_path("models/cifar10_resnet20.onnx");
  MIXQ_SKIP_UNLESS_EXISTS(model);
  TempDir dir;
  Graph g = load_onnx(model);
  ObserveOptions oo;
  oo.samples = 256;
  ActivationStats stats = observe_activations(g, *cifar("train"), oo);
  // A CLADO allocation over fixed, MSQ, RMSMP and 6-bit PoT candidates (PoT's codes need the
  // int32 container) with 4-bit activations, measured cheaply: 64 samples, pairs of adjacent
  // layers. The exporter only sees the config, so a small measurement tests it as well.
  const auto calib = cifar("train");
  const SearchSpace space = make_search_space(
      g, parse_candidates("w3,w4,w4-msq1.5,w4-rmsmp1.5,w6-pot,w8", "test"), false, 4);
  SensitivityOptions so;
  so.samples = 64;
  so.pair_window = 1;
  const SensitivityData d = measure_sensitivity(g, space, stats, *calib, so);
  const AllocInputs in{&g, &space, &d, nullptr};
  const Allocation al = allocate(in, AllocMethod::clado, {parse_budget("4.5bits", "test")});
  ASSERT_TRUE(al.feasible);
  std::set<int> used(al.choice.begin(), al.choice.end());
  std::printf("CLADO chose %zu different candidates\n", used.size());
  const QuantConfig cfg = allocation_config(in, al);
  save_onnx(apply_quant(g, cfg, "test", WeightForm::qdq), dir.file("qdq.onnx"));
  auto test = cifar("test");
  write_peer_inputs(*test, test->size(), dir.path());  // the whole test set, as the issue asks
  // mixq's fake-quantized evaluation (eval --quant) against ONNX Runtime on the QDQ export.
  // Float rounding differences in the convolutions flip a quantization step now and then, so a
  // few predictions may differ.
  compare_with_peer(apply_quant(g, cfg), dir.file("qdq.onnx"), *test, dir.path(), true, 100,
                    test->size());
}
