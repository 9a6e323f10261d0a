#include "runtime/summary.h"

#include "base/error.h"
#include "runtime/executor.h"

namespace mixq {

int64_t node_macs(const Node& node, const std::vector<Shape>& in, const Shape& out) {
  if (in.size() < 2 || out.empty()) return 0;
  const Shape& w = in[1];
  if (node.op_type == "Conv" && w.size() >= 2) {
    // Each output element sums over C_in/groups * kernel elements.
    int64_t per_out = 1;
    for (size_t d = 1; d < w.size(); ++d) per_out *= w[d];
    return shape_numel(out) * per_out;
  }
  if (node.op_type == "ConvTranspose" && w.size() >= 2) {
    int64_t per_in = 1;
    for (size_t d = 1; d < w.size(); ++d) per_in *= w[d];
    return shape_numel(in[0]) * per_in;
  }
  if (node.op_type == "Gemm" || node.op_type == "MatMul") {
    const Shape& a = in[0];
    if (a.empty()) return 0;
    int64_t k = node.op_type == "Gemm" && node.get_int("transA", 0) ? a[0] : a.back();
    return shape_numel(out) * k;
  }
  return 0;
}

ModelSummary summarize(const Graph& g) {
  ModelSummary s;
  s.unsupported = unsupported_ops(g);
  std::vector<Tensor> env;
  if (s.unsupported.empty()) {
    try {
      Executor ex(g, Impl::fast);
      env = ex.environment();
      for (int v : g.inputs) {
        Shape shape = g.values[v].shape;
        for (int64_t& d : shape)
          if (d < 0) d = 1;
        env[v] = Tensor(g.values[v].dtype, shape);
      }
      ex.run_range(env);
      s.shapes_known = true;
    } catch (const Error&) {
      s.shapes_known = false;
    }
  }
  auto shape_of = [&](int v) -> Shape {
    if (v < 0) return {};
    if (s.shapes_known) return env[v].shape();
    return g.values[v].shape;
  };
  for (const Node& n : g.nodes) {
    NodeSummary ns;
    ns.name = n.name;
    ns.op_type = n.op_type;
    ns.supported = Registry::get().supports(op_key(n));
    std::vector<Shape> all_in;
    for (int v : n.inputs) {
      all_in.push_back(shape_of(v));
      if (v < 0) continue;
      if (g.is_constant(v) &&
          (g.constant(v).dtype() == DType::f32 || g.constant(v).dtype() == DType::f64)) {
        ns.params += g.constant(v).numel();
        ns.weight_bytes += static_cast<int64_t>(g.constant(v).nbytes());
      } else {
        ns.input_shapes.push_back(shape_of(v));
      }
    }
    if (!n.outputs.empty()) ns.output_shape = shape_of(n.outputs[0]);
    if (s.shapes_known) ns.macs = node_macs(n, all_in, ns.output_shape);
    s.params += ns.params;
    s.weight_bytes += ns.weight_bytes;
    s.macs += ns.macs;
    s.nodes.push_back(std::move(ns));
  }
  return s;
}

}  // namespace mixq
