#include "passes/batch_rows.h"

#include <algorithm>
#include <set>
#include <string>

#include "ir/internal_names.h"

namespace mixq {
namespace {

using Use = ShapeInfo::BatchUse;

bool is_op(const Node& n, const std::set<std::string>& ops) {
  return (n.domain.empty() || n.domain == "ai.onnx") && ops.count(n.op_type) != 0;
}

// Ops that compute output row i from input row i alone whatever their attributes, when their
// data input and output have the batch as leading dimension and their other inputs do not
// depend on the batch.
const std::set<std::string> kRowwise = {
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
    "GlobalMaxPool", "GlobalLpPool", "InstanceNormalization", "LRN", "Relu", "LeakyRelu", "PRelu",
    "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign",
    "Clip", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
    "Erf", "Identity", "Cast", "Dropout",
    // Leading input and output rows of equal size: row-major order maps row i to row i.
    "Reshape", "Flatten", "Squeeze", "Unsqueeze"};
// Elementwise with broadcasting: rows line up when every batch-dependent input has the
// output's rank.
const std::set<std::string> kBroadcast = {"Add", "Sub", "Mul", "Div", "Pow",
                                          "Max", "Min", "Sum", "Mean"};
const std::set<std::string> kReduce = {
    "ReduceMean", "ReduceSum",    "ReduceMax",       "ReduceMin",       "ReduceProd", "ReduceL1",
    "ReduceL2",   "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax",     "ArgMin"};

int64_t normalized(int64_t axis, int64_t rank) {
  return axis < 0 ? axis + rank : axis;
}

// The ints of constant input i; false when the input is absent or not a constant.
bool constant_ints(const Graph& g, const Node& n, size_t i, std::vector<int64_t>& out) {
  if (!n.has_input(i) || !g.is_constant(n.inputs[i])) return false;
  out = g.constant(n.inputs[i]).to_ints();
  return true;
}

// A node whose batch-dependent values all have the batch leading: does it keep rows apart?
bool keeps_rows(const Graph& g, const ShapeInfo& s, const Node& n) {
  const int x = n.has_input(0) ? n.inputs[0] : -1;
  const int64_t rank = s.rank(x);
  auto others_free = [&](size_t from) {
    for (size_t i = from; i < n.inputs.size(); ++i)
      if (n.inputs[i] >= 0 && s.batch_use(n.inputs[i]) != Use::none) return false;
    return true;
  };
  const bool x_leading = x >= 0 && s.batch_use(x) == Use::leading;
  if (names::is_internal(n, names::kFakeQuant)) return x_leading;
  if (is_op(n, kRowwise)) return x_leading && others_free(1);
  if (n.op_type == "BatchNormalization" && n.domain.empty())
    return x_leading && others_free(1) && n.get_int("training_mode", 0) == 0;
  if (is_op(n, kBroadcast)) {
    const int64_t out_rank = s.rank(n.outputs[0]);
    for (int v : n.inputs)
      if (v >= 0 && s.batch_use(v) == Use::leading && s.rank(v) != out_rank) return false;
    return true;
  }
  if (is_op(n, {"Concat"})) {
    for (int v : n.inputs)
      if (v < 0 || s.batch_use(v) != Use::leading || s.rank(v) != rank) return false;
    return normalized(n.get_int("axis", 0), rank) != 0;
  }
  if (!x_leading || !others_free(1)) return false;
  if (is_op(n, {"Softmax", "LogSoftmax", "Hardmax"})) {
    // Before opset 13 the input is seen as 2-D split at axis: rows stay whole for axis >= 1.
    return normalized(n.get_int("axis", g.opset >= 13 ? -1 : 1), rank) != 0;
  }
  if (is_op(n, {"LayerNormalization"})) return normalized(n.get_int("axis", -1), rank) != 0;
  if (is_op(n, {"Transpose"})) {
    auto perm = n.get_ints("perm");
    return !perm.empty() && perm[0] == 0;
  }
  if (is_op(n, {"Gemm"})) return n.get_int("transA", 0) == 0;
  if (is_op(n, {"MatMul"})) return rank >= 2;
  if (is_op(n, {"Slice"})) {
    std::vector<int64_t> axes;
    if (n.has("starts")) {
      axes = n.get_ints("axes");
      if (axes.empty())
        for (size_t i = 0; i < n.get_ints("starts").size(); ++i) axes.push_back(i);
    } else if (n.has_input(3)) {
      if (!constant_ints(g, n, 3, axes)) return false;
    } else {
      std::vector<int64_t> starts;
      if (!constant_ints(g, n, 1, starts)) return false;
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(i);
    }
    return std::none_of(axes.begin(), axes.end(),
                        [&](int64_t a) { return normalized(a, rank) == 0; });
  }
  if (is_op(n, {"Pad"})) {
    std::vector<int64_t> pads = n.get_ints("pads");
    if (!n.has("pads") && (n.has_input(3) || !constant_ints(g, n, 1, pads))) return false;
    return pads.size() == static_cast<size_t>(2 * rank) && pads[0] == 0 && pads[rank] == 0;
  }
  if (is_op(n, kReduce)) {
    std::vector<int64_t> axes = n.get_ints("axes");
    if (n.op_type == "ArgMax" || n.op_type == "ArgMin") axes = {n.get_int("axis", 0)};
    if (!n.has("axes") && n.has_input(1) && !constant_ints(g, n, 1, axes)) return false;
    // No axes reduces everything (unless noop_with_empty_axes, which copies).
    if (axes.empty()) return n.get_int("noop_with_empty_axes", 0) != 0;
    return std::none_of(axes.begin(), axes.end(),
                        [&](int64_t a) { return normalized(a, rank) == 0; });
  }
  return false;
}

}  // namespace

int64_t batch_row_bytes(const Graph& g, const ShapeInfo& shapes) {
  if (!shapes.probed() || g.inputs.empty()) return 0;
  auto leading = [&](int v) { return shapes.batch_use(v) == Use::leading; };
  if (!std::all_of(g.inputs.begin(), g.inputs.end(), leading) ||
      !std::all_of(g.outputs.begin(), g.outputs.end(), leading))
    return 0;
  int64_t widest = 0;
  for (const Node& n : g.nodes) {
    bool any = false;
    for (const auto* list : {&n.inputs, &n.outputs})
      for (int v : *list) {
        if (v < 0) continue;
        const Use u = shapes.batch_use(v);
        if (u == Use::other) return 0;
        any |= u == Use::leading;
        widest = std::max(widest, shapes.row_bytes(v));
      }
    if (!any) continue;  // shape computations and constants
    for (int o : n.outputs)
      if (o >= 0 && !leading(o)) return 0;  // e.g. Shape of a batch
    if (!keeps_rows(g, shapes, n)) return 0;
  }
  return widest;
}

}  // namespace mixq
