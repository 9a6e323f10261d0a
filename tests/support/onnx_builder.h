// Builds small ONNX models in tests (for bad-input cases and tiny networks).
#pragma once
#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mixq::test {

class OnnxBuilder {
 public:
  explicit OnnxBuilder(int64_t opset = 13);
  // Graph input (float32 unless elem_type says otherwise); -1 dims become a symbolic "N".
  OnnxBuilder& input(const std::string& name, const Shape& shape,
                     int32_t elem_type = onnx::TensorProto::FLOAT);
  OnnxBuilder& output(const std::string& name, const Shape& shape);
  OnnxBuilder& initializer(const std::string& name, const Tensor& t);
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "");
  static void attr(onnx::NodeProto& n, const std::string& key, int64_t v);
  static void attr(onnx::NodeProto& n, const std::string& key, const std::vector<int64_t>& v);
  static void attr(onnx::NodeProto& n, const std::string& key, float v);
  onnx::ModelProto& model() { return model_; }
  std::string bytes() const;
  // Writes the model to a file; returns the path.
  std::string save(const std::string& path) const;
  // Writes the model with every initializer's data in data_file, next to the model (ONNX's
  // external data: location, offset, length); returns the model's path.
  std::string save_external(const std::string& path, const std::string& data_file) const;

 private:
  onnx::ModelProto model_;
};

// A temp directory removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs a shell command; returns exit status (or 128+signal) and captures stdout and stderr.
struct CommandResult {
  int status = -1;
  std::string out, err;
};
CommandResult run_command(const std::string& cmd);

}  // namespace mixq::test
