// Small models shared by the seed generator and the fuzz targets that need a model to read a
// file against (the .omega names the model's layers).
#pragma once
#include "support/onnx_builder.h"

namespace mixq::fuzz {

// Deterministic small weights (no RNG state shared with anything else).
Tensor weights(const Shape& shape, uint32_t seed, float scale);

// x[N,2,6,6] -> conv -> relu -> conv (+ skip) -> relu -> GAP -> Flatten -> Gemm: three
// quantizable layers (conv_a, conv_b, fc), a branch, opset 13.
test::OnnxBuilder conv_net();

}  // namespace mixq::fuzz
