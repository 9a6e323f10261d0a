// The ONNX Runtime peer (npm onnxruntime-node in bench/peer) driven from tests.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "data/dataset.h"

namespace mixq::test {

// Empty when the peer can run; otherwise why not (for GTEST_SKIP).
std::string peer_missing();
// Writes the first n samples of the dataset as raw f32 images and i64 labels into dir.
void write_peer_inputs(const Dataset& data, size_t n, const std::string& dir);
// Runs bench/peer/ort_eval.js on the model over the inputs in dir; returns its JSON.
// keep_qdq: with ONNX Runtime's QDQ graph transformers off, so Q/DQ nodes keep their ONNX
// semantics exactly (its QDQ fusions change results by a few tenths of a point).
nlohmann::json run_peer_eval(const std::string& model, const std::string& dir, const Shape& chw,
                             bool keep_qdq = false);

// Runs bench/peer/ort_outputs.js: ONNX Runtime's outputs of the model on one f32 input, by name.
std::map<std::string, Tensor> run_peer_outputs(const std::string& model, const Tensor& input);
// The same with named inputs (float32 or int64); keep_qdq as for run_peer_eval.
std::map<std::string, Tensor> run_peer_outputs(const std::string& model,
                                               const std::map<std::string, Tensor>& inputs,
                                               bool keep_qdq = false);

}  // namespace mixq::test
