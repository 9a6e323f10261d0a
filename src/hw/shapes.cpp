#include "hw/shapes.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/error.h"
#include "quant/layers.h"
#include "runtime/summary.h"

namespace mixq::hw {

namespace {

LayerShape conv(const std::string& name, int64_t cin, int64_t cout, int64_t k, int64_t stride,
                int64_t out) {
  LayerShape l;
  l.name = name;
  l.cin = cin;
  l.cout = cout;
  l.kh = l.kw = k;
  l.stride = stride;
  l.out_h = l.out_w = out;
  l.macs = cout * out * out * cin * k * k;
  return l;
}

}  // namespace

std::vector<LayerShape> resnet18_layers() {
  std::vector<LayerShape> v;
  v.push_back(conv("conv1", 3, 64, 7, 2, 112));  // then 3x3/2 max pooling: 56x56
  int64_t cin = 64, size = 56;
  const int64_t widths[4] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t w = widths[stage];
    for (int block = 0; block < 2; ++block) {
      const std::string p = fmt::format("layer{}.{}.", stage + 1, block);
      const int64_t stride = stage > 0 && block == 0 ? 2 : 1;
      const int64_t out = size / stride;
      v.push_back(conv(p + "conv1", cin, w, 3, stride, out));
      v.push_back(conv(p + "conv2", w, w, 3, 1, out));
      if (stride != 1 || cin != w) v.push_back(conv(p + "downsample.0", cin, w, 1, stride, out));
      cin = w;
      size = out;
    }
  }
  LayerShape fc;
  fc.name = "fc";
  fc.op_type = "Gemm";
  fc.cin = 512;
  fc.cout = 1000;
  fc.macs = 512 * 1000;
  v.push_back(fc);
  return v;
}

std::vector<std::string> arch_names() {
  return {"resnet18"};
}

std::vector<LayerShape> arch_layers(const std::string& arch, const std::string& where) {
  if (arch == "resnet18") return resnet18_layers();
  throw Error(where, "unknown architecture '" + arch + "' (known: resnet18)");
}

std::vector<LayerShape> layers_from_graph(const Graph& g) {
  const std::vector<QuantLayer> qls = find_quant_layers(g);
  const ModelSummary sum = summarize(g);
  const std::string where = g.source.empty() ? "model" : g.source;
  if (!sum.shapes_known) {
    std::string ops;
    for (const std::string& op : sum.unsupported) ops += (ops.empty() ? "" : ", ") + op;
    throw Error(where, "cannot find the layers' shapes" +
                           (ops.empty() ? std::string(" (running a sample failed)")
                                        : " (unsupported ops: " + ops + ")"));
  }
  std::vector<LayerShape> v;
  for (const QuantLayer& q : qls) {
    const Node& n = g.nodes[q.node];
    const NodeSummary& ns = sum.nodes[q.node];
    const Tensor& w = g.constant(q.weight);
    LayerShape l;
    l.name = q.name;
    l.op_type = q.op_type;
    l.cout = q.rows;
    l.macs = ns.macs;
    const Shape& out = ns.output_shape;
    if (q.op_type == "Conv") {
      l.groups = n.get_int("group", 1);
      l.cin = w.dim(1) * l.groups;
      l.kh = w.rank() > 2 ? w.dim(2) : 1;
      l.kw = w.rank() > 3 ? w.dim(3) : 1;
      const std::vector<int64_t> strides = n.get_ints("strides");
      l.stride = strides.empty() ? 1 : strides[0];
      l.out_h = out.size() > 2 ? out[2] : 1;
      l.out_w = out.size() > 3 ? out[3] : 1;
    } else {
      l.cin = w.dim(1 - q.row_axis);
      // Gemm: one position; MatMul over [.., T, K]: T positions per sample.
      const int64_t per_position = std::max<int64_t>(1, l.cin * l.cout);
      l.out_h = std::max<int64_t>(1, l.macs / per_position);
    }
    v.push_back(l);
  }
  return v;
}

std::vector<RowSplit> splits_from_config(const std::vector<LayerShape>& layers,
                                         const QuantConfig& cfg, const std::string& where,
                                         int* float_layers) {
  if (float_layers) *float_layers = 0;
  for (const LayerConfig& lc : cfg.layers) {
    const bool known = std::any_of(layers.begin(), layers.end(),
                                   [&](const LayerShape& l) { return l.name == lc.name; });
    check(known, where, "layer '" + lc.name + "' is not a Conv/Gemm/MatMul layer of the model");
  }
  std::vector<RowSplit> splits;
  for (const LayerShape& l : layers) {
    const LayerConfig* lc = cfg.find(l.name);
    RowSplit s;
    if (!lc || lc->rows.empty()) {
      s.fixed8 = l.cout;
      if (float_layers) ++*float_layers;
    } else {
      check(static_cast<int64_t>(lc->rows.size()) == l.cout, where,
            fmt::format("layer '{}' has {} rows in the config, {} in the model", l.name,
                        lc->rows.size(), l.cout));
      int sp2_bits = 0;
      for (const RowQuant& r : lc->rows) {
        if (!scheme_traits(r.scheme).multiplier_free) {
          ++(r.bits <= 4 ? s.fixed : s.fixed8);
        } else {
          ++s.sp2;
          sp2_bits = std::max(sp2_bits, r.bits);
        }
      }
      if (sp2_bits > 0) s.sp2_bits = sp2_bits;
    }
    splits.push_back(s);
  }
  return splits;
}

}  // namespace mixq::hw
