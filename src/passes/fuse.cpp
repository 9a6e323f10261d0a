#include "passes/fuse.h"

#include <algorithm>

#include "ir/internal_names.h"

namespace mixq {
namespace {

bool is_output(const Graph& g, int v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

// The single node reading v (once), or -1. A graph output is read by the caller too.
int sole_consumer(const Graph& g, const std::vector<std::vector<int>>& users, int v) {
  if (is_output(g, v) || users[v].size() != 1) return -1;
  return users[v][0];
}

bool plain(const Node& n, const char* op) {
  return n.op_type == op && (n.domain.empty() || n.domain == "ai.onnx");
}

}  // namespace

bool is_fusable_conv(const Node& n) {
  return plain(n, "Conv") || names::is_internal(n, names::kQConv);
}

int fused_sum_input(const Node& n) {
  return names::is_internal(n, names::kQConv) ? 4 : 3;
}

int fuse_conv_activations(Graph& g, const ShapeInfo& shapes) {
  const auto users = g.consumers();
  std::vector<bool> dead(g.nodes.size(), false);
  int removed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (dead[i] || !is_fusable_conv(g.nodes[i]) || g.nodes[i].outputs.size() != 1) continue;
    size_t at = i;  // where the (growing) fused conv sits
    while (true) {
      Node& conv = g.nodes[at];
      const int y = conv.outputs[0];
      if (y < 0 || g.values[y].dtype != DType::f32) break;
      const int next = sole_consumer(g, users, y);
      if (next < 0) break;
      Node& n = g.nodes[next];
      // The kernel adds the sum before the activation, so nothing fuses after a Relu.
      if (conv.has(names::kActivation) || n.outputs.size() != 1) break;
      if (plain(n, "Relu")) {
        conv.attrs[names::kActivation] = std::string("Relu");
      } else if (plain(n, "Add") && n.inputs.size() == 2 && !conv.has(names::kSum)) {
        const int other = n.inputs[0] == y ? n.inputs[1] : n.inputs[0];
        // `other` cannot depend on y: y's only reader is this Add.
        if (other < 0 || g.is_constant(other) || !shapes.same_shape(other, y)) break;
        conv.attrs[names::kSum] = int64_t{1};
        const int at_sum = fused_sum_input(conv);
        conv.inputs.resize(at_sum + 1, -1);
        conv.inputs[at_sum] = other;
      } else {
        break;
      }
      // The fused conv takes the consumer's place: after every input of both, before every
      // reader of the result, so the order stays topological.
      conv.outputs[0] = n.outputs[0];
      n = std::move(conv);
      dead[at] = true;
      at = static_cast<size_t>(next);
      ++removed;
    }
  }
  std::vector<Node> kept;
  kept.reserve(g.nodes.size() - removed);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  g.sort();  // refreshes Value::producer
  return removed;
}

}  // namespace mixq
