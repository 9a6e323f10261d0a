#include "quant/apply.h"

#include <limits>
#include <map>
#include <tuple>

#include "base/error.h"
#include "base/hash.h"
#include "ir/internal_names.h"

namespace mixq {

int add_fake_quant_node(Graph& g, int input, const ActQuant& q, const std::string& name) {
  int out = g.add_value(g.values[input].name + "/" + name, DType::f32);
  g.values[out].shape = g.values[input].shape;
  g.values[out].shape_known = g.values[input].shape_known;
  Node n;
  n.name = name;
  n.op_type = names::kFakeQuant;
  n.domain = names::kDomain;
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

namespace {

// codes -> DequantizeLinear(axis = row axis) -> a float value shaped like the weight. Codes go
// in int8 when they fit, else int32; a weight whose codes overflow int32 (PoT past 6 bits) stays
// a float constant of its dequantized values.
int add_dequantized_weight(Graph& g, const QuantLayer& l, const std::vector<RowQuant>& rows) {
  const Tensor& w = g.constant(l.weight);
  // A copy: adding values below may move g.values, and w with them.
  const Shape shape = w.shape();
  IntegerWeight iw = integer_weight(w, rows, l.row_axis);
  const std::string base = g.values[l.weight].name + "/q";
  if (iw.max_abs_code > std::numeric_limits<int32_t>::max())
    return g.add_constant(base + "/dequantized", fake_quantize_weight(w, rows, l.row_axis));
  const bool int8 = iw.max_abs_code <= 127;
  const auto n = static_cast<int64_t>(iw.step.size());
  Tensor codes(int8 ? DType::i8 : DType::i32, w.shape());
  const int64_t* src = iw.codes.data<int64_t>();
  for (int64_t i = 0; i < codes.numel(); ++i) {
    if (int8)
      codes.data<int8_t>()[i] = static_cast<int8_t>(src[i]);
    else
      codes.data<int32_t>()[i] = static_cast<int32_t>(src[i]);
  }
  Tensor zero = int8 ? Tensor::from<int8_t>({n}, std::vector<int8_t>(n, 0))
                     : Tensor::from<int32_t>({n}, std::vector<int32_t>(n, 0));
  Node dq;
  dq.name = base + "/DequantizeLinear";
  dq.op_type = "DequantizeLinear";
  dq.inputs = {g.add_constant(base + "/codes", std::move(codes)),
               g.add_constant(base + "/step", Tensor::from<float>({n}, iw.step)),
               g.add_constant(base + "/zero_point", std::move(zero))};
  const int out = g.add_value(base + "/dequantized", DType::f32);
  g.values[out].shape = shape;
  g.values[out].shape_known = true;
  dq.outputs = {out};
  dq.attrs["axis"] = static_cast<int64_t>(l.row_axis);
  g.nodes.push_back(std::move(dq));
  return out;
}

// A Conv whose input codes are unsigned with zero point 0 (after ReLU) and whose weight codes
// fit int8 becomes mixq.QConv reading the float input directly: integer arithmetic inside,
// the same values as the fake-quantized Conv. Returns false (graph untouched) otherwise.
bool to_integer_conv(Graph& g, const QuantLayer& l, const LayerConfig& lc) {
  const Node& node = g.nodes[l.node];
  if (l.op_type != "Conv" || lc.rows.empty() || !lc.input || l.row_axis != 0) return false;
  if (g.constant(l.weight).rank() != 4) return false;  // 2-D convolutions only
  const ActQuant& a = *lc.input;
  if (a.zero_point != 0 || a.qmin != 0 || a.qmax > 255) return false;
  if (node.get_string("auto_pad", "NOTSET") != "NOTSET") return false;
  if (static_cast<int64_t>(lc.rows.size()) != l.rows) return false;
  IntegerWeight iw = integer_weight(g.constant(l.weight), lc.rows, l.row_axis);
  if (iw.max_abs_code > 127) return false;
  Tensor codes(DType::i8, iw.codes.shape());
  for (int64_t i = 0; i < codes.numel(); ++i)
    codes.data<int8_t>()[i] = static_cast<int8_t>(iw.codes.data<int64_t>()[i]);
  const std::string base = g.values[l.weight].name + "/q";
  const int c = g.add_constant(base + "/codes", std::move(codes));
  const int st = g.add_constant(base + "/step", Tensor::from<float>({l.rows}, iw.step));
  Node& n = g.nodes[l.node];
  std::vector<int> inputs{n.inputs[0], c, st};
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) inputs.push_back(n.inputs[2]);
  n.inputs = inputs;
  n.op_type = names::kQConv;
  n.domain = names::kDomain;
  n.attrs["scale"] = a.scale;
  n.attrs["qmax"] = static_cast<int64_t>(a.qmax);
  if (!n.has("pads")) n.attrs["pads"] = std::vector<int64_t>{0, 0, 0, 0};
  return true;
}

}  // namespace

std::string config_weights_hash(const Graph& g, const QuantConfig& cfg) {
  Hasher h;
  for (const QuantLayer& l : find_quant_layers(g)) {
    const LayerConfig* lc = cfg.find(l.name);
    if (lc == nullptr || lc->rows.empty()) continue;
    const Tensor& w = g.constant(l.weight);
    h.add(l.name).add(static_cast<uint64_t>(w.numel()));
    h.add(w.data<float>(), static_cast<size_t>(w.numel()) * sizeof(float));
  }
  return h.hex();
}

void check_config_weights(const Graph& g, const QuantConfig& cfg, const std::string& where) {
  if (cfg.weights_hash.empty() || config_weights_hash(g, cfg) == cfg.weights_hash) return;
  throw Error(where, "was made for other weights than " + g.source +
                         "'s (weights rounded with compensation or fine-tuned, written with it "
                         "as model.onnx): use it with that model");
}

Graph apply_quant(const Graph& src, const QuantConfig& cfg, const std::string& where,
                  WeightForm form) {
  check_config_weights(src, cfg, where);
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
    if (form == WeightForm::int8 && to_integer_conv(g, l, lc)) continue;
    if (!lc.rows.empty()) {
      check(static_cast<int64_t>(lc.rows.size()) == l.rows, where,
            "layer '" + lc.name + "' has " + std::to_string(l.rows) + " rows, config gives " +
                std::to_string(lc.rows.size()));
      // The new weight value first: adding nodes may move g.nodes.
      const int weight =
          form == WeightForm::qdq
              ? add_dequantized_weight(g, l, lc.rows)
              : g.add_constant(g.values[l.weight].name + "/fq",
                               fake_quantize_weight(g.constant(l.weight), lc.rows, l.row_axis));
      g.nodes[l.node].inputs[1] = weight;
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
