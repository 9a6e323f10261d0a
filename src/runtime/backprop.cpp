#include "runtime/backprop.h"

#include "base/error.h"

namespace mixq {

void accumulate_grad(Tensor& out, Tensor x) {
  if (!out.defined()) {
    out = std::move(x);
    return;
  }
  check(out.shape() == x.shape() && out.dtype() == x.dtype(), "backprop",
        "gradient shapes differ: " + shape_str(out.shape()) + " and " + shape_str(x.shape()));
  if (!out.unique()) out = out.clone();  // gradients may be views shared with other values
  if (out.dtype() == DType::f64) {
    double* o = out.data<double>();
    const double* p = x.data<double>();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] += p[i];
    return;
  }
  float* o = out.data<float>();
  const float* p = x.data<float>();
#pragma omp parallel for if (out.numel() > 65536)
  for (int64_t i = 0; i < out.numel(); ++i) o[i] += p[i];
}

Backprop::Backprop(Executor& ex, std::vector<int> wrt) : ex_(ex), wrt_(std::move(wrt)) {
  const Graph& g = ex_.graph();
  needs_.assign(g.values.size(), false);
  for (int v : wrt_) needs_[v] = true;
  for (const Node& n : g.nodes) {
    bool any = false;
    for (int v : n.inputs) any = any || (v >= 0 && needs_[v]);
    // Only float values carry gradients (shape tensors computed from x do not).
    if (any)
      for (int o : n.outputs)
        if (o >= 0 && (g.values[o].dtype == DType::f32 || g.values[o].dtype == DType::f64))
          needs_[o] = true;
  }
}

void Backprop::run(const std::vector<Tensor>& env, std::vector<Tensor>& genv) {
  const Graph& g = ex_.graph();
  check(genv.size() == g.values.size(), "backprop", "gradient environment has the wrong size");
  std::vector<const Tensor*> in, out, gout;
  std::vector<Tensor> gin_store;
  std::vector<Tensor*> gin;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    bool flows_out = false, flows_in = false;
    for (int o : n.outputs) flows_out = flows_out || (o >= 0 && genv[o].defined());
    for (int v : n.inputs) flows_in = flows_in || (v >= 0 && needs_[v]);
    if (!flows_out || !flows_in) continue;
    in.clear();
    out.clear();
    gout.clear();
    for (int v : n.inputs) in.push_back(v >= 0 ? &env[v] : nullptr);
    for (int o : n.outputs) {
      out.push_back(o >= 0 ? &env[o] : nullptr);
      gout.push_back(o >= 0 && genv[o].defined() ? &genv[o] : nullptr);
    }
    gin_store.assign(n.inputs.size(), Tensor());
    gin.assign(n.inputs.size(), nullptr);
    for (size_t k = 0; k < n.inputs.size(); ++k)
      if (n.inputs[k] >= 0 && needs_[n.inputs[k]]) gin[k] = &gin_store[k];
    ex_.kernel(i).backward(in, out, gout, gin);
    for (size_t k = 0; k < n.inputs.size(); ++k)
      if (gin[k]) {
        check(gin_store[k].defined(), n.label(), "backward produced no gradient for an input");
        accumulate_grad(genv[n.inputs[k]], std::move(gin_store[k]));
      }
  }
}

}  // namespace mixq
