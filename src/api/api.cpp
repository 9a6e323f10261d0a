// The public API (include/mixq/mixq.h) over the library's modules: each value type holds the
// internal objects it stands for, shared, so the steps compose without copying models or data.
#include "mixq/mixq.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "api/impl.h"
#include "base/data_files.h"
#include "base/error.h"
#include "data/array_dataset.h"
#include "eval/evaluate.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "pack/packed.h"
#include "quant/apply.h"
#include "quant/calibrate.h"
#include "quant/scheme.h"
#include "runtime/executor.h"

namespace mixq::api {

std::string version() {
  return MIXQ_VERSION;
}

std::string default_model_path() {
  return find_data_file("models/fmnist_default.onnx");
}

// --- Model -----------------------------------------------------------------------------------

namespace {

Model wrap(Graph g) {
  auto impl = std::make_shared<Model::Impl>();
  impl->graph = std::move(g);
  Model m;
  m.impl = std::move(impl);
  return m;
}

std::vector<std::string> value_names(const Graph& g, const std::vector<int>& ids) {
  std::vector<std::string> names;
  for (int v : ids) names.push_back(g.values[v].name);
  return names;
}

}  // namespace

Model Model::load(const std::string& path) {
  return wrap(load_onnx(path));
}

Model Model::from_bytes(const std::string& bytes, const std::string& name) {
  return wrap(load_onnx_bytes(bytes, name));
}

std::string Model::source() const {
  return get(*this, "model").graph.source;
}

std::vector<std::string> Model::inputs() const {
  const Graph& g = get(*this, "model").graph;
  return value_names(g, g.inputs);
}

std::vector<std::string> Model::outputs() const {
  const Graph& g = get(*this, "model").graph;
  return value_names(g, g.outputs);
}

std::vector<LayerInfo> Model::layers() const {
  std::vector<LayerInfo> out;
  for (const QuantLayer& l : find_quant_layers(get(*this, "model").graph))
    out.push_back({l.name, l.op_type, l.rows, l.weight_count});
  return out;
}

// --- Data ------------------------------------------------------------------------------------

namespace {

Data wrap(std::shared_ptr<const Dataset> d) {
  auto impl = std::make_shared<Data::Impl>();
  impl->dataset = std::move(d);
  Data data;
  data.impl = std::move(impl);
  return data;
}

}  // namespace

Data Data::open(const std::string& spec) {
  return wrap(open_dataset(spec));
}

Data Data::from_arrays(std::vector<std::pair<std::string, Array>> inputs,
                       std::vector<int64_t> labels, const std::string& name) {
  check(!inputs.empty(), name, "no arrays");
  std::vector<std::string> names;
  std::vector<Tensor> arrays;
  bool named = false;
  for (auto& [key, a] : inputs) {
    int64_t count = 1;
    for (int64_t d : a.shape) {
      check(d >= 0, name, "array '" + key + "' has a negative dimension");
      count *= d;
    }
    check(count == static_cast<int64_t>(a.values.size()), name,
          "array '" + key + "' holds " + std::to_string(a.values.size()) +
              " values, its shape needs " + std::to_string(count));
    named = named || !key.empty();
    names.push_back(key);
    arrays.push_back(Tensor::from<float>(Shape(a.shape.begin(), a.shape.end()), a.values));
  }
  if (!named) names.clear();
  Tensor label_tensor;
  if (!labels.empty())
    label_tensor = Tensor::from<int64_t>({static_cast<int64_t>(labels.size())}, labels);
  return wrap(
      std::make_shared<ArrayDataset>(std::move(names), std::move(arrays), label_tensor, name));
}

size_t Data::size() const {
  return get(*this, "data").dataset->size();
}
bool Data::labelled() const {
  return get(*this, "data").dataset->labelled();
}
std::string Data::description() const {
  return get(*this, "data").dataset->description();
}

// --- Calibration -----------------------------------------------------------------------------

int Calibration::activation_bits() const {
  return get(*this, "calibration").abits;
}
size_t Calibration::samples() const {
  return get(*this, "calibration").stats.samples;
}

Calibration calibrate(const Model& model, const Data& data, const CalibrateOptions& options) {
  check(options.activation_bits == 0 ||
            (options.activation_bits >= 2 && options.activation_bits <= 16),
        "activation_bits", "must be 0 (float) or 2..16");
  auto impl = std::make_shared<Calibration::Impl>();
  impl->model = get(model, "model").shared_from_this();
  impl->abits = options.activation_bits;
  if (options.activation_bits > 0) {
    ObserveOptions o;
    o.samples = options.samples;
    o.seed = options.seed;
    impl->stats = observe_activations(impl->model->graph, *get(data, "data").dataset, o);
  }
  Calibration c;
  c.impl = std::move(impl);
  return c;
}

// --- Quantized model and evaluation ----------------------------------------------------------

double QuantizedModel::average_weight_bits() const {
  const Impl& q = get(*this, "quantized model");
  return mixq::average_weight_bits(q.model->graph, q.config, find_quant_layers(q.model->graph));
}

std::vector<QuantizedLayer> QuantizedModel::layers() const {
  const Impl& q = get(*this, "quantized model");
  std::vector<QuantizedLayer> out;
  for (const QuantLayer& l : find_quant_layers(q.model->graph)) {
    QuantizedLayer row{l.name, l.op_type, "float", 32, 0, l.weight_count};
    if (const LayerConfig* lc = q.config.find(l.name)) {
      if (!lc->rows.empty()) {
        row.weight_bits = mixq::average_weight_bits(q.model->graph, q.config, {l});
        std::vector<std::string> schemes;  // in order of first appearance
        for (const RowQuant& r : lc->rows)
          if (std::find(schemes.begin(), schemes.end(), scheme_name(r.scheme)) == schemes.end())
            schemes.push_back(scheme_name(r.scheme));
        row.schemes.clear();
        for (const std::string& s : schemes) row.schemes += (row.schemes.empty() ? "" : "+") + s;
      }
      if (lc->input) row.activation_bits = lc->input->bits;
    }
    out.push_back(std::move(row));
  }
  return out;
}

double QuantizedModel::weight_bytes() const {
  const Impl& q = get(*this, "quantized model");
  return mixq::weight_bytes(q.model->graph, q.config);
}

std::string QuantizedModel::config_json() const {
  return to_json(get(*this, "quantized model").config).dump(2);
}

void QuantizedModel::save_config(const std::string& path) const {
  save_quant_config(get(*this, "quantized model").config, path);
}

void QuantizedModel::export_qdq(const std::string& path) const {
  const Impl& q = get(*this, "quantized model");
  save_onnx(apply_quant(q.model->graph, q.config, q.model->graph.source, WeightForm::qdq), path);
}

void QuantizedModel::export_packed(const std::string& path) const {
  const Impl& q = get(*this, "quantized model");
  save_packed(pack_model(q.model->graph, q.config, q.model->graph.source), path);
}

namespace {

Accuracy measure(const Graph& g, const Data& data, size_t limit) {
  Executor ex(g, mixq::Impl::fast, true);
  EvalOptions o;
  o.limit = limit;
  const EvalResult r = mixq::evaluate(ex, *get(data, "data").dataset, o);
  return {r.samples, r.labelled, r.top1, r.top5, r.loss};
}

}  // namespace

Accuracy evaluate(const Model& model, const Data& data, size_t limit) {
  return measure(get(model, "model").graph, data, limit);
}

Accuracy evaluate(const QuantizedModel& model, const Data& data, size_t limit) {
  const QuantizedModel::Impl& q = get(model, "quantized model");
  return measure(apply_quant(q.model->graph, q.config), data, limit);
}

}  // namespace mixq::api
