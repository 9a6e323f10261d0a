#include "seed_models.h"

namespace mixq::fuzz {

Tensor weights(const Shape& shape, uint32_t seed, float scale) {
  Tensor t(DType::f32, shape);
  float* p = t.data<float>();
  uint32_t s = seed * 2654435761u + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = scale * (static_cast<float>(s >> 8) / 16777216.0f - 0.5f);
  }
  return t;
}

test::OnnxBuilder conv_net() {
  test::OnnxBuilder b;
  b.input("x", {-1, 2, 6, 6}).output("y", {-1, 3});
  b.initializer("a_w", weights({4, 2, 3, 3}, 1, 0.8f)).initializer("a_b", weights({4}, 2, 0.2f));
  auto& a = b.node("Conv", {"x", "a_w", "a_b"}, {"a"}, "conv_a");
  test::OnnxBuilder::attr(a, "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.node("Relu", {"a"}, {"ar"}, "relu_a");
  b.initializer("b_w", weights({4, 4, 3, 3}, 3, 0.6f));
  auto& c = b.node("Conv", {"ar", "b_w"}, {"b"}, "conv_b");
  test::OnnxBuilder::attr(c, "pads", std::vector<int64_t>{1, 1, 1, 1});
  b.node("Add", {"b", "ar"}, {"s"}, "add");
  b.node("Relu", {"s"}, {"sr"}, "relu_b");
  b.node("GlobalAveragePool", {"sr"}, {"p"}, "gap");
  b.node("Flatten", {"p"}, {"f"}, "flatten");
  b.initializer("fc_w", weights({3, 4}, 4, 1.0f)).initializer("fc_b", weights({3}, 5, 0.2f));
  auto& fc = b.node("Gemm", {"f", "fc_w", "fc_b"}, {"y"}, "fc");
  test::OnnxBuilder::attr(fc, "transB", int64_t{1});
  return b;
}

}  // namespace mixq::fuzz
