#include "runtime/executor.h"

#include <algorithm>

#include "base/error.h"

namespace mixq {

Executor::Executor(const Graph& graph, Impl impl) : graph_(graph) {
  kernels_.reserve(graph_.nodes.size());
  impl_names_.resize(graph_.nodes.size());
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    kernels_.push_back(Registry::get().make(graph_.nodes[i], graph_, impl, &impl_names_[i]));
}

std::vector<Tensor> Executor::environment() const {
  std::vector<Tensor> env(graph_.values.size());
  for (size_t v = 0; v < graph_.values.size(); ++v)
    if (graph_.values[v].constant) env[v] = *graph_.values[v].constant;
  return env;
}

void Executor::check_input(size_t i, const Tensor& t) const {
  const Value& v = graph_.values[graph_.inputs.at(i)];
  const std::string where = "model input '" + v.name + "'";
  check(t.dtype() == v.dtype, where,
        std::string("expects ") + dtype_name(v.dtype) + ", got " + dtype_name(t.dtype()));
  if (!v.shape_known) return;
  bool ok = t.rank() == v.shape.size();
  for (size_t d = 0; ok && d < v.shape.size(); ++d)
    ok = v.shape[d] < 0 || v.shape[d] == t.shape()[d];
  check(ok, where, "expects shape " + shape_str(v.shape) + ", got " + shape_str(t.shape()));
}

void Executor::run_range(std::vector<Tensor>& env, size_t first, size_t last) {
  last = std::min(last, graph_.nodes.size());
  std::vector<const Tensor*> in;
  std::vector<Tensor*> out;
  for (size_t i = first; i < last; ++i) {
    const Node& node = graph_.nodes[i];
    in.clear();
    out.clear();
    for (int v : node.inputs) {
      if (v >= 0 && !env[v].defined())
        throw Error(node.label(), "input '" + graph_.values[v].name + "' has not been computed");
      in.push_back(v >= 0 ? &env[v] : nullptr);
    }
    for (int v : node.outputs) out.push_back(v >= 0 ? &env[v] : nullptr);
    kernels_[i]->forward(in, out);
  }
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs) {
  check(inputs.size() == graph_.inputs.size(), graph_.source,
        "model has " + std::to_string(graph_.inputs.size()) + " inputs, got " +
            std::to_string(inputs.size()));
  if (env_.empty()) env_ = environment();
  for (size_t i = 0; i < inputs.size(); ++i) {
    check_input(i, inputs[i]);
    env_[graph_.inputs[i]] = inputs[i];
  }
  run_range(env_);
  std::vector<Tensor> outs;
  for (int v : graph_.outputs) outs.push_back(env_[v]);
  return outs;
}

std::vector<std::string> unsupported_ops(const Graph& graph) {
  std::vector<std::string> missing;
  for (const Node& n : graph.nodes) {
    std::string name = op_key(n);
    bool ok = Registry::get().supports(name);
    if (!ok && std::find(missing.begin(), missing.end(), name) == missing.end())
      missing.push_back(name);
  }
  return missing;
}

}  // namespace mixq
