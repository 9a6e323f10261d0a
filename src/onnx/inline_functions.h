// Model-local functions (ModelProto.functions, as PyTorch's dynamo exporter writes them) inlined
// into the graphs that call them, so the rest of the import sees only operators: each call is
// replaced by the function's nodes with its values renamed under the call's name, formal inputs
// and outputs bound to the call's, and attribute references (ref_attr_name) resolved from the
// call or the function's defaults.
#pragma once
#include <string>

namespace onnx {
class ModelProto;
}  // namespace onnx

namespace mixq {

// Inlines every call of a model-local function, nested calls included, then drops the functions.
// Error(where + node, ...) for a recursive function, an attribute reference with no value, a
// call with more inputs or outputs than the function declares, or a function that imports the
// default domain at another opset than the model.
void inline_local_functions(onnx::ModelProto& model, const std::string& where);

}  // namespace mixq
