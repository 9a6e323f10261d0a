#include "train/params.h"

#include <set>

#include "base/error.h"
#include "passes/passes.h"

namespace mixq {

const char* param_kind_name(ParamKind k) {
  switch (k) {
    case ParamKind::weight:
      return "weight";
    case ParamKind::bias:
      return "bias";
    case ParamKind::bn_scale:
      return "bn_scale";
    case ParamKind::bn_bias:
      return "bn_bias";
  }
  return "?";
}

namespace {

bool float_constant(const Graph& g, int v) {
  return g.is_constant(v) && g.constant(v).dtype() == DType::f32;
}

bool is_bn(const Node& n) {
  return n.domain.empty() && n.op_type == "BatchNormalization";
}

bool has_stats_outputs(const Node& n) {
  return n.outputs.size() >= 3 && n.outputs[1] >= 0 && n.outputs[2] >= 0;
}

}  // namespace

void make_training_form(Graph& g) {
  for (Node& n : g.nodes) {
    if (!is_bn(n)) continue;
    check(n.inputs.size() >= 5, n.label(), "needs 5 inputs");
    for (int k = 1; k < 5; ++k)
      check(float_constant(g, n.inputs[k]), n.label(),
            "training needs float32 constant scale, bias and statistics");
    check(g.constant(n.inputs[3]).numel() == g.constant(n.inputs[1]).numel(), n.label(),
          "training needs per-channel statistics");
    if (has_stats_outputs(n)) continue;
    n.outputs.resize(3, -1);
    for (int k = 1; k <= 2; ++k) {
      const int stat = n.inputs[k + 2];
      int v =
          g.add_value(g.values[n.outputs[0]].name + (k == 1 ? "/running_mean" : "/running_var"));
      g.values[v].shape = g.values[stat].shape;
      g.values[v].shape_known = true;
      n.outputs[k] = v;
    }
    // No training_mode attribute: the trainer puts kernels into training (set_training).
  }
  g.sort();
}

Trainables find_trainables(const Graph& g) {
  Trainables t;
  std::set<int> seen;
  auto add = [&](int v, ParamKind kind) {
    if (v >= 0 && float_constant(g, v) && seen.insert(v).second) t.params.push_back({v, kind});
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty()) continue;
    if (n.op_type == "Conv" || n.op_type == "Gemm") {
      if (n.has_input(1)) add(n.inputs[1], ParamKind::weight);
      if (n.has_input(2)) add(n.inputs[2], ParamKind::bias);
    } else if (n.op_type == "MatMul") {
      add(n.inputs.at(1), ParamKind::weight);
      add(n.inputs.at(0), ParamKind::weight);
    } else if (is_bn(n)) {
      add(n.inputs.at(1), ParamKind::bn_scale);
      add(n.inputs.at(2), ParamKind::bn_bias);
      if (has_stats_outputs(n) && float_constant(g, n.inputs[3]) && float_constant(g, n.inputs[4]))
        t.bn.push_back({static_cast<int>(i), n.inputs[3], n.inputs[4], n.outputs[1], n.outputs[2]});
    }
  }
  return t;
}

int64_t count_parameters(const Graph& g) {
  int64_t total = 0;
  for (const Param& p : find_trainables(g).params) total += g.constant(p.value).numel();
  return total;
}

Graph inference_graph(const Graph& training, const std::vector<Tensor>& env, bool fold_bn) {
  check(env.size() == training.values.size(), training.source,
        "environment does not match the graph");
  Graph g = training;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].constant && env[v].defined()) g.values[v].constant = env[v];
  for (Node& n : g.nodes) {
    if (!is_bn(n)) continue;
    n.outputs.resize(1);
    n.attrs.erase("training_mode");
  }
  g.remove_dead();
  g.sort();
  if (fold_bn) {
    fold_batchnorm(g);
    g.remove_dead();
    g.sort();
  }
  return g;
}

}  // namespace mixq
