#include "ir/graph.h"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "base/error.h"
#include "base/hash.h"

namespace mixq {

int64_t Node::get_int(const std::string& key, int64_t fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto p = std::get_if<int64_t>(&it->second)) return *p;
  throw Error(label(), "attribute '" + key + "' is not an integer");
}

float Node::get_float(const std::string& key, float fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto p = std::get_if<float>(&it->second)) return *p;
  if (auto p = std::get_if<int64_t>(&it->second)) return static_cast<float>(*p);
  throw Error(label(), "attribute '" + key + "' is not a float");
}

std::string Node::get_string(const std::string& key, const std::string& fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto p = std::get_if<std::string>(&it->second)) return *p;
  throw Error(label(), "attribute '" + key + "' is not a string");
}

std::vector<int64_t> Node::get_ints(const std::string& key, std::vector<int64_t> fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto p = std::get_if<std::vector<int64_t>>(&it->second)) return *p;
  if (auto p = std::get_if<int64_t>(&it->second)) return {*p};
  throw Error(label(), "attribute '" + key + "' is not a list of integers");
}

std::vector<float> Node::get_floats(const std::string& key, std::vector<float> fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto p = std::get_if<std::vector<float>>(&it->second)) return *p;
  if (auto p = std::get_if<float>(&it->second)) return {*p};
  throw Error(label(), "attribute '" + key + "' is not a list of floats");
}

const Tensor* Node::get_tensor(const std::string& key) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return nullptr;
  if (auto p = std::get_if<Tensor>(&it->second)) return p;
  throw Error(label(), "attribute '" + key + "' is not a tensor");
}

std::string Node::label() const {
  return op_type + " node '" + (name.empty() ? std::string("?") : name) + "'";
}

int Graph::add_value(const std::string& name, DType dtype) {
  Value v;
  v.name = name;
  v.dtype = dtype;
  values.push_back(std::move(v));
  return static_cast<int>(values.size()) - 1;
}

int Graph::add_constant(const std::string& name, Tensor t) {
  int id = add_value(name, t.dtype());
  values[id].shape = t.shape();
  values[id].shape_known = true;
  values[id].constant = std::move(t);
  return id;
}

int Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int>(i);
  return -1;
}

void Graph::sort() {
  const size_t n = nodes.size();
  std::vector<int> producer(values.size(), -1);
  for (size_t i = 0; i < n; ++i)
    for (int o : nodes[i].outputs)
      if (o >= 0) {
        check(producer[o] < 0, source, "value '" + values[o].name + "' is produced twice");
        producer[o] = static_cast<int>(i);
      }
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (size_t i = 0; i < n; ++i)
    for (int v : nodes[i].inputs) {
      if (v < 0) continue;
      if (producer[v] >= 0) {
        ++pending[i];
        users[producer[v]].push_back(static_cast<int>(i));
      } else {
        bool is_input = std::find(inputs.begin(), inputs.end(), v) != inputs.end();
        check(is_input || values[v].constant.has_value(), nodes[i].label(),
              "input '" + values[v].name + "' is never defined");
      }
    }
  // Kahn's algorithm, taking ready nodes in original order so the result is stable.
  std::vector<int> order;
  std::vector<int> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push_back(static_cast<int>(i));
  while (!ready.empty()) {
    std::sort(ready.begin(), ready.end(), std::greater<int>());
    int i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (int u : users[i])
      if (--pending[u] == 0) ready.push_back(u);
  }
  check(order.size() == n, source, "graph has a cycle");
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(nodes[i]));
  nodes = std::move(sorted);
  for (auto& v : values) v.producer = -1;
  for (size_t i = 0; i < n; ++i)
    for (int o : nodes[i].outputs)
      if (o >= 0) values[o].producer = static_cast<int>(i);
}

void Graph::remove_dead() {
  std::vector<bool> live_value(values.size(), false);
  for (int o : outputs) live_value[o] = true;
  std::vector<bool> live_node(nodes.size(), false);
  for (int i = static_cast<int>(nodes.size()) - 1; i >= 0; --i) {
    bool live = false;
    for (int o : nodes[i].outputs) live = live || (o >= 0 && live_value[o]);
    if (!live) continue;
    live_node[i] = true;
    for (int v : nodes[i].inputs)
      if (v >= 0) live_value[v] = true;
  }
  for (int v : inputs) live_value[v] = true;
  // Renumber values.
  std::vector<int> remap(values.size(), -1);
  std::vector<Value> kept;
  for (size_t v = 0; v < values.size(); ++v)
    if (live_value[v]) {
      remap[v] = static_cast<int>(kept.size());
      kept.push_back(std::move(values[v]));
    }
  std::vector<Node> kept_nodes;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (live_node[i]) kept_nodes.push_back(std::move(nodes[i]));
  auto map = [&](int v) { return v < 0 ? -1 : remap[v]; };
  for (auto& node : kept_nodes) {
    for (int& v : node.inputs) v = map(v);
    for (int& v : node.outputs) v = map(v);
  }
  for (int& v : inputs) v = map(v);
  for (int& v : outputs) v = map(v);
  values = std::move(kept);
  nodes = std::move(kept_nodes);
  sort();
}

std::vector<std::vector<int>> Graph::consumers() const {
  std::vector<std::vector<int>> c(values.size());
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int v : nodes[i].inputs)
      if (v >= 0) c[v].push_back(static_cast<int>(i));
  return c;
}

namespace {

void hash_tensor(Hasher& h, const Tensor& t) {
  h.add(static_cast<uint64_t>(t.dtype())).add(static_cast<uint64_t>(t.rank()));
  for (int64_t d : t.shape()) h.add(static_cast<uint64_t>(d));
  if (t.defined()) h.add(t.raw(), t.nbytes());
}

struct AttributeHasher {
  Hasher& h;
  void operator()(int64_t v) { h.add(1).add(static_cast<uint64_t>(v)); }
  void operator()(float v) { h.add(2).add(&v, sizeof v); }
  void operator()(const std::string& v) { h.add(3).add(v); }
  void operator()(const std::vector<int64_t>& v) {
    h.add(4).add(v.size()).add(v.data(), v.size() * sizeof(int64_t));
  }
  void operator()(const std::vector<float>& v) {
    h.add(5).add(v.size()).add(v.data(), v.size() * sizeof(float));
  }
  void operator()(const std::vector<std::string>& v) {
    h.add(6).add(v.size());
    for (const auto& s : v) h.add(s);
  }
  void operator()(const Tensor& v) {
    h.add(7);
    hash_tensor(h, v);
  }
};

}  // namespace

std::string Graph::content_hash() const {
  Hasher h;
  h.add(static_cast<uint64_t>(opset));
  auto value = [&](int v) {
    if (v < 0) {
      h.add(uint64_t{0});
      return;
    }
    h.add(values[v].name).add(static_cast<uint64_t>(values[v].dtype));
    if (values[v].constant) hash_tensor(h, *values[v].constant);
  };
  h.add(inputs.size());
  for (int v : inputs) value(v);
  h.add(outputs.size());
  for (int v : outputs) value(v);
  h.add(nodes.size());
  for (const Node& n : nodes) {
    h.add(n.name).add(n.op_type).add(n.domain).add(n.inputs.size());
    for (int v : n.inputs) value(v);
    h.add(n.outputs.size());
    for (int v : n.outputs) value(v);
    h.add(n.attrs.size());
    for (const auto& [key, a] : n.attrs) {
      h.add(key);
      std::visit(AttributeHasher{h}, a);
    }
  }
  return h.hex();
}

void Graph::name_unnamed_nodes() {
  std::set<std::string> used;
  for (const Node& n : nodes) used.insert(n.name);
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node& n = nodes[i];
    if (!n.name.empty()) continue;
    std::string name = n.op_type + "_" + std::to_string(i);
    while (used.count(name)) name += "_";
    n.name = name;
    used.insert(name);
  }
}

}  // namespace mixq
