// The IR: values (tensors by id), nodes in topological order, graph inputs and outputs.
// Later stages run it from any node index with cached values (see runtime/executor.h).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tensor/tensor.h"

namespace mixq {

// A static shape may hold -1 for a dimension only known at run time (the batch).
struct Value {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;                     // as declared or inferred; may be empty when unknown
  bool shape_known = false;        // shape is meaningful (rank known)
  std::optional<Tensor> constant;  // initializers and folded constants
  int producer = -1;               // node index, -1 for inputs and constants
};

using Attribute = std::variant<int64_t, float, std::string, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>, Tensor>;

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;
  std::vector<int> inputs;   // value ids; -1 for an omitted optional input
  std::vector<int> outputs;  // value ids; -1 for an omitted optional output
  std::map<std::string, Attribute> attrs;

  bool has(const std::string& key) const { return attrs.count(key) != 0; }
  int64_t get_int(const std::string& key, int64_t fallback) const;
  float get_float(const std::string& key, float fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& key, std::vector<int64_t> fallback = {}) const;
  std::vector<float> get_floats(const std::string& key, std::vector<float> fallback = {}) const;
  const Tensor* get_tensor(const std::string& key) const;
  // "Conv 'name'" for error messages.
  std::string label() const;
  // Input i exists (present and not omitted).
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] >= 0; }
};

struct Graph {
  std::vector<Value> values;
  std::vector<Node> nodes;  // topological order once sort() ran
  std::vector<int> inputs;  // runtime inputs (not constants)
  std::vector<int> outputs;
  int64_t opset = 13;
  std::string source;  // file it came from, for messages

  int add_value(const std::string& name, DType dtype = DType::f32);
  int add_constant(const std::string& name, Tensor t);
  int find_value(const std::string& name) const;  // -1 when absent
  bool is_constant(int v) const { return v >= 0 && values[v].constant.has_value(); }
  const Tensor& constant(int v) const { return *values[v].constant; }

  // Orders nodes topologically and sets Value::producer; throws on cycles or undefined inputs.
  void sort();
  // Drops nodes whose outputs reach no graph output, and values nothing refers to.
  void remove_dead();
  // For each value, the indices of nodes that read it.
  std::vector<std::vector<int>> consumers() const;
  // Hash of what the graph computes: opset, inputs, outputs, nodes with their attributes, and
  // every constant's bytes (not `source`: the same model at another path hashes the same).
  std::string content_hash() const;
  // Gives every unnamed node the stable name "<op>_<index>" so configs can refer to it.
  void name_unnamed_nodes();
};

}  // namespace mixq
