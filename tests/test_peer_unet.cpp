// A small U-Net built in the test at opset 21 (IR 10): Conv + ReLU, MaxPool down twice,
// GroupNormalization (opset-21 form, scale and bias per channel) at the bottom, Resize up by
// scales (nearest, then linear half_pixel), Concat with the skip connections, Conv. mixq's
// reference engine, its fast optimised engine and ONNX Runtime must agree to 1e-4 relative.
#include <gtest/gtest.h>

#include <random>

#include "onnx/import.h"
#include "runtime/executor.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"
#include "support/op_runner.h"
#include "support/peer.h"

using namespace mixq;
using namespace mixq::test;

namespace {

void string_attr(onnx::NodeProto& n, const std::string& key, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

Tensor fv(std::vector<float> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<float>({n}, v);
}

class UNet {
 public:
  UNet() : b_(21) {
    b_.model().set_ir_version(10);
    b_.input("x", {1, 3, 16, 16}).output("y", {1, 4, 16, 16});
    b_.initializer("up", fv({1, 1, 2, 2}));
    const std::string e1 = relu(conv("x", 3, 8, "enc1"));                 // [1, 8, 16, 16]
    const std::string e2 = relu(conv(pool(e1, "pool1"), 8, 16, "enc2"));  // [1, 16, 8, 8]
    std::string m = conv(pool(e2, "pool2"), 16, 16, "mid");               // [1, 16, 4, 4]
    b_.initializer("gn.scale", random_tensor(DType::f32, {16}, 40, 0.5));
    b_.initializer("gn.bias", random_tensor(DType::f32, {16}, 41, 0.2));
    OnnxBuilder::attr(b_.node("GroupNormalization", {m, "gn.scale", "gn.bias"}, {"gn"}, "gn"),
                      "num_groups", int64_t{4});
    m = relu("gn");
    auto& up1 = b_.node("Resize", {m, "", "up"}, {"up1"}, "up1");
    string_attr(up1, "mode", "nearest");
    OnnxBuilder::attr(b_.node("Concat", {"up1", e2}, {"cat1"}, "cat1"), "axis", int64_t{1});
    const std::string d1 = relu(conv("cat1", 32, 8, "dec1"));  // [1, 8, 8, 8]
    auto& up2 = b_.node("Resize", {d1, "", "up"}, {"up2"}, "up2");
    string_attr(up2, "mode", "linear");
    string_attr(up2, "coordinate_transformation_mode", "half_pixel");
    OnnxBuilder::attr(b_.node("Concat", {"up2", e1}, {"cat2"}, "cat2"), "axis", int64_t{1});
    conv("cat2", 16, 4, "out", "y");
  }
  const OnnxBuilder& builder() const { return b_; }

 private:
  std::string conv(const std::string& in, int64_t cin, int64_t cout, const std::string& name,
                   const std::string& out = "") {
    b_.initializer(name + ".w", random_tensor(DType::f32, {cout, cin, 3, 3}, seed_++,
                                              1.0 / std::sqrt(9.0 * cin)));
    b_.initializer(name + ".b", random_tensor(DType::f32, {cout}, seed_++, 0.1));
    const std::string y = out.empty() ? name : out;
    auto& n = b_.node("Conv", {in, name + ".w", name + ".b"}, {y}, name);
    OnnxBuilder::attr(n, "pads", std::vector<int64_t>{1, 1, 1, 1});
    return y;
  }
  std::string relu(const std::string& in) {
    b_.node("Relu", {in}, {in + ".relu"}, in + ".relu");
    return in + ".relu";
  }
  std::string pool(const std::string& in, const std::string& name) {
    auto& n = b_.node("MaxPool", {in}, {name}, name);
    OnnxBuilder::attr(n, "kernel_shape", std::vector<int64_t>{2, 2});
    OnnxBuilder::attr(n, "strides", std::vector<int64_t>{2, 2});
    return name;
  }

  OnnxBuilder b_;
  uint32_t seed_ = 20;
};

}  // namespace

TEST(PeerUNet, ResizeConcatGroupNormAgreeWithOnnxRuntime) {
  const UNet net;
  TempDir dir;
  const std::string path = net.builder().save(dir.file("unet21.onnx"));
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
