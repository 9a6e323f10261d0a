// A small U-Net built in the test at opset 21 (IR 10): Conv + ReLU, MaxPool down twice,
// GroupNormalization (opset-21 form, scale and bias per channel) at the bottom, Resize up by
// scales (nearest, then linear half_pixel), Concat with the skip connections, Conv. mixq's
// reference engine, its fast optimised engine and ONNX Runtime must agree to 1e-4 relative.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "onnx/import.h"
#include "runtime/executor.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"
#include "support/op_runner.h"
#include "support/peer.h"
#include "support/random_graph.h"

using namespace mixq;
using namespace mixq::test;

namespace {}  // namespace

TEST(PeerUNet, ResizeConcatGroupNormAgreeWithOnnxRuntime) {
  TempDir dir;
  const std::string path = dir.file("unet21.onnx");
  std::ofstream(path, std::ios::binary) << unet_like_graph(20, 2).onnx;
  const Graph g = load_onnx(path);
  std::mt19937 rng(8);
  const Tensor x = random_f32({1, 3, 16, 16}, rng, -1.f, 1.f);
  const Tensor ref = Executor(g, Impl::reference).run({x}).at(0);
  ASSERT_EQ(ref.shape(), (Shape{1, 4, 16, 16}));
  expect_close(Executor(g, Impl::fast, true).run({x}).at(0), ref, 1e-4, 1e-6);
  std::map<std::string, Tensor> peer;
  try {
    peer = run_peer_outputs(path, x);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "ONNX Runtime peer unavailable (bash scripts/install-peer.sh): " << e.what();
  }
  ASSERT_TRUE(peer.count("y"));
  expect_close(peer.at("y"), ref, 1e-4, 1e-6);
}
