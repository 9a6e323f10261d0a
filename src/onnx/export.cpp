#include "onnx/export.h"

#include <onnx/onnx_pb.h>

#include <set>

#include "base/error.h"
#include "base/file_io.h"
#include "ir/internal_names.h"
#include "onnx/import.h"

namespace mixq {
namespace {

void fill_tensor(onnx::TensorProto* p, const std::string& name, const Tensor& t) {
  p->set_name(name);
  p->set_data_type(dtype_traits(t.dtype()).onnx);
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_raw_data(std::string(static_cast<const char*>(t.raw()), t.nbytes()));
}

void fill_value_info(onnx::ValueInfoProto* vi, const Value& v) {
  vi->set_name(v.name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype_traits(v.dtype).onnx);
  if (!v.shape_known) return;
  auto* sh = tt->mutable_shape();
  for (int64_t d : v.shape) {
    auto* dim = sh->add_dim();
    if (d < 0)
      dim->set_dim_param("N");
    else
      dim->set_dim_value(d);
  }
}

void fill_attribute(onnx::AttributeProto* a, const std::string& key, const Attribute& v) {
  using AP = onnx::AttributeProto;
  a->set_name(key);
  if (auto p = std::get_if<int64_t>(&v)) {
    a->set_type(AP::INT);
    a->set_i(*p);
  } else if (auto p = std::get_if<float>(&v)) {
    a->set_type(AP::FLOAT);
    a->set_f(*p);
  } else if (auto p = std::get_if<std::string>(&v)) {
    a->set_type(AP::STRING);
    a->set_s(*p);
  } else if (auto p = std::get_if<std::vector<int64_t>>(&v)) {
    a->set_type(AP::INTS);
    for (int64_t x : *p) a->add_ints(x);
  } else if (auto p = std::get_if<std::vector<float>>(&v)) {
    a->set_type(AP::FLOATS);
    for (float x : *p) a->add_floats(x);
  } else if (auto p = std::get_if<std::vector<std::string>>(&v)) {
    a->set_type(AP::STRINGS);
    for (const auto& x : *p) a->add_strings(x);
  } else if (auto p = std::get_if<Tensor>(&v)) {
    a->set_type(AP::TENSOR);
    fill_tensor(a->mutable_t(), "", *p);
  }
}

// Writes [Clip] -> QuantizeLinear -> DequantizeLinear for a mixq.FakeQuant node.
void export_fake_quant(const Graph& g, const Node& n, onnx::GraphProto* gp,
                       std::set<std::string>& names) {
  const float scale = n.get_float("scale", 1);
  const int64_t zp = n.get_int("zero_point", 0), qmin = n.get_int("qmin", 0),
                qmax = n.get_int("qmax", 255);
  const bool is_signed = qmin < 0;
  check(is_signed ? (qmin >= -128 && qmax <= 127) : (qmin >= 0 && qmax <= 255), n.label(),
        "activation range [" + std::to_string(qmin) + ", " + std::to_string(qmax) +
            "] does not fit 8 bits; QDQ export needs <= 8-bit activations");
  const std::string in = g.values[n.inputs[0]].name, out = g.values[n.outputs[0]].name;
  const std::string base = n.name;
  auto unique = [&](const std::string& s) {
    std::string u = s;
    while (names.count(u)) u += "_";
    names.insert(u);
    return u;
  };
  const std::string s_name = unique(base + "/scale"), z_name = unique(base + "/zero_point");
  fill_tensor(gp->add_initializer(), s_name, Tensor::from<float>({}, {scale}));
  Tensor zt = is_signed ? Tensor::from<int8_t>({}, {static_cast<int8_t>(zp)})
                        : Tensor::from<uint8_t>({}, {static_cast<uint8_t>(zp)});
  fill_tensor(gp->add_initializer(), z_name, zt);
  const bool narrow = is_signed ? (qmin > -128 || qmax < 127) : (qmin > 0 || qmax < 255);
  std::string x = in;
  if (narrow) {
    // Fewer than 8 bits: clip to the narrower grid in float before QuantizeLinear (which would
    // saturate to the 8-bit type). A float Clip ahead of Q is a pattern runtimes keep exact.
    const std::string lo = unique(base + "/lo"), hi = unique(base + "/hi");
    fill_tensor(gp->add_initializer(), lo, Tensor::from<float>({}, {(qmin - zp) * scale}));
    fill_tensor(gp->add_initializer(), hi, Tensor::from<float>({}, {(qmax - zp) * scale}));
    x = unique(base + "/clipped");
    auto* cn = gp->add_node();
    cn->set_op_type("Clip");
    cn->set_name(unique(base + "/Clip"));
    cn->add_input(in);
    cn->add_input(lo);
    cn->add_input(hi);
    cn->add_output(x);
  }
  const std::string q = unique(base + "/q");
  auto* qn = gp->add_node();
  qn->set_op_type("QuantizeLinear");
  qn->set_name(unique(base + "/QuantizeLinear"));
  qn->add_input(x);
  qn->add_input(s_name);
  qn->add_input(z_name);
  qn->add_output(q);
  auto* dn = gp->add_node();
  dn->set_op_type("DequantizeLinear");
  dn->set_name(unique(base + "/DequantizeLinear"));
  dn->add_input(q);
  dn->add_input(s_name);
  dn->add_input(z_name);
  dn->add_output(out);
}

// Writes mixq.GroupNormalization as its opset-17 form: Reshape to [N, G, -1],
// InstanceNormalization (each sample and group over its channels and positions), Reshape back,
// then the per-channel scale and bias (opset 18's per-group values repeated over each group).
void export_group_norm(const Graph& g, const Node& n, onnx::GraphProto* gp,
                       std::set<std::string>& names) {
  check(n.inputs.size() == 3 && g.is_constant(n.inputs[1]) && g.is_constant(n.inputs[2]), n.label(),
        "GroupNormalization exports only with constant scale and bias");
  const Value& xv = g.values[n.inputs[0]];
  check(xv.shape_known && xv.shape.size() >= 2 && xv.shape[1] > 0, n.label(),
        "GroupNormalization exports only with a known channel count");
  const int64_t groups = n.get_int("num_groups", 0), c = xv.shape[1];
  const bool per_channel = n.get_int("channel_affine", 1) == 1;
  auto unique = [&](const std::string& s) {
    std::string u = s;
    while (names.count(u)) u += "_";
    names.insert(u);
    return u;
  };
  auto node = [&](const std::string& op, const std::vector<std::string>& in,
                  const std::string& out) {
    auto* p = gp->add_node();
    p->set_op_type(op);
    p->set_name(unique(n.name + "/" + op));
    for (const auto& v : in) p->add_input(v);
    p->add_output(out);
    return p;
  };
  auto constant = [&](const std::string& name, const Tensor& t) {
    const std::string u = unique(n.name + "/" + name);
    fill_tensor(gp->add_initializer(), u, t);
    return u;
  };
  // Per-channel affine values shaped [C, 1, ...] to broadcast over the positions.
  auto per_channel_values = [&](const Tensor& t) {
    Shape s(xv.shape.size() - 1, 1);
    s[0] = c;
    Tensor out(DType::f32, s);
    for (int64_t ch = 0; ch < c; ++ch)
      out.data<float>()[ch] =
          static_cast<float>(t.get_double(per_channel ? ch : ch / (c / groups)));
    return out;
  };
  const std::string x = xv.name, y = g.values[n.outputs[0]].name;
  const std::string shape = unique(n.name + "/shape"), grouped = unique(n.name + "/grouped"),
                    normed = unique(n.name + "/normed"), back = unique(n.name + "/ungrouped"),
                    scaled = unique(n.name + "/scaled");
  node("Shape", {x}, shape);
  node("Reshape", {x, constant("group_shape", Tensor::from<int64_t>({3}, {0, groups, -1}))},
       grouped);
  auto* in =
      node("InstanceNormalization",
           {grouped, constant("ones", Tensor::from<float>({groups}, std::vector<float>(groups, 1))),
            constant("zeros", Tensor(DType::f32, {groups}))},
           normed);
  fill_attribute(in->add_attribute(), "epsilon", n.get_float("epsilon", 1e-5f));
  node("Reshape", {normed, shape}, back);
  node("Mul", {back, constant("scale", per_channel_values(g.constant(n.inputs[1])))}, scaled);
  node("Add", {scaled, constant("bias", per_channel_values(g.constant(n.inputs[2])))}, y);
}

}  // namespace

void graph_to_model(const Graph& g, onnx::ModelProto& model, const ExportOptions& o) {
  model.Clear();
  model.set_ir_version(8);
  model.set_producer_name(o.producer);
  auto* op = model.add_opset_import();
  op->set_domain("");
  op->set_version(std::max(g.opset, o.min_opset));
  auto* gp = model.mutable_graph();
  gp->set_name("mixq");
  std::set<std::string> names;
  for (const auto& v : g.values) names.insert(v.name);
  for (const auto& n : g.nodes) names.insert(n.name);
  for (int v : g.inputs) fill_value_info(gp->add_input(), g.values[v]);
  for (int v : g.outputs) fill_value_info(gp->add_output(), g.values[v]);
  std::vector<bool> used(g.values.size(), false);
  for (const auto& n : g.nodes)
    for (int v : n.inputs)
      if (v >= 0) used[v] = true;
  for (int v : g.outputs) used[v] = true;
  for (size_t v = 0; v < g.values.size(); ++v)
    if (used[v] && g.values[v].constant)
      fill_tensor(gp->add_initializer(), g.values[v].name, *g.values[v].constant);
  for (const auto& n : g.nodes) {
    if (names::is_internal(n, names::kFakeQuant)) {
      export_fake_quant(g, n, gp, names);
      continue;
    }
    if (names::is_internal(n, names::kGroupNorm)) {
      export_group_norm(g, n, gp, names);
      continue;
    }
    check(n.domain.empty() || n.domain == "ai.onnx", n.label(),
          "internal operator has no ONNX form");
    auto* np = gp->add_node();
    np->set_op_type(n.op_type);
    np->set_name(n.name);
    for (int v : n.inputs) np->add_input(v >= 0 ? g.values[v].name : "");
    for (int v : n.outputs) np->add_output(v >= 0 ? g.values[v].name : "");
    for (const auto& [key, val] : n.attrs) {
      check(key.rfind(names::kPrefix, 0) != 0, n.label(),
            "carries fused attribute '" + key + "'; export the unfused graph");
      fill_attribute(np->add_attribute(), key, val);
    }
  }
}

void save_onnx(const Graph& g, const std::string& path, const ExportOptions& o) {
  onnx::ModelProto model;
  graph_to_model(g, model, o);
  check_onnx_model(model, path, "exported model fails the ONNX checker");
  write_file_atomic(path, model.SerializeAsString());
}

}  // namespace mixq
