// ONNX import: ModelProto -> Graph, checked by libonnx (checker, shape inference, opset range).
#pragma once
#include <string>

#include "ir/graph.h"

namespace onnx {
class TensorProto;
class ModelProto;
}  // namespace onnx

namespace mixq {

struct ImportOptions {
  bool run_passes = true;  // constant folding, BN folding, Identity/Dropout removal
};

// Loads and checks an ONNX file. Throws Error naming the file (or node) and the cause.
Graph load_onnx(const std::string& path, const ImportOptions& options = {});
// Same, from bytes already in memory; `where` names them in errors.
Graph load_onnx_bytes(const std::string& bytes, const std::string& where,
                      const ImportOptions& options = {});
Graph graph_from_model(onnx::ModelProto& model, const std::string& where,
                       const ImportOptions& options = {});

// Runs libonnx's checker on model; a failure becomes an Error at `where` whose cause is
// `what` followed by the checker's message on one line.
void check_onnx_model(const onnx::ModelProto& model, const std::string& where,
                      const std::string& what);

// TensorProto <-> Tensor (raw_data or typed fields; external data is refused here: load_onnx
// reads it relative to the model file).
Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where);
// Reads a serialized TensorProto file (as in the ONNX backend test data).
Tensor load_tensor_pb(const std::string& path);

// Oldest default-domain opset mixq imports, and the newest it runs (18..21 are rewritten to
// 17 on import: onnx/lower_opset.h).
inline constexpr int64_t kMinOpset = 7;
inline constexpr int64_t kMaxOpset = 17;

}  // namespace mixq
