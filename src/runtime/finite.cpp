#include "runtime/finite.h"

#include <cmath>

#include "base/error.h"
#include "runtime/executor.h"

namespace mixq {
namespace {

template <class T>
std::string kind_of(const T* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(p[i])) return "NaN";
    if (std::isinf(p[i])) return p[i] > 0 ? "+Inf" : "-Inf";
  }
  return "";
}

}  // namespace

std::string non_finite_kind(const Tensor& t) {
  if (!t.defined()) return "";
  if (t.dtype() == DType::f32) return kind_of(t.data<float>(), t.numel());
  if (t.dtype() == DType::f64) return kind_of(t.data<double>(), t.numel());
  return "";
}

NonFinite first_non_finite(const Graph& g, const std::vector<Tensor>& env) {
  NonFinite f;
  for (int v : g.inputs) {
    f.kind = non_finite_kind(env[v]);
    if (f.kind.empty()) continue;
    f.found = true;
    f.where = "model input '" + g.values[v].name + "'";
    f.value = g.values[v].name;
    return f;
  }
  for (const Node& n : g.nodes)
    for (int v : n.outputs) {
      if (v < 0 || static_cast<size_t>(v) >= env.size()) continue;
      f.kind = non_finite_kind(env[v]);
      if (f.kind.empty()) continue;
      f.found = true;
      f.where = n.label();
      f.value = g.values[v].name;
      return f;
    }
  return f;
}

NonFinite locate_non_finite(const Graph& g, const std::vector<Tensor>& inputs) {
  Executor ref(g, Impl::reference);
  std::vector<Tensor> env = ref.environment();
  for (size_t i = 0; i < inputs.size() && i < g.inputs.size(); ++i) env[g.inputs[i]] = inputs[i];
  NonFinite f = first_non_finite(g, env);  // the inputs themselves
  if (f.found) return f;
  ref.run_range(env);
  return first_non_finite(g, env);
}

Error non_finite_error(const NonFinite& f, const std::string& during) {
  if (f.where.rfind("model input", 0) == 0)
    return Error(f.where,
                 "holds " + f.kind + " while " + during + " (the input data is not finite)");
  return Error(f.where, f.kind + " first appears in its output '" + f.value + "' while " + during);
}

Error non_finite_error(const Graph& g, const std::vector<Tensor>& inputs,
                       const std::string& during) {
  const NonFinite f = locate_non_finite(g, inputs);
  if (f.found) return non_finite_error(f, during);
  return Error(g.source,
               "the fast kernels produce non-finite values where the reference kernels "
               "do not, while " +
                   during + "; rerun with --impl reference");
}

}  // namespace mixq
