#include "support/tiny_nets.h"

#include "onnx/import.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"

namespace mixq::test {

Graph conv_chain_net(int convs) {
  OnnxBuilder b;
  b.input("x", {-1, 2, 6, 6}).output("y", {-1, 3});
  std::string in = "x";
  for (int i = 0; i < convs; ++i) {
    const std::string n = "conv" + std::to_string(i);
    b.initializer(n + "_w", random_tensor(DType::f32, {4, i == 0 ? 2 : 4, 3, 3}, 10 + i, 0.4));
    auto& c = b.node("Conv", {in, n + "_w"}, {n + "_out"}, n);
    OnnxBuilder::attr(c, "pads", std::vector<int64_t>{1, 1, 1, 1});
    b.node("Relu", {n + "_out"}, {n + "_r"}, n + "_relu");
    in = n + "_r";
  }
  b.node("GlobalAveragePool", {in}, {"p"}, "gap");
  b.node("Flatten", {"p"}, {"f"}, "flatten");
  b.initializer("fc_w", random_tensor(DType::f32, {3, 4}, 20, 0.5));
  auto& g = b.node("Gemm", {"f", "fc_w"}, {"y"}, "fc");
  OnnxBuilder::attr(g, "transB", int64_t{1});
  return load_onnx_bytes(b.bytes(), "chain");
}

}  // namespace mixq::test
