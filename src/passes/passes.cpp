#include "passes/passes.h"

#include <cmath>

#include "base/error.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// Replaces every use of value `from` by `to`, graph outputs included.
void replace_uses(Graph& g, int from, int to) {
  for (Node& n : g.nodes)
    for (int& v : n.inputs)
      if (v == from) v = to;
  for (int& v : g.outputs)
    if (v == from) v = to;
}

bool is_output(const Graph& g, int v) {
  for (int o : g.outputs)
    if (o == v) return true;
  return false;
}

}  // namespace

int remove_identities(Graph& g) {
  int removed = 0;
  std::vector<Node> kept;
  for (Node& n : g.nodes) {
    bool drop = n.domain.empty() && !n.outputs.empty() && n.has_input(0) &&
                (n.op_type == "Identity" ||
                 (n.op_type == "Dropout" && (n.outputs.size() < 2 || n.outputs[1] < 0)));
    // A graph output produced by an Identity keeps its name: leave such nodes alone.
    if (drop && !is_output(g, n.outputs[0])) {
      replace_uses(g, n.outputs[0], n.inputs[0]);
      ++removed;
      continue;
    }
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
  return removed;
}

int fold_constants(Graph& g) {
  int folded = 0;
  std::vector<Node> kept;
  for (Node& n : g.nodes) {
    bool all_const = !n.inputs.empty() || n.op_type == "ConstantOfShape";
    for (int v : n.inputs) all_const = all_const && (v < 0 || g.is_constant(v));
    // Random ops and graph outputs are never folded.
    bool foldable = all_const && n.op_type.rfind("Random", 0) != 0 && n.domain.empty() &&
                    Registry::get().supports(op_key(n));
    for (int o : n.outputs) foldable = foldable && !is_output(g, o);
    if (!foldable) {
      kept.push_back(std::move(n));
      continue;
    }
    auto kernel = Registry::get().make(n, g, Impl::reference);
    std::vector<const Tensor*> in;
    for (int v : n.inputs) in.push_back(v >= 0 ? &g.constant(v) : nullptr);
    std::vector<Tensor> results(n.outputs.size());
    std::vector<Tensor*> out;
    for (size_t i = 0; i < n.outputs.size(); ++i)
      out.push_back(n.outputs[i] >= 0 ? &results[i] : nullptr);
    try {
      kernel->forward(in, out);
    } catch (const Error& e) {
      // As in the Executor: a tensor-level failure names the node being folded.
      if (e.where() != "tensor") throw;
      throw Error(n.label(), e.cause());
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      int o = n.outputs[i];
      if (o < 0) continue;
      g.values[o].dtype = results[i].dtype();
      g.values[o].shape = results[i].shape();
      g.values[o].shape_known = true;
      g.values[o].constant = std::move(results[i]);
    }
    ++folded;
  }
  g.nodes = std::move(kept);
  return folded;
}

int fold_batchnorm(Graph& g) {
  auto users = g.consumers();
  int folded = 0;
  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& bn = g.nodes[i];
    if (bn.op_type != "BatchNormalization" || bn.inputs.size() < 5) continue;
    if (bn.outputs.size() > 1 && bn.outputs[1] >= 0) continue;  // training-mode outputs used
    int x = bn.inputs[0];
    int p = g.values[x].producer;
    if (p < 0 || users[x].size() != 1 || is_output(g, x)) continue;
    Node& conv = g.nodes[p];
    bool is_conv = conv.op_type == "Conv";
    bool is_gemm = conv.op_type == "Gemm" && conv.get_int("transB", 0) == 1 &&
                   conv.get_float("alpha", 1) == 1 && conv.get_float("beta", 1) == 1;
    if (!is_conv && !is_gemm) continue;
    if (!g.is_constant(conv.inputs[1])) continue;
    if (conv.has_input(2) && !g.is_constant(conv.inputs[2])) continue;
    bool params_const = true;
    for (int k = 1; k < 5; ++k) params_const = params_const && g.is_constant(bn.inputs[k]);
    if (!params_const) continue;
    const Tensor& w = g.constant(conv.inputs[1]);
    if (w.dtype() != DType::f32 || w.rank() < 2) continue;
    const int64_t cout = w.dim(0);
    auto scale = g.constant(bn.inputs[1]).to_floats();
    auto shift = g.constant(bn.inputs[2]).to_floats();
    auto mean = g.constant(bn.inputs[3]).to_floats();
    auto var = g.constant(bn.inputs[4]).to_floats();
    if (static_cast<int64_t>(scale.size()) != cout) continue;
    const float eps = bn.get_float("epsilon", 1e-5f);
    Tensor nw = w.clone();
    Tensor nb(DType::f32, {cout});
    std::vector<float> old_b(cout, 0.f);
    if (conv.has_input(2)) old_b = g.constant(conv.inputs[2]).to_floats();
    const int64_t per_row = w.numel() / cout;
    float* wp = nw.data<float>();
    float* bp = nb.data<float>();
    for (int64_t c = 0; c < cout; ++c) {
      const float s = scale[c] / std::sqrt(var[c] + eps);
      for (int64_t k = 0; k < per_row; ++k) wp[c * per_row + k] *= s;
      bp[c] = (old_b[c] - mean[c]) * s + shift[c];
    }
    int wid = g.add_constant(g.values[conv.inputs[1]].name + "_bnfold", std::move(nw));
    int bid = g.add_constant(g.values[bn.outputs[0]].name + "_bias_bnfold", std::move(nb));
    conv.inputs[1] = wid;
    if (conv.inputs.size() < 3) conv.inputs.resize(3, -1);
    conv.inputs[2] = bid;
    // The conv now writes the batch-norm output directly.
    conv.outputs[0] = bn.outputs[0];
    drop[i] = true;
    ++folded;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return folded;
}

void run_default_passes(Graph& g) {
  remove_identities(g);
  fold_constants(g);
  g.sort();  // fold_batchnorm follows producer links
  fold_batchnorm(g);
  g.remove_dead();
}

}  // namespace mixq
