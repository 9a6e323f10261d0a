// The names mixq gives its own operators and attributes, in one place: the internal domain's
// ops (fake quantization, quantized conv, GroupNormalization before opset 18) and the attributes
// inference passes add to a node. Export refuses to write any of them into a standard model.
#pragma once
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace mixq::names {

inline constexpr const char* kDomain = "mixq";

// Operators of the internal domain.
inline constexpr const char* kFakeQuant = "FakeQuant";
inline constexpr const char* kQConv = "QConv";
inline constexpr const char* kGroupNorm = "GroupNormalization";

// Attributes the inference passes set (passes/fuse.h, passes/layout.h); all start with kPrefix.
inline constexpr const char* kPrefix = "mixq_";
inline constexpr const char* kLayout = "mixq_layout";          // "NHWC" for channels-last
inline constexpr const char* kActivation = "mixq_activation";  // fused activation ("Relu")
inline constexpr const char* kSum = "mixq_sum";                // 1: a fused residual sum input

// True when n is the internal operator `op`.
inline bool is_internal(const Node& n, std::string_view op) {
  return n.domain == kDomain && n.op_type == op;
}

// The kernel registry's key of an internal operator ("mixq.QConv"; ops/kernel.h op_key).
inline std::string internal_key(std::string_view op) {
  return std::string(kDomain) + "." + std::string(op);
}

}  // namespace mixq::names
