#include "data/model_inputs.h"

#include <limits>

#include "base/error.h"

namespace mixq {

namespace {

bool is_integer(DType t) {
  return t == DType::i64 || t == DType::i32 || t == DType::i16 || t == DType::i8 || t == DType::u8;
}

Tensor convert(const Tensor& a, const Value& input, const std::string& array,
               const std::string& where) {
  if (a.dtype() == input.dtype) return a;
  const std::string mismatch = array + " is " + dtype_name(a.dtype()) + ", model input '" +
                               input.name + "' expects " + dtype_name(input.dtype);
  if (a.dtype() == DType::f64 && input.dtype == DType::f32) {
    Tensor t(DType::f32, a.shape());
    const double* s = a.data<double>();
    float* d = t.data<float>();
    for (int64_t i = 0; i < a.numel(); ++i) d[i] = static_cast<float>(s[i]);
    return t;
  }
  check(is_integer(a.dtype()) && (input.dtype == DType::i64 || input.dtype == DType::i32), where,
        mismatch);
  Tensor t(input.dtype, a.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    const int64_t v = a.get_int(i);
    if (input.dtype == DType::i64) {
      t.data<int64_t>()[i] = v;
    } else {
      check(v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max(),
            where, mismatch + " and holds " + std::to_string(v));
      t.data<int32_t>()[i] = static_cast<int32_t>(v);
    }
  }
  return t;
}

std::string input_list(const Graph& g) {
  std::string s;
  for (int v : g.inputs) s += (s.empty() ? "" : ", ") + g.values[v].name;
  return s;
}

}  // namespace

std::vector<Tensor> model_inputs(const Batch& batch, const Graph& graph, const Dataset& data) {
  const std::string where = data.description();
  std::vector<Tensor> out;
  if (batch.names.empty()) {
    check(batch.inputs.size() == graph.inputs.size(), where,
          "gives " + std::to_string(batch.inputs.size()) + " input(s), the model has " +
              std::to_string(graph.inputs.size()) + " (" + input_list(graph) +
              "); give one array per input by name with npz:");
    for (size_t i = 0; i < graph.inputs.size(); ++i) {
      const Value& v = graph.values[graph.inputs[i]];
      out.push_back(convert(batch.inputs[i], v, "input " + std::to_string(i), where));
    }
    return out;
  }
  for (const std::string& name : batch.names) {
    bool found = false;
    for (int v : graph.inputs) found = found || graph.values[v].name == name;
    check(found, where,
          "array '" + name + "' is not an input of the model (inputs: " + input_list(graph) + ")");
  }
  for (int v : graph.inputs) {
    const Value& value = graph.values[v];
    size_t k = 0;
    while (k < batch.names.size() && batch.names[k] != value.name) ++k;
    check(k < batch.names.size(), where, "has no array for model input '" + value.name + "'");
    out.push_back(convert(batch.inputs[k], value, "array '" + value.name + "'", where));
  }
  return out;
}

void require_labels(const Dataset& data, const std::string& what) {
  check(data.labelled(), data.description(),
        "has no labels, and " + what +
            " needs them (npz: an integer array 'labels'; npy:FILE,LABELS; folder: one "
            "subfolder per class)");
}

}  // namespace mixq
