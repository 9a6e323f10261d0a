#include "passes/layout.h"

#include "passes/fuse.h"

#include <algorithm>
#include <set>
#include <string>

#include "ir/internal_names.h"

namespace mixq {
namespace {

// NCHW axis a is NHWC axis kNhwcAxis[a].
constexpr int64_t kNhwcAxis[4] = {0, 3, 1, 2};
const std::vector<int64_t> kToNhwc{0, 2, 3, 1};
const std::vector<int64_t> kToNchw{0, 3, 1, 2};

bool onnx_op(const Node& n, const char* op) {
  return n.op_type == op && (n.domain.empty() || n.domain == "ai.onnx");
}

bool any_of_ops(const Node& n, std::initializer_list<const char*> ops) {
  for (const char* op : ops)
    if (onnx_op(n, op)) return true;
  return false;
}

// Elementwise ops with one data input whose other inputs and attributes do not depend on the
// layout (Clip's bounds are scalars; FakeQuant is per tensor).
bool layout_free_unary(const Node& n) {
  if (names::is_internal(n, names::kFakeQuant)) return true;
  return any_of_ops(n, {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
                        "Elu", "Selu", "Softplus", "Abs", "Neg"});
}

bool only_first_output(const Node& n) {
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0) return false;
  return !n.outputs.empty() && n.outputs[0] >= 0;
}

// Maps NCHW axes (possibly negative) to NHWC ones; false when one is out of range (the kernel
// will report it, so the node stays as it is).
bool remap_axes(std::vector<int64_t>& axes) {
  for (int64_t& a : axes) {
    if (a < -4 || a > 3) return false;
    a = kNhwcAxis[a < 0 ? a + 4 : a];
  }
  return true;
}

// [begin..., end...] per NCHW axis reordered per NHWC axis.
std::vector<int64_t> remap_pads(const std::vector<int64_t>& p) {
  std::vector<int64_t> q(8);
  for (int a = 0; a < 4; ++a) {
    q[kNhwcAxis[a]] = p[a];
    q[4 + kNhwcAxis[a]] = p[4 + a];
  }
  return q;
}

Tensor int_tensor(DType dtype, const std::vector<int64_t>& v) {
  const Shape s{static_cast<int64_t>(v.size())};
  if (dtype == DType::i32) return Tensor::from<int32_t>(s, {v.begin(), v.end()});
  return Tensor::from<int64_t>(s, v);
}

Shape to_layout(const Shape& nchw, bool nhwc) {
  if (!nhwc || nchw.size() != 4) return nchw;
  return {nchw[0], nchw[2], nchw[3], nchw[1]};
}

class LayoutPass {
 public:
  LayoutPass(Graph& g, const ShapeInfo& shapes) : g_(g), shapes_(shapes) {
    for (const Value& v : g.values) names_.insert(v.name);
    for (const Node& n : g.nodes) names_.insert(n.name);
    for (size_t v = 0; v < g.values.size(); ++v) track(static_cast<int>(v));
    for (int o : g.outputs) output_[o] = true;
  }

  LayoutResult run() {
    std::vector<Node> nodes = std::move(g_.nodes);
    g_.nodes.clear();
    for (Node& n : nodes) visit(std::move(n));
    g_.nodes = std::move(out_);
    g_.sort();
    result_.channels_last.assign(g_.values.size(), false);
    for (int id : nhwc_)
      if (id >= 0) result_.channels_last[id] = true;
    return result_;
  }

 private:
  // Starts tracking value v (held channels-first under its own id).
  void track(int v) {
    nchw_.push_back(v);
    nhwc_.push_back(-1);
    output_.push_back(false);
    logical_.push_back(g_.values[v].shape);
  }

  bool has_nhwc(int v) const { return v >= 0 && nhwc_[v] >= 0; }
  bool rank4(int v) const { return v >= 0 && shapes_.rank(v) == 4; }

  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; names_.count(name); ++k) name = base + "_" + std::to_string(k);
    names_.insert(name);
    return name;
  }

  // A new value holding logical value v in the given layout.
  int new_value(int v, const std::string& suffix, bool nhwc) {
    Value nv;
    nv.name = fresh(g_.values[v].name + suffix);
    nv.dtype = g_.values[v].dtype;
    nv.shape_known = g_.values[v].shape_known;
    nv.shape = to_layout(logical_[v], nhwc);
    g_.values.push_back(std::move(nv));
    const int id = static_cast<int>(g_.values.size()) - 1;
    track(id);
    return id;
  }

  void emit_transpose(int from, int to, bool to_nhwc) {
    Node t;
    t.name = fresh(g_.values[to].name);
    t.op_type = "Transpose";
    t.attrs["perm"] = to_nhwc ? kToNhwc : kToNchw;
    t.inputs = {from};
    t.outputs = {to};
    out_.push_back(std::move(t));
    ++result_.transposes;
  }

  // The id holding logical value v in the wanted layout, transposing (once) when needed.
  int get(int v, bool want_nhwc) {
    if (v < 0) return v;
    const int have = want_nhwc ? nhwc_[v] : nchw_[v];
    if (have >= 0) return have;
    const int from = want_nhwc ? nchw_[v] : nhwc_[v];
    const int t = new_value(v, want_nhwc ? "_nhwc" : "_nchw", want_nhwc);
    emit_transpose(from, t, want_nhwc);
    (want_nhwc ? nhwc_ : nchw_)[v] = t;
    return t;
  }

  // Node n, inputs already switched, writes NHWC data as its first output.
  void emit_nhwc(Node n) {
    const int y = n.outputs[0];
    ++result_.nodes;
    if (output_[y]) {
      // A graph output keeps its id, name and layout: the node writes a new value.
      const int w = new_value(y, "_nhwc", true);
      n.outputs[0] = w;
      nhwc_[y] = w;
      out_.push_back(std::move(n));
      emit_transpose(w, y, false);
      return;
    }
    g_.values[y].shape = to_layout(logical_[y], true);
    nhwc_[y] = y;
    nchw_[y] = -1;
    out_.push_back(std::move(n));
  }

  // The inputs of n other than those listed (already placed) read channels-first.
  void inputs_channels_first(Node& n, std::initializer_list<int> placed) {
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (std::find(placed.begin(), placed.end(), static_cast<int>(i)) == placed.end())
        n.inputs[i] = get(n.inputs[i], false);
  }

  // Every input read channels-first: the logical value's NCHW id, transposed back once and
  // shared by every later reader (the id a value had in the input graph may now hold NHWC data).
  void emit_plain(Node n) {
    for (int& v : n.inputs) v = get(v, false);
    out_.push_back(std::move(n));
  }

  void visit(Node n) {
    // Nodes placed by an earlier run, and ones whose extra outputs are used, stay as they are.
    if (n.has(names::kLayout) || !only_first_output(n)) return emit_plain(std::move(n));
    const int x = n.has_input(0) ? n.inputs[0] : -1;
    if (is_fusable_conv(n) && x >= 0 && g_.values[x].dtype == DType::f32 && rank4(x) &&
        n.has_input(1) && rank4(n.inputs[1])) {
      const int s = fused_sum_input(n);
      if (n.get_int(names::kSum, 0) != 0 && n.has_input(s)) {
        if (!rank4(n.inputs[s])) return emit_plain(std::move(n));
        n.inputs[s] = get(n.inputs[s], true);
      }
      n.inputs[0] = get(x, true);
      inputs_channels_first(n, {0, s});
      n.attrs[names::kLayout] = std::string("NHWC");
      return emit_nhwc(std::move(n));
    }
    if (any_of_ops(n, {"Add", "Sub", "Mul", "Div"}) && n.inputs.size() == 2 &&
        (has_nhwc(n.inputs[0]) || has_nhwc(n.inputs[1])) && rank4(n.inputs[0]) &&
        rank4(n.inputs[1])) {
      // Both operands rank 4 and permuted alike: broadcasting is unchanged.
      for (int& v : n.inputs) v = get(v, true);
      return emit_nhwc(std::move(n));
    }
    // The other ops follow an NHWC data input and never start a chain.
    if (!has_nhwc(x) || !rank4(x)) return emit_plain(std::move(n));
    const bool channels_last_kernel =
        any_of_ops(n, {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}) ||
        (onnx_op(n, "BatchNormalization") && n.get_int("training_mode", 0) == 0 &&
         (g_.opset >= 9 || n.get_int("spatial", 1) == 1));
    if (channels_last_kernel) n.attrs[names::kLayout] = std::string("NHWC");
    if (channels_last_kernel || layout_free_unary(n) || (onnx_op(n, "Slice") && remap_slice(n)) ||
        (onnx_op(n, "Pad") && remap_pad(n))) {
      n.inputs[0] = get(x, true);
      inputs_channels_first(n, {0});
      return emit_nhwc(std::move(n));
    }
    if (onnx_op(n, "Transpose") && nchw_[x] < 0) {
      // Read the NHWC data directly: compose the permutations.
      std::vector<int64_t> p = n.get_ints("perm", {3, 2, 1, 0});
      if (p.size() == 4 &&
          std::all_of(p.begin(), p.end(), [](int64_t a) { return a >= 0 && a < 4; })) {
        for (int64_t& a : p) a = kNhwcAxis[a];
        n.attrs["perm"] = p;
        n.inputs[0] = nhwc_[x];
        out_.push_back(std::move(n));
        return;
      }
    }
    emit_plain(std::move(n));
  }

  // Slice axes as NHWC axes; false when they cannot be known before running.
  bool remap_slice(Node& n) {
    if (n.has("starts")) {  // attribute form (opset < 10)
      std::vector<int64_t> axes = n.get_ints("axes");
      if (axes.empty())
        for (size_t i = 0; i < n.get_ints("starts").size(); ++i) axes.push_back(i);
      if (!remap_axes(axes)) return false;
      n.attrs["axes"] = axes;
      return true;
    }
    if (!n.has_input(1) || !n.has_input(2)) return false;
    std::vector<int64_t> axes;
    DType dt;
    if (n.has_input(3)) {
      if (!g_.is_constant(n.inputs[3])) return false;
      axes = g_.constant(n.inputs[3]).to_ints();
      dt = g_.constant(n.inputs[3]).dtype();
    } else {
      if (!g_.is_constant(n.inputs[1])) return false;
      const Tensor& starts = g_.constant(n.inputs[1]);
      for (int64_t i = 0; i < starts.numel(); ++i) axes.push_back(i);
      dt = starts.dtype();
    }
    if (!remap_axes(axes)) return false;
    if (n.inputs.size() < 4) n.inputs.resize(4, -1);
    n.inputs[3] = add_constant(n.name + "_axes_nhwc", int_tensor(dt, axes));
    return true;
  }

  bool remap_pad(Node& n) {
    if (n.has("paddings")) return false;  // opset 1 spelling
    if (n.has("pads")) {                  // attribute form (opset < 11)
      auto p = n.get_ints("pads");
      if (p.size() != 8) return false;
      n.attrs["pads"] = remap_pads(p);
      return true;
    }
    if (!n.has_input(1) || !g_.is_constant(n.inputs[1]) || n.has_input(3)) return false;
    const Tensor& pads = g_.constant(n.inputs[1]);
    if (pads.numel() != 8) return false;
    n.inputs[1] =
        add_constant(n.name + "_pads_nhwc", int_tensor(pads.dtype(), remap_pads(pads.to_ints())));
    return true;
  }

  int add_constant(const std::string& name, Tensor t) {
    const int id = g_.add_constant(fresh(name), std::move(t));
    track(id);
    return id;
  }

  Graph& g_;
  const ShapeInfo& shapes_;
  std::set<std::string> names_;
  // Per logical value (indexed by its original id): the id holding it channels-first and
  // channels-last, -1 where not (yet) computed; its NCHW static shape; graph output or not.
  std::vector<int> nchw_, nhwc_;
  std::vector<bool> output_;
  std::vector<Shape> logical_;
  std::vector<Node> out_;
  LayoutResult result_;
};

}  // namespace

LayoutResult to_channels_last(Graph& g, const ShapeInfo& shapes) {
  return LayoutPass(g, shapes).run();
}

}  // namespace mixq
