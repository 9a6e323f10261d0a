#include "quant/apply.h"

#include <map>
#include <tuple>

#include "base/error.h"

namespace mixq {

int add_fake_quant_node(Graph& g, int input, const ActQuant& q, const std::string& name) {
  int out = g.add_value(g.values[input].name + "/" + name, DType::f32);
  g.values[out].shape = g.values[input].shape;
  g.values[out].shape_known = g.values[input].shape_known;
  Node n;
  n.name = name;
  n.op_type = "FakeQuant";
  n.domain = "mixq";
  n.inputs = {input};
  n.outputs = {out};
  n.attrs["scale"] = q.scale;
  n.attrs["zero_point"] = static_cast<int64_t>(q.zero_point);
  n.attrs["qmin"] = static_cast<int64_t>(q.qmin);
  n.attrs["qmax"] = static_cast<int64_t>(q.qmax);
  n.attrs["bits"] = static_cast<int64_t>(q.bits);
  g.nodes.push_back(std::move(n));
  return out;
}

Graph apply_quant(const Graph& src, const QuantConfig& cfg, const std::string& where) {
  Graph g = src;
  auto layers = find_quant_layers(g);
  std::map<std::string, const QuantLayer*> by_name;
  for (const auto& l : layers) by_name[l.name] = &l;
  // One FakeQuant per (input value, quantizer), shared by layers reading the same tensor.
  std::map<std::tuple<int, float, int32_t, int32_t, int32_t>, int> fq_out;
  for (const auto& lc : cfg.layers) {
    auto it = by_name.find(lc.name);
    check(it != by_name.end(), where,
          "layer '" + lc.name + "' is not a quantizable layer of " + src.source);
    const QuantLayer& l = *it->second;
    Node& node = g.nodes[l.node];
    if (!lc.rows.empty()) {
      check(static_cast<int64_t>(lc.rows.size()) == l.rows, where,
            "layer '" + lc.name + "' has " + std::to_string(l.rows) + " rows, config gives " +
                std::to_string(lc.rows.size()));
      Tensor q = fake_quantize_weight(g.constant(l.weight), lc.rows, l.row_axis);
      node.inputs[1] = g.add_constant(g.values[l.weight].name + "/fq", std::move(q));
    }
    if (lc.input) {
      const ActQuant& a = *lc.input;
      auto key = std::make_tuple(l.data_input, a.scale, a.zero_point, a.qmin, a.qmax);
      auto f = fq_out.find(key);
      int v = f != fq_out.end() ? f->second
                                : add_fake_quant_node(g, l.data_input, a, lc.name + "/input_fq");
      fq_out[key] = v;
      g.nodes[l.node].inputs[0] = v;
    }
  }
  g.sort();
  return g;
}

double average_weight_bits(const Graph& g, const QuantConfig& cfg,
                           const std::vector<QuantLayer>& layers) {
  double bits = 0, count = 0;
  for (const auto& l : layers) {
    const int64_t per_row = l.weight_count / std::max<int64_t>(l.rows, 1);
    const LayerConfig* lc = cfg.find(l.name);
    if (lc && !lc->rows.empty()) {
      for (const auto& r : lc->rows) bits += static_cast<double>(r.bits) * per_row;
    } else {
      bits += 32.0 * l.weight_count;
    }
    count += l.weight_count;
  }
  (void)g;
  return count > 0 ? bits / count : 0;
}

double weight_bytes(const Graph& g, const QuantConfig& cfg) {
  auto layers = find_quant_layers(g);
  double bytes = 0;
  std::vector<bool> counted(g.values.size(), false);
  for (const auto& l : layers) {
    counted[l.weight] = true;
    bytes += average_weight_bits(g, cfg, {l}) * l.weight_count / 8.0;
  }
  // Every other float constant (biases, ...) stays 32-bit.
  for (size_t v = 0; v < g.values.size(); ++v)
    if (!counted[v] && g.values[v].constant && g.values[v].constant->dtype() == DType::f32)
      bytes += 4.0 * g.values[v].constant->numel();
  return bytes;
}

}  // namespace mixq
