#include "onnx/import.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "base/error.h"
#include "base/file_io.h"
#include "base/memory.h"
#include "base/parse.h"
#include "ir/internal_names.h"
#include "onnx/inline_functions.h"
#include "onnx/lower_opset.h"
#include "passes/passes.h"
#include "runtime/finite.h"

namespace mixq {
namespace {

DType dtype_from_onnx(int t, const std::string& where) {
  for (const DTypeTraits& d : kDTypeTraits)
    if (d.onnx == t) return d.dtype;
  using TP = onnx::TensorProto;
  throw Error(where, "unsupported tensor element type " +
                         (TP::DataType_IsValid(t) ? TP::DataType_Name(static_cast<TP::DataType>(t))
                                                  : std::to_string(t)));
}

template <class T, class Src>
void copy_typed(Tensor& t, const Src& field, const std::string& where) {
  check(static_cast<int64_t>(field.size()) == t.numel(), where,
        "holds " + std::to_string(field.size()) + " values, shape needs " +
            std::to_string(t.numel()));
  T* p = static_cast<T*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(field.Get(static_cast<int>(i)));
}

Shape shape_from_type(const onnx::TypeProto& type, bool* known) {
  Shape s;
  *known = false;
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return s;
  *known = true;
  for (const auto& d : type.tensor_type().shape().dim())
    s.push_back(d.has_dim_value() ? d.dim_value() : -1);
  return s;
}

Attribute attribute_from_proto(const onnx::AttributeProto& a, const std::string& where) {
  using AP = onnx::AttributeProto;
  switch (a.type()) {
    case AP::INT:
      return a.i();
    case AP::FLOAT:
      return a.f();
    case AP::STRING:
      return a.s();
    case AP::INTS:
      return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case AP::FLOATS:
      return std::vector<float>(a.floats().begin(), a.floats().end());
    case AP::STRINGS:
      return std::vector<std::string>(a.strings().begin(), a.strings().end());
    case AP::TENSOR:
      return tensor_from_proto(a.t(), where + " attribute '" + a.name() + "'");
    default:
      throw Error(where, "attribute '" + a.name() + "' has unsupported type " +
                             AP::AttributeType_Name(a.type()));
  }
}

// libonnx 1.12's shape inference for convolutions and pooling takes the kernel's spatial rank
// from kernel_shape or the weight and indexes the input's dimensions with it, without checking
// that the input has as many (a Conv whose weight and input ranks differ made it read through a
// null pointer), and divides by strides it did not check. This registry hands out those schemas
// with checks in front.
class GuardedSchemas : public onnx::ISchemaRegistry {
 public:
  const onnx::OpSchema* GetSchema(const std::string& op, const int version,
                                  const std::string& domain) const override {
    const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema(op, version, domain);
    const int weight = weight_input(op, domain);
    if (!s || weight == kNotGuarded) return s;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = guarded_.find(s);
    if (it == guarded_.end()) {
      auto copy = std::make_unique<onnx::OpSchema>(*s);
      copy->TypeAndShapeInferenceFunction(
          [infer = s->GetTypeAndShapeInferenceFunction(), op, weight](onnx::InferenceContext& ctx) {
            check_conv(ctx, op, weight);
            if (infer) infer(ctx);
          });
      it = guarded_.emplace(s, std::move(copy)).first;
    }
    return it->second.get();
  }

 private:
  static constexpr int kNotGuarded = -2, kNoWeight = -1;

  // Index of the weight input of the ops that need the check (kNoWeight: pooling).
  static int weight_input(const std::string& op, const std::string& domain) {
    if (!domain.empty() && domain != "ai.onnx") return kNotGuarded;
    if (op == "Conv" || op == "ConvTranspose" || op == "ConvInteger") return 1;
    if (op == "QLinearConv") return 3;
    if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") return kNoWeight;
    return kNotGuarded;
  }

  static int rank(const onnx::InferenceContext& ctx, int i) {
    if (i < 0 || static_cast<size_t>(i) >= ctx.getNumInputs()) return -1;
    const onnx::TypeProto* t = ctx.getInputType(static_cast<size_t>(i));
    if (!t || !t->has_tensor_type() || !t->tensor_type().has_shape()) return -1;
    return t->tensor_type().shape().dim_size();
  }

  // Thrown as a plain exception: libonnx would skip a node whose inference fails with its own
  // InferenceError, and the model is invalid (ONNX wants the same rank for input and kernel,
  // and positive sizes, strides and dilations).
  static void check_conv(onnx::InferenceContext& ctx, const std::string& op, int weight) {
    const int x = rank(ctx, 0);
    const onnx::AttributeProto* ks = ctx.getAttribute("kernel_shape");
    const int k = ks ? ks->ints_size() + 2 : rank(ctx, weight);
    if (x >= 0 && k >= 0 && k != x)
      throw std::invalid_argument(op + ": the kernel has " + std::to_string(k - 2) +
                                  " spatial dimensions, the input " + std::to_string(x - 2));
    // A zero stride divided by zero in libonnx's output size.
    for (const char* name : {"kernel_shape", "strides", "dilations"})
      if (const onnx::AttributeProto* a = ctx.getAttribute(name))
        for (int64_t v : a->ints())
          if (v < 1) throw std::invalid_argument(op + ": " + name + " must be positive");
  }

  mutable std::mutex mutex_;
  mutable std::map<const onnx::OpSchema*, std::unique_ptr<onnx::OpSchema>> guarded_;
};

int64_t default_opset(const onnx::ModelProto& model) {
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") return op.version();
  return -1;
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where) {
  using TP = onnx::TensorProto;
  check(proto.data_location() != TP::EXTERNAL, where,
        "external data is read only with the model's file (load_onnx)");
  DType dt = dtype_from_onnx(proto.data_type(), where);
  Shape shape(proto.dims().begin(), proto.dims().end());
  for (int64_t d : shape) check(d >= 0, where, "negative dimension " + shape_str(shape));
  // Declared sizes are checked against the memory limit and the stored data before anything
  // is allocated.
  double elems = 1;
  for (int64_t d : shape) elems *= static_cast<double>(d);
  const double bytes = elems * static_cast<double>(dtype_size(dt));
  check_memory(bytes, where, "declared shape " + shape_str(shape));
  if (proto.has_raw_data())
    check(static_cast<double>(proto.raw_data().size()) == bytes, where,
          "raw data has " + std::to_string(proto.raw_data().size()) + " bytes, shape " +
              shape_str(shape) + " needs " + format_bytes(bytes));
  Tensor t;
  try {
    t = Tensor(dt, shape);
  } catch (const Error& e) {
    if (e.where() != "tensor") throw;
    throw Error(where, e.cause());
  }
  if (proto.has_raw_data()) {
    if (t.nbytes()) std::memcpy(t.raw(), proto.raw_data().data(), t.nbytes());
    return t;
  }
  // Typed fields: float_data, double_data, int64_data, and int32_data for the narrower types.
  visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float>)
      copy_typed<T>(t, proto.float_data(), where);
    else if constexpr (std::is_same_v<T, double>)
      copy_typed<T>(t, proto.double_data(), where);
    else if constexpr (std::is_same_v<T, int64_t>)
      copy_typed<T>(t, proto.int64_data(), where);
    else
      copy_typed<T>(t, proto.int32_data(), where);
  });
  return t;
}

Tensor load_tensor_pb(const std::string& path) {
  std::string bytes = read_file(path);
  onnx::TensorProto proto;
  check(proto.ParseFromString(bytes), path, "not a valid ONNX TensorProto");
  return tensor_from_proto(proto, path);
}

namespace {

void parse_model(const std::string& bytes, const std::string& where, onnx::ModelProto& model) {
  check(!bytes.empty(), where, "file is empty");
  check(model.ParseFromString(bytes), where, "not a valid ONNX model (protobuf parse failed)");
  check(model.has_graph(), where, "not a valid ONNX model (no graph)");
}

uint64_t external_number(const std::string& text, const std::string& where,
                         const std::string& key) {
  const std::optional<double> v = parse_number(text);
  check(v && *v >= 0 && *v == std::floor(*v) && *v < 9e18, where,
        "external data " + key + " '" + text + "' is not a byte count");
  return static_cast<uint64_t>(*v);
}

// Initializers stored outside the model (data_location EXTERNAL, as exporters write models
// over 2 GB): read from the file "location" names, relative to the model's folder, from
// "offset" for "length" bytes, and kept inline from then on.
void load_external_data(onnx::ModelProto& model, const std::string& path) {
  namespace fs = std::filesystem;
  using TP = onnx::TensorProto;
  const fs::path dir = fs::path(path).has_parent_path() ? fs::path(path).parent_path() : ".";
  for (TP& t : *model.mutable_graph()->mutable_initializer()) {
    if (t.data_location() != TP::EXTERNAL) continue;
    const std::string where = path + ": initializer '" + t.name() + "'";
    std::string location;
    uint64_t offset = 0;
    std::optional<uint64_t> length;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "location") location = kv.value();
      if (kv.key() == "offset") offset = external_number(kv.value(), where, "offset");
      if (kv.key() == "length") length = external_number(kv.value(), where, "length");
    }
    check(!location.empty(), where, "external data without a location");
    check(fs::path(location).is_relative(), where,
          "external data location '" + location + "' must be relative to the model's folder");
    const std::string file = (dir / location).string();
    std::error_code ec;
    check(fs::is_regular_file(file, ec), where, "external data file " + file + " does not exist");
    const uint64_t size = fs::file_size(file, ec);
    check(!ec && offset <= size, where,
          "external data file " + file + " has " + std::to_string(size) + " bytes, offset is " +
              std::to_string(offset));
    const uint64_t n = length.value_or(size - offset);
    check(n <= size - offset, where,
          "external data file " + file + " has " + std::to_string(size) + " bytes, needs " +
              std::to_string(n) + " at offset " + std::to_string(offset));
    check_memory(static_cast<double>(n), where, "external data");
    std::ifstream f(file, std::ios::binary);
    std::string bytes(n, '\0');
    f.seekg(static_cast<std::streamoff>(offset));
    f.read(bytes.data(), static_cast<std::streamsize>(n));
    check(f.good() || (f.eof() && static_cast<uint64_t>(f.gcount()) == n), where,
          "cannot read external data file " + file);
    t.set_raw_data(std::move(bytes));
    t.clear_external_data();
    t.set_data_location(TP::DEFAULT);
  }
}

}  // namespace

Graph load_onnx(const std::string& path, const ImportOptions& options) {
  onnx::ModelProto model;
  {
    // Parsing holds the file's bytes and the parsed model, about twice the file's size.
    const std::string bytes = read_file(path, 2.0);
    parse_model(bytes, path, model);
  }
  load_external_data(model, path);
  return graph_from_model(model, path, options);
}

Graph load_onnx_bytes(const std::string& bytes, const std::string& where,
                      const ImportOptions& options) {
  onnx::ModelProto model;
  parse_model(bytes, where, model);
  return graph_from_model(model, where, options);
}

namespace {

// Ops whose constant inputs are a layer's parameters.
bool has_parameters(const Node& n) {
  static const std::set<std::string> kOps = {"Conv",
                                             "ConvTranspose",
                                             "Gemm",
                                             "MatMul",
                                             "BatchNormalization",
                                             "LayerNormalization",
                                             "InstanceNormalization",
                                             "GroupNormalization",
                                             "PRelu"};
  return (n.domain.empty() && kOps.count(n.op_type) != 0) ||
         names::is_internal(n, names::kGroupNorm);
}

// A NaN in any float constant, or an infinity among a layer's parameters, is refused at load:
// either makes every output it reaches meaningless. (An infinity elsewhere, such as an additive
// attention mask of -Inf, is a legitimate constant.)
void check_finite_weights(const Graph& g, const std::string& where) {
  std::vector<std::string> reader(g.values.size());
  for (const Node& n : g.nodes)
    for (int v : n.inputs)
      if (v >= 0 && reader[v].empty() && has_parameters(n)) reader[v] = n.label();
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (!g.values[v].constant) continue;
    const std::string kind = non_finite_kind(*g.values[v].constant);
    if (kind.empty() || (kind != "NaN" && reader[v].empty())) continue;
    throw Error(where + ": initializer '" + g.values[v].name + "'",
                "holds " + kind + (reader[v].empty() ? "" : " (a parameter of " + reader[v] + ")"));
  }
}

// libonnx's messages span lines; an Error is one line, cut to a readable length.
std::string one_line(const std::exception& e) {
  std::string msg = e.what();
  for (char& c : msg)
    if (c == '\n') c = ' ';
  return msg.substr(0, 300);
}

}  // namespace

void check_onnx_model(const onnx::ModelProto& model, const std::string& where,
                      const std::string& what) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(where, what + ": " + one_line(e));
  }
}

Graph graph_from_model(onnx::ModelProto& model, const std::string& where,
                       const ImportOptions& options) {
  int64_t opset = default_opset(model);
  check(opset > 0, where, "model imports no default-domain opset");
  check(opset <= kMaxLoweredOpset, where,
        "opset " + std::to_string(opset) + " is newer than supported (" +
            std::to_string(kMaxLoweredOpset) + ")");
  inline_local_functions(model, where);
  if (opset > kMaxOpset) {  // libonnx knows opset 17 at most: the exact opset-17 form
    lower_to_opset17(model, where);
    opset = kMaxOpset;
  }
  if (model.ir_version() < 4) {
    // Before IR 4 every initializer had to be a graph input too; older exporters did not always
    // comply. List the missing ones so the checker accepts what every runtime accepts.
    auto* graph = model.mutable_graph();
    std::set<std::string> inputs;
    for (const auto& in : graph->input()) inputs.insert(in.name());
    for (const auto& init : graph->initializer()) {
      if (inputs.count(init.name())) continue;
      auto* vi = graph->add_input();
      vi->set_name(init.name());
      auto* tt = vi->mutable_type()->mutable_tensor_type();
      tt->set_elem_type(init.data_type());
      for (int64_t d : init.dims()) tt->mutable_shape()->add_dim()->set_dim_value(d);
    }
  }
  {
    // Every value used must be defined: libonnx's checker does not look at graph outputs, and
    // its version converter writes through a null pointer on one that nothing defines.
    const auto& gp = model.graph();
    std::set<std::string> defined;
    for (const auto& in : gp.input()) defined.insert(in.name());
    for (const auto& init : gp.initializer()) defined.insert(init.name());
    for (const auto& n : gp.node()) defined.insert(n.output().begin(), n.output().end());
    for (const auto& n : gp.node())
      for (const auto& in : n.input())
        check(in.empty() || defined.count(in), where,
              "node '" + n.name() + "' reads value '" + in + "' that nothing defines");
    for (const auto& out : gp.output())
      check(defined.count(out.name()), where,
            "graph output '" + out.name() + "' is a value that nothing defines");
  }
  auto run_checker = [&] { check_onnx_model(model, where, "ONNX checker"); };
  run_checker();
  if (opset < kMinOpset) {
    // Only a model the checks above accepted: libonnx's converter trusts its input.
    try {
      model = onnx::version_conversion::ConvertVersion(model, 13);
      opset = 13;
    } catch (const std::exception& e) {
      throw Error(where, "opset " + std::to_string(opset) + " could not be converted to 13: " +
                             std::string(e.what()).substr(0, 200));
    }
    run_checker();
  }
  try {
    static const GuardedSchemas schemas;
    onnx::shape_inference::InferShapes(model, &schemas);
  } catch (const std::exception& e) {
    throw Error(where, "ONNX shape inference: " + one_line(e));
  }

  const onnx::GraphProto& gp = model.graph();
  Graph g;
  g.source = where;
  g.opset = opset;
  // Fast name lookup while building.
  std::unordered_map<std::string, int> ids;
  auto id = [&](const std::string& name) -> int {
    if (name.empty()) return -1;
    auto it = ids.find(name);
    if (it != ids.end()) return it->second;
    int v = g.add_value(name);
    ids[name] = v;
    return v;
  };
  for (const auto& init : gp.initializer()) {
    int v = id(init.name());
    Tensor t = tensor_from_proto(init, where + ": initializer '" + init.name() + "'");
    g.values[v].dtype = t.dtype();
    g.values[v].shape = t.shape();
    g.values[v].shape_known = true;
    g.values[v].constant = std::move(t);
  }
  auto set_type = [&](const onnx::ValueInfoProto& vi) {
    // The checker lets a nameless value_info through; it would have no value to describe.
    if (vi.name().empty()) throw Error(where, "a graph input, output or value_info has no name");
    int v = id(vi.name());
    if (g.values[v].constant) return v;
    if (vi.type().has_tensor_type())
      g.values[v].dtype = dtype_from_onnx(vi.type().tensor_type().elem_type(),
                                          where + ": value '" + vi.name() + "'");
    g.values[v].shape = shape_from_type(vi.type(), &g.values[v].shape_known);
    return v;
  };
  for (const auto& in : gp.input()) {
    int v = set_type(in);
    if (!g.values[v].constant) g.inputs.push_back(v);
  }
  for (const auto& vi : gp.value_info()) set_type(vi);
  for (const auto& out : gp.output()) g.outputs.push_back(set_type(out));

  for (const auto& np : gp.node()) {
    Node n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = np.domain();
    const std::string label = n.label();
    for (const auto& a : np.attribute()) n.attrs[a.name()] = attribute_from_proto(a, label);
    for (const auto& i : np.input()) n.inputs.push_back(id(i));
    for (const auto& o : np.output()) n.outputs.push_back(id(o));
    if (n.op_type == "Constant" && n.domain.empty() && n.outputs.size() == 1) {
      // Constants become values right away; the few non-tensor forms are kept as tensors too.
      Tensor t;
      if (const Tensor* vt = n.get_tensor("value")) {
        t = *vt;
      } else if (n.has("value_float")) {
        t = Tensor::from<float>({}, {n.get_float("value_float", 0)});
      } else if (n.has("value_floats")) {
        auto f = n.get_floats("value_floats");
        t = Tensor::from<float>({static_cast<int64_t>(f.size())}, f);
      } else if (n.has("value_int")) {
        t = Tensor::from<int64_t>({}, {n.get_int("value_int", 0)});
      } else if (n.has("value_ints")) {
        auto v = n.get_ints("value_ints");
        t = Tensor::from<int64_t>({static_cast<int64_t>(v.size())}, v);
      } else {
        throw Error(label, "unsupported Constant form");
      }
      int v = n.outputs[0];
      g.values[v].dtype = t.dtype();
      g.values[v].shape = t.shape();
      g.values[v].shape_known = true;
      g.values[v].constant = std::move(t);
      continue;
    }
    g.nodes.push_back(std::move(n));
  }
  check(!g.outputs.empty(), where, "model has no outputs");
  g.sort();
  check_finite_weights(g, where);
  if (options.run_passes) run_default_passes(g);
  g.name_unnamed_nodes();
  return g;
}

}  // namespace mixq
