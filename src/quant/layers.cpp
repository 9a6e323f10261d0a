#include "quant/layers.h"

#include <set>

#include "base/error.h"

namespace mixq {

std::vector<QuantLayer> find_quant_layers(const Graph& g) {
  std::vector<QuantLayer> layers;
  std::set<std::string> names;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!n.domain.empty() && n.domain != "ai.onnx") continue;
    const bool conv = n.op_type == "Conv", gemm = n.op_type == "Gemm",
               matmul = n.op_type == "MatMul";
    if (!(conv || gemm || matmul) || !n.has_input(1) || !g.is_constant(n.inputs[1])) continue;
    const Tensor& w = g.constant(n.inputs[1]);
    if (w.dtype() != DType::f32 || w.rank() < 2) continue;
    if (gemm && n.get_int("transA", 0) != 0) continue;
    if (matmul && w.rank() != 2) continue;
    QuantLayer l;
    l.node = static_cast<int>(i);
    l.name = n.name;
    l.op_type = n.op_type;
    l.weight = n.inputs[1];
    l.data_input = n.inputs[0];
    // Conv [Co, Ci/g, k...] and Gemm with transB [N, K] hold rows on axis 0; MatMul and Gemm
    // without transB hold [K, N].
    l.row_axis = conv || (gemm && n.get_int("transB", 0) == 1) ? 0 : 1;
    l.rows = w.dim(l.row_axis);
    l.weight_count = w.numel();
    check(!l.name.empty() && names.insert(l.name).second, g.source,
          "quantizable node names must be unique and non-empty ('" + l.name + "')");
    layers.push_back(l);
  }
  return layers;
}

}  // namespace mixq
