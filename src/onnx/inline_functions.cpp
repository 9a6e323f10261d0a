#include "onnx/inline_functions.h"

#include <google/protobuf/unknown_field_set.h>
#include <onnx/onnx_pb.h>

#include <map>
#include <vector>

#include "base/error.h"

namespace mixq {
namespace {

using onnx::AttributeProto;
using onnx::FunctionProto;
using onnx::GraphProto;
using onnx::NodeProto;

constexpr int kMaxDepth = 64;  // nested calls deeper than this are taken for recursion
// FunctionProto.attribute_proto (IR 9: attributes with default values); Debian's libonnx 1.12
// predates it, so it arrives among the message's unknown fields.
constexpr int kAttributeProtoField = 11;

// The function's attribute defaults, read from the unknown fields.
std::vector<AttributeProto> attribute_defaults(const FunctionProto& f, const std::string& where) {
  std::vector<AttributeProto> out;
  const auto& unknown = f.GetReflection()->GetUnknownFields(f);
  for (int i = 0; i < unknown.field_count(); ++i) {
    const auto& field = unknown.field(i);
    if (field.number() != kAttributeProtoField) continue;
    check(field.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED, where,
          "function '" + f.name() + "': malformed attribute default");
    AttributeProto a;
    check(a.ParseFromString(field.length_delimited()), where,
          "function '" + f.name() + "': malformed attribute default");
    out.push_back(std::move(a));
  }
  return out;
}

std::string key(const std::string& domain, const std::string& name) {
  return (domain == "ai.onnx" ? "" : domain) + "::" + name;
}

class Inliner {
 public:
  Inliner(const onnx::ModelProto& model, std::string where) : where_(std::move(where)) {
    for (const FunctionProto& f : model.functions()) {
      functions_[key(f.domain(), f.name())] = &f;
      defaults_[&f] = attribute_defaults(f, where_);
    }
  }

  void graph(GraphProto& g, int depth) {
    google::protobuf::RepeatedPtrField<NodeProto> out;
    for (NodeProto& n : *g.mutable_node()) call(n, out, depth);
    g.mutable_node()->Swap(&out);
  }

 private:
  std::string label(const NodeProto& n) const {
    return where_ + ": node '" + n.name() + "' (" + n.op_type() + ")";
  }

  // Appends n, or the inlined body when n calls a local function; graphs held by attributes
  // (If/Loop/Scan bodies) are inlined too.
  void call(NodeProto& n, google::protobuf::RepeatedPtrField<NodeProto>& out, int depth) {
    for (AttributeProto& a : *n.mutable_attribute()) {
      if (a.has_g()) graph(*a.mutable_g(), depth);
      for (GraphProto& sub : *a.mutable_graphs()) graph(sub, depth);
    }
    auto it = functions_.find(key(n.domain(), n.op_type()));
    if (it == functions_.end()) {
      *out.Add() = n;
      return;
    }
    check(depth < kMaxDepth, label(n), "calls local functions recursively");
    const FunctionProto& f = *it->second;
    check(n.input_size() <= f.input_size() && n.output_size() <= f.output_size(), label(n),
          "has more inputs or outputs than function '" + f.name() + "' declares");
    // Formal names bound to the call's values; a missing optional input stays empty.
    std::map<std::string, std::string> names;
    for (int i = 0; i < f.input_size(); ++i)
      names[f.input(i)] = i < n.input_size() ? n.input(i) : "";
    for (int i = 0; i < f.output_size(); ++i)
      names[f.output(i)] = i < n.output_size() ? n.output(i) : "";
    const std::string prefix =
        (n.name().empty() ? n.op_type() : n.name()) + "/" + std::to_string(counter_++) + "/";
    auto rename = [&](const std::string& v) {
      if (v.empty()) return v;
      auto b = names.find(v);
      return b != names.end() ? b->second : prefix + v;
    };
    std::map<std::string, const AttributeProto*> given;
    for (const AttributeProto& a : defaults_.at(&f)) given[a.name()] = &a;
    for (const AttributeProto& a : n.attribute()) given[a.name()] = &a;
    google::protobuf::RepeatedPtrField<NodeProto> body;
    for (const NodeProto& fn : f.node()) {
      NodeProto c = fn;
      c.set_name(prefix + fn.name());
      for (std::string& v : *c.mutable_input()) v = rename(v);
      for (std::string& v : *c.mutable_output()) v = rename(v);
      auto* attrs = c.mutable_attribute();
      for (int i = attrs->size() - 1; i >= 0; --i) {
        AttributeProto& a = *attrs->Mutable(i);
        if (a.ref_attr_name().empty()) continue;
        auto g = given.find(a.ref_attr_name());
        if (g == given.end()) {  // an unset reference leaves the attribute out
          attrs->DeleteSubrange(i, 1);
          continue;
        }
        const std::string name = a.name();
        a = *g->second;
        a.set_name(name);
      }
      // Nested calls, and graphs in attributes, inline with this body's names.
      call(c, body, depth + 1);
    }
    for (NodeProto& c : body) *out.Add() = std::move(c);
  }

  std::string where_;
  std::map<std::string, const FunctionProto*> functions_;
  std::map<const FunctionProto*, std::vector<AttributeProto>> defaults_;
  int counter_ = 0;
};

}  // namespace

void inline_local_functions(onnx::ModelProto& model, const std::string& where) {
  if (model.functions_size() == 0) return;
  int64_t opset = -1;
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") opset = op.version();
  for (const FunctionProto& f : model.functions())
    for (const auto& op : f.opset_import())
      check(!(op.domain().empty() || op.domain() == "ai.onnx") || op.version() == opset, where,
            "function '" + f.name() + "' imports opset " + std::to_string(op.version()) +
                ", the model opset " + std::to_string(opset));
  Inliner(model, where).graph(*model.mutable_graph(), 0);
  model.clear_functions();
  // Domains that only functions' calls used may stay imported: the checker allows that.
}

}  // namespace mixq
