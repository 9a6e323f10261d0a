#include "onnx/lower_opset.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "base/error.h"
#include "ir/internal_names.h"
#include "onnx/import.h"

namespace mixq {
namespace {

using onnx::AttributeProto;
using onnx::GraphProto;
using onnx::NodeProto;
using onnx::TensorProto;

// The first data type codes IR 9 and 10 added (float8 variants 17..20, uint4 21, int4 22).
constexpr int kFirstNewType = 17;

// Reductions whose axes moved from an attribute to an input at opset 18 (ReduceSum did at 13).
const std::set<std::string> kReductions = {"ReduceL1",        "ReduceL2",   "ReduceLogSum",
                                           "ReduceLogSumExp", "ReduceMax",  "ReduceMean",
                                           "ReduceMin",       "ReduceProd", "ReduceSumSquare"};

// Operators that opsets 18 to 21 added and that have no exact rewrite here.
const std::set<std::string> kNewOperators = {
    "Col2Im",     "BitwiseAnd", "BitwiseOr",    "BitwiseXor",     "BitwiseNot",   "CenterCropPad",
    "DeformConv", "AffineGrid", "ImageDecoder", "RegexFullMatch", "StringConcat", "StringSplit"};

const AttributeProto* find_attr(const NodeProto& n, const std::string& name) {
  for (const AttributeProto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

void remove_attr(NodeProto& n, const std::string& name) {
  auto* attrs = n.mutable_attribute();
  for (int i = attrs->size() - 1; i >= 0; --i)
    if (attrs->Get(i).name() == name) attrs->DeleteSubrange(i, 1);
}

int64_t int_attr(const NodeProto& n, const std::string& name, int64_t fallback) {
  const AttributeProto* a = find_attr(n, name);
  return a ? a->i() : fallback;
}

std::string string_attr(const NodeProto& n, const std::string& name, const std::string& fallback) {
  const AttributeProto* a = find_attr(n, name);
  return a ? a->s() : fallback;
}

bool has_input(const NodeProto& n, int i) {
  return n.input_size() > i && !n.input(i).empty();
}

class Lowering {
 public:
  Lowering(const std::string& where, const Lowering* outer, int64_t opset, bool* uses_mixq)
      : where_(where), outer_(outer), opset_(opset), uses_mixq_(uses_mixq) {}

  void graph(GraphProto& g) {
    for (const TensorProto& t : g.initializer()) {
      check_type(t.data_type(), "initializer '" + t.name() + "'");
      constants_[t.name()] = &t;
    }
    for (const auto* list : {&g.input(), &g.output(), &g.value_info()})
      for (const auto& vi : *list)
        if (vi.type().has_tensor_type())
          check_type(vi.type().tensor_type().elem_type(), "value '" + vi.name() + "'");
    google::protobuf::RepeatedPtrField<NodeProto> out;
    for (NodeProto& n : *g.mutable_node()) {
      for (AttributeProto& a : *n.mutable_attribute()) {  // If, Loop, Scan bodies
        if (a.has_g()) Lowering(where_, this, opset_, uses_mixq_).graph(*a.mutable_g());
        for (GraphProto& body : *a.mutable_graphs())
          Lowering(where_, this, opset_, uses_mixq_).graph(body);
      }
      if (n.op_type() == "Constant" && n.domain().empty())
        if (const AttributeProto* v = find_attr(n, "value"); v && v->has_t() && n.output_size())
          constants_[n.output(0)] = &v->t();
      if (!n.domain().empty() && n.domain() != "ai.onnx") {
        *out.Add() = n;
        continue;
      }
      node(n, g, out);
    }
    g.mutable_node()->Swap(&out);
  }

 private:
  std::string label(const NodeProto& n) const {
    return where_ + ": " + n.op_type() + " node '" + n.name() + "'";
  }

  void check_type(int type, const std::string& what) const {
    check(type < kFirstNewType, where_ + ": " + what,
          "has a float8 or 4-bit element type (IR 9/10), which mixq does not implement");
  }

  const TensorProto* constant(const std::string& name) const {
    for (const Lowering* l = this; l; l = l->outer_)
      if (auto it = l->constants_.find(name); it != l->constants_.end()) return it->second;
    return nullptr;
  }

  // Rewrites one node, appending the result (one node or several) to out.
  void node(NodeProto& n, GraphProto& g, google::protobuf::RepeatedPtrField<NodeProto>& out) {
    const std::string& op = n.op_type();
    if (kReductions.count(op)) {
      reduction(n);
    } else if (op == "Split") {
      if (const AttributeProto* a = find_attr(n, "num_outputs")) {
        check(a->i() == n.output_size(), label(n),
              "num_outputs " + std::to_string(a->i()) + " but " + std::to_string(n.output_size()) +
                  " outputs");
        check(!has_input(n, 1), label(n), "has both a split input and num_outputs");
        remove_attr(n, "num_outputs");
      }
    } else if (op == "Pad") {
      check(!has_input(n, 3), label(n),
            "pads only some axes (the axes input of opset 18), which mixq does not implement");
      check(string_attr(n, "mode", "constant") != "wrap", label(n),
            "mode 'wrap' (opset 19) is not implemented");
    } else if (op == "AveragePool") {
      if (const AttributeProto* d = find_attr(n, "dilations")) {
        for (int64_t v : d->ints())
          check(v == 1, label(n), "dilations (opset 19) are not implemented");
        remove_attr(n, "dilations");
      }
    } else if (op == "LpPool") {
      check(int_attr(n, "ceil_mode", 0) == 0, label(n), "ceil_mode (opset 18) is not implemented");
      remove_attr(n, "ceil_mode");
    } else if (op == "Cast" || op == "CastLike") {
      remove_attr(n, "saturate");  // only for float8 targets, refused by the type check
    } else if (op == "QuantizeLinear" || op == "DequantizeLinear") {
      remove_attr(n, "saturate");
      check(int_attr(n, "block_size", 0) == 0, label(n),
            "blocked quantization (opset 21) is not implemented");
      remove_attr(n, "block_size");
      const int64_t dtype = int_attr(n, "output_dtype", 0);
      check(dtype == 0 || (dtype == TensorProto::UINT8 && !has_input(n, 2)), label(n),
            "output_dtype without a zero point of that type (opset 21) is not implemented");
      remove_attr(n, "output_dtype");
    } else if (op == "ScatterElements" || op == "ScatterND") {
      const std::string r = string_attr(n, "reduction", "none");
      check(r == "none" || r == "add" || r == "mul", label(n),
            "reduction '" + r + "' (opset 18) is not implemented");
    } else if (op == "Resize") {
      check(int_attr(n, "antialias", 0) == 0 && !has_input(n, 4) && !find_attr(n, "axes") &&
                string_attr(n, "keep_aspect_ratio_policy", "stretch") == "stretch" &&
                string_attr(n, "coordinate_transformation_mode", "") != "half_pixel_symmetric",
            label(n),
            "antialias, axes, keep_aspect_ratio_policy or half_pixel_symmetric (opsets 18-19) "
            "are not implemented");
      remove_attr(n, "antialias");
      remove_attr(n, "keep_aspect_ratio_policy");
      check(opset_ < 19 ||
                string_attr(n, "coordinate_transformation_mode", "") != "tf_crop_and_resize" ||
                has_input(n, 3),
            label(n),
            "tf_crop_and_resize with scales sizes its output by the roi since opset 19, which "
            "is not implemented");
    } else if (op == "GroupNormalization") {
      group_norm(n);
    } else if (op == "Gelu") {
      gelu(n, g, out);
      return;
    } else if (op == "Mish") {
      mish(n, out);
      return;
    } else {
      check(!kNewOperators.count(op), label(n),
            "is an operator of opsets 18-21 that mixq does not implement");
    }
    *out.Add() = n;
  }

  // GroupNormalization (opsets 18 and 21) becomes mixq.GroupNormalization, which says in
  // channel_affine which form of scale and bias it has: [num_groups] at opset 18, [C] at 21.
  // stash_type only allows a float32 or wider stash, which mixq's double statistics are.
  void group_norm(NodeProto& n) {
    check(n.input_size() == 3 && has_input(n, 1) && has_input(n, 2) && n.output_size() == 1,
          label(n), "needs inputs X, scale, bias and one output");
    check(find_attr(n, "num_groups") != nullptr, label(n), "missing attribute num_groups");
    remove_attr(n, "stash_type");
    n.set_domain(names::kDomain);
    AttributeProto* a = n.add_attribute();
    a->set_name("channel_affine");
    a->set_type(AttributeProto::INT);
    a->set_i(opset_ >= 21 ? 1 : 0);
    *uses_mixq_ = true;
  }

  void reduction(NodeProto& n) {
    const bool noop = int_attr(n, "noop_with_empty_axes", 0) != 0;
    remove_attr(n, "noop_with_empty_axes");
    std::vector<int64_t> axes;
    if (find_attr(n, "axes")) return;  // already the opset-17 form
    if (has_input(n, 1)) {
      const TensorProto* t = constant(n.input(1));
      check(t != nullptr, label(n),
            "axes computed at run time (an input since opset 18) cannot be expressed at opset "
            "17; give them as an initializer or a Constant");
      axes = tensor_from_proto(*t, label(n) + " axes").to_ints();
    }
    if (n.input_size() > 1) n.mutable_input()->DeleteSubrange(1, n.input_size() - 1);
    if (axes.empty() && noop) {  // no axes to reduce: the output is the input
      n.set_op_type("Identity");
      n.clear_attribute();
      return;
    }
    if (axes.empty()) return;  // every axis, as at opset 17
    AttributeProto* a = n.add_attribute();
    a->set_name("axes");
    a->set_type(AttributeProto::INTS);
    for (int64_t v : axes) a->add_ints(v);
  }

  // A float scalar initializer named after the node.
  std::string scalar(GraphProto& g, const NodeProto& n, const std::string& what, float v) {
    TensorProto* t = g.add_initializer();
    t->set_name(n.name() + "/" + n.output(0) + "/" + what);
    t->set_data_type(TensorProto::FLOAT);
    t->add_float_data(v);
    return t->name();
  }

  // Appends node `op` over inputs writing `output` (a fresh name when empty); returns the output.
  static std::string emit(google::protobuf::RepeatedPtrField<NodeProto>& out, const NodeProto& n,
                          const std::string& op, std::vector<std::string> inputs,
                          std::string output = "") {
    NodeProto* m = out.Add();
    const std::string base = n.name() + "/" + n.output(0) + "/";
    m->set_name(base + op + std::to_string(out.size()));
    m->set_op_type(op);
    for (const std::string& in : inputs) m->add_input(in);
    if (output.empty()) output = base + op + std::to_string(out.size()) + "_out";
    m->add_output(output);
    return output;
  }

  // Gelu (opset 20): x/2 (1 + erf(x/sqrt 2)), or with approximate="tanh"
  // x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the formulas of the operator's definition.
  void gelu(const NodeProto& n, GraphProto& g, google::protobuf::RepeatedPtrField<NodeProto>& out) {
    check(n.input_size() == 1 && n.output_size() == 1, label(n), "needs one input and one output");
    const std::string approx = string_attr(n, "approximate", "none");
    check(approx == "none" || approx == "tanh", label(n),
          "approximate '" + approx + "' is not 'none' or 'tanh'");
    const std::string& x = n.input(0);
    const std::string one = scalar(g, n, "one", 1.f), half = scalar(g, n, "half", 0.5f);
    std::string inner;
    if (approx == "none") {
      inner = emit(out, n, "Erf",
                   {emit(out, n, "Div", {x, scalar(g, n, "sqrt2", static_cast<float>(M_SQRT2))})});
    } else {
      const std::string x3 = emit(out, n, "Mul", {emit(out, n, "Mul", {x, x}), x});
      const std::string poly =
          emit(out, n, "Add", {x, emit(out, n, "Mul", {x3, scalar(g, n, "c", 0.044715f)})});
      const float k = static_cast<float>(std::sqrt(2.0 / M_PI));
      inner = emit(out, n, "Tanh", {emit(out, n, "Mul", {poly, scalar(g, n, "k", k)})});
    }
    const std::string xs = emit(out, n, "Mul", {x, emit(out, n, "Add", {inner, one})});
    emit(out, n, "Mul", {xs, half}, n.output(0));
  }

  // Mish (opset 18): x tanh(softplus(x)).
  void mish(const NodeProto& n, google::protobuf::RepeatedPtrField<NodeProto>& out) {
    check(n.input_size() == 1 && n.output_size() == 1, label(n), "needs one input and one output");
    const std::string& x = n.input(0);
    emit(out, n, "Mul", {x, emit(out, n, "Tanh", {emit(out, n, "Softplus", {x})})}, n.output(0));
  }

  std::string where_;
  const Lowering* outer_;
  int64_t opset_;
  bool* uses_mixq_;
  std::map<std::string, const TensorProto*> constants_;
};

}  // namespace

void lower_to_opset17(onnx::ModelProto& model, const std::string& where) {
  int64_t opset = 0;
  bool has_mixq = false, uses_mixq = false;
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") opset = op.version();
    if (op.domain() == names::kDomain) has_mixq = true;
  }
  Lowering(where, nullptr, opset, &uses_mixq).graph(*model.mutable_graph());
  for (auto& op : *model.mutable_opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") op.set_version(17);
  if (uses_mixq && !has_mixq) {  // the checker wants every node's domain imported
    auto* op = model.add_opset_import();
    op->set_domain(names::kDomain);
    op->set_version(1);
  }
  if (model.ir_version() > 8) model.set_ir_version(8);
}

}  // namespace mixq
