#include "support/onnx_builder.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mixq::test {
namespace {

void set_shape(onnx::ValueInfoProto* vi, const std::string& name, const Shape& shape,
               int32_t elem_type = onnx::TensorProto::FLOAT) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* sh = tt->mutable_shape();
  for (int64_t d : shape) {
    auto* dim = sh->add_dim();
    if (d < 0)
      dim->set_dim_param("N");
    else
      dim->set_dim_value(d);
  }
}

int onnx_type(DType t) {
  switch (t) {
    case DType::f32:
      return onnx::TensorProto::FLOAT;
    case DType::f64:
      return onnx::TensorProto::DOUBLE;
    case DType::i64:
      return onnx::TensorProto::INT64;
    case DType::i32:
      return onnx::TensorProto::INT32;
    case DType::i16:
      return onnx::TensorProto::INT16;
    case DType::i8:
      return onnx::TensorProto::INT8;
    case DType::u8:
      return onnx::TensorProto::UINT8;
    case DType::boolean:
      return onnx::TensorProto::BOOL;
  }
  return 0;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

OnnxBuilder::OnnxBuilder(int64_t opset) {
  model_.set_ir_version(8);
  model_.set_producer_name("mixq-tests");
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name("test");
}

OnnxBuilder& OnnxBuilder::input(const std::string& name, const Shape& shape, int32_t elem_type) {
  set_shape(model_.mutable_graph()->add_input(), name, shape, elem_type);
  return *this;
}

OnnxBuilder& OnnxBuilder::output(const std::string& name, const Shape& shape) {
  set_shape(model_.mutable_graph()->add_output(), name, shape);
  return *this;
}

OnnxBuilder& OnnxBuilder::initializer(const std::string& name, const Tensor& t) {
  auto* p = model_.mutable_graph()->add_initializer();
  p->set_name(name);
  p->set_data_type(onnx_type(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
  return *this;
}

onnx::NodeProto& OnnxBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                   const std::vector<std::string>& outputs,
                                   const std::string& name) {
  auto* n = model_.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? op + "_" + std::to_string(model_.graph().node_size()) : name);
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return *n;
}

void OnnxBuilder::attr(onnx::NodeProto& n, const std::string& key, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void OnnxBuilder::attr(onnx::NodeProto& n, const std::string& key, const std::vector<int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void OnnxBuilder::attr(onnx::NodeProto& n, const std::string& key, float v) {
  auto* a = n.add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

std::string OnnxBuilder::bytes() const {
  return model_.SerializeAsString();
}

std::string OnnxBuilder::save(const std::string& path) const {
  std::ofstream f(path, std::ios::binary);
  f << bytes();
  return path;
}

std::string OnnxBuilder::save_external(const std::string& path,
                                       const std::string& data_file) const {
  onnx::ModelProto m = model_;
  const size_t slash = path.find_last_of('/');
  std::ofstream data((slash == std::string::npos ? "" : path.substr(0, slash + 1)) + data_file,
                     std::ios::binary);
  size_t offset = 0;
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    const std::string raw = t.raw_data();
    data << raw;
    t.clear_raw_data();
    t.set_data_location(onnx::TensorProto::EXTERNAL);
    for (const auto& [k, v] : {std::pair<std::string, std::string>{"location", data_file},
                               {"offset", std::to_string(offset)},
                               {"length", std::to_string(raw.size())}}) {
      auto* e = t.add_external_data();
      e->set_key(k);
      e->set_value(v);
    }
    offset += raw.size();
  }
  std::ofstream f(path, std::ios::binary);
  f << m.SerializeAsString();
  return path;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "mixq-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* p = mkdtemp(buf.data());
  path_ = p ? p : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

CommandResult run_command(const std::string& cmd) {
  TempDir dir;
  std::string out = dir.file("out"), err = dir.file("err");
  std::string full = cmd + " >" + out + " 2>" + err + " </dev/null";
  int raw = std::system(full.c_str());
  CommandResult r;
  if (WIFEXITED(raw))
    r.status = WEXITSTATUS(raw);
  else if (WIFSIGNALED(raw))
    r.status = 128 + WTERMSIG(raw);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace mixq::test
