// Opsets 18 to 21 (what current PyTorch and TensorFlow exporters write, IR versions 9 and 10)
// rewritten to opset 17, the newest that Debian's libonnx checks and infers, where the two forms
// are exactly equivalent: reduction axes given as a constant input become the attribute, Split's
// num_outputs is dropped, Gelu becomes its Erf or Tanh formula, attributes that only concern
// float8 or 4-bit types are dropped. Everything else that changed is refused naming the node and
// the reason, never approximated.
#pragma once
#include <string>

namespace onnx {
class ModelProto;
}  // namespace onnx

namespace mixq {

// Newest default-domain opset that lower_to_opset17 accepts.
inline constexpr int64_t kMaxLoweredOpset = 21;

// Rewrites a model of default-domain opset 18..kMaxLoweredOpset in place to opset 17 and IR
// version 8. Throws Error(where + node, reason) for what has no opset-17 equivalent.
void lower_to_opset17(onnx::ModelProto& model, const std::string& where);

}  // namespace mixq
