// ONNX export: Graph -> ModelProto (standard operators only). mixq.FakeQuant nodes become
// [Clip] -> QuantizeLinear -> DequantizeLinear, so any ONNX runtime runs the fake-quantized model.
#pragma once
#include <string>

#include "ir/graph.h"

namespace onnx {
class ModelProto;
}

namespace mixq {

struct ExportOptions {
  int64_t min_opset = 13;
  std::string producer = "mixq";
};

// Throws Error naming the node that has no standard ONNX form (fused internal attributes).
void graph_to_model(const Graph& g, onnx::ModelProto& model, const ExportOptions& o = {});
// Serializes, checks with the ONNX checker, and writes atomically.
void save_onnx(const Graph& g, const std::string& path, const ExportOptions& o = {});

}  // namespace mixq
