#include <algorithm>

#include "base/error.h"
#include "ops/kernel.h"

namespace mixq {

void Kernel::backward(const std::vector<const Tensor*>&, const std::vector<const Tensor*>&,
                      const std::vector<const Tensor*>&, const std::vector<Tensor*>&) {
  throw Error(label, "has no backward (training through this operator is not supported)");
}

std::string op_key(const Node& node) {
  if (node.domain.empty() || node.domain == "ai.onnx") return node.op_type;
  return node.domain + "." + node.op_type;
}

const Registry& Registry::get() {
  static const Registry registry = [] {
    Registry r;
    register_elementwise_ops(r);
    register_unary_ops(r);
    register_activation_ops(r);
    register_shape_ops(r);
    register_reduce_ops(r);
    register_conv_ops(r);
    register_gemm_ops(r);
    register_pool_ops(r);
    register_norm_ops(r);
    register_quant_ops(r);
    register_qconv_ops(r);
    register_resize_ops(r);
    register_group_norm_ops(r);
    register_index_ops(r);
    register_math_ops(r);
    register_einsum_ops(r);
    return r;
  }();
  return registry;
}

void Registry::add(const std::string& op_type, const std::string& impl_name, KernelMaker make,
                   bool reference) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const auto& e) { return e.first == op_type; });
  if (it == entries_.end()) {
    entries_.push_back({op_type, Entry{}});
    it = entries_.end() - 1;
  }
  (reference ? it->second.reference : it->second.fast).push_back({impl_name, make});
}

const Registry::Entry* Registry::find(const std::string& op_type) const {
  for (const auto& e : entries_)
    if (e.first == op_type) return &e.second;
  return nullptr;
}

bool Registry::supports(const std::string& op_type) const {
  return find(op_type) != nullptr;
}

std::vector<std::string> Registry::op_types() const {
  std::vector<std::string> names;
  for (const auto& e : entries_) names.push_back(e.first);
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<Kernel> Registry::make(const Node& node, const Graph& graph, Impl impl,
                                       std::string* chosen) const {
  const Entry* e = find(op_key(node));
  if (!e) throw Error(node.label(), "unsupported operator " + op_key(node));
  std::vector<const OpImpl*> order;
  if (impl == Impl::fast)
    for (const auto& i : e->fast) order.push_back(&i);
  for (const auto& i : e->reference) order.push_back(&i);
  for (const OpImpl* i : order) {
    if (auto k = i->make(node, graph)) {
      if (chosen) *chosen = i->name;
      k->label = node.label();
      return k;
    }
  }
  throw Error(node.label(), "no implementation accepts this node (input types or attributes)");
}

}  // namespace mixq
