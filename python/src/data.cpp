// mixq.Data from Python: a data spec, one numpy array (a one-input model), a dict {input name:
// array}, or any iterable of those (batches, concatenated along the first axis), each batch
// optionally an (inputs, labels) pair. Anything numpy can read as numbers is accepted and
// converted to float32, row-major; labels must be integers.
#include <algorithm>
#include <optional>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.h"

namespace mixq::python {

using namespace pybind11::literals;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// One batch's arrays, by input name ("" for an unnamed single input), and its labels if any.
struct Batch {
  std::vector<std::pair<std::string, FloatArray>> inputs;
  std::optional<std::vector<int64_t>> labels;
};

FloatArray to_float(py::handle value, const std::string& where, const std::string& what) {
  try {
    py::object np = py::module_::import("numpy");
    // asarray, not ascontiguousarray: that one makes a scalar a [1] array.
    return np.attr("asarray")(value, "dtype"_a = np.attr("float32"), "order"_a = "C")
        .cast<FloatArray>();
  } catch (py::error_already_set& e) {
    throw Error(where, what + " is not a numeric array (" + std::string(e.what()) + ")");
  }
}

std::vector<int64_t> to_labels(py::handle value, const std::string& where) {
  py::array a;
  try {
    a = py::module_::import("numpy").attr("asarray")(value);
  } catch (py::error_already_set& e) {
    throw Error(where, std::string("labels are not an array (") + e.what() + ")");
  }
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw Error(where, "labels must be integer class indices, not " +
                           py::str(a.dtype()).cast<std::string>());
  if (a.ndim() != 1)
    throw Error(where,
                "labels must be one-dimensional [N], not of rank " + std::to_string(a.ndim()));
  const py::array_t<int64_t, py::array::c_style | py::array::forcecast> values(a);
  return {values.data(), values.data() + values.size()};
}

bool is_pair(py::handle item) {
  return (py::isinstance<py::tuple>(item) || py::isinstance<py::list>(item)) && py::len(item) == 2;
}

Batch to_batch(py::handle item, const std::string& where, bool allow_pair) {
  Batch b;
  if (allow_pair && is_pair(item)) {
    b = to_batch(item[py::int_(0)], where, false);
    b.labels = to_labels(item[py::int_(1)], where);
    return b;
  }
  if (py::isinstance<py::dict>(item)) {
    for (auto [key, value] : item.cast<py::dict>()) {
      if (!py::isinstance<py::str>(key))
        throw Error(where, "dict keys must be model input names (strings), not " +
                               py::repr(key).cast<std::string>());
      const std::string name = key.cast<std::string>();
      b.inputs.emplace_back(name, to_float(value, where, "'" + name + "'"));
    }
    if (b.inputs.empty()) throw Error(where, "a dict of arrays holds no arrays");
    return b;
  }
  b.inputs.emplace_back("", to_float(item, where, "the array"));
  return b;
}

std::string quoted(const std::string& input) {
  return input.empty() ? "the array" : "'" + input + "'";
}

std::vector<int64_t> batch0_shape(const FloatArray& a) {
  return {a.shape(), a.shape() + a.ndim()};
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Concatenates the batches along their first axis, checking they hold the same inputs with the
// same sample shapes.
api::Data concatenate(const std::vector<Batch>& batches, std::optional<std::vector<int64_t>> labels,
                      const std::string& where) {
  if (batches.empty()) throw Error(where, "holds no batches");
  const Batch& first = batches[0];
  std::vector<std::pair<std::string, api::Array>> inputs;
  for (const auto& [name, a] : first.inputs) {
    if (a.ndim() < 1) throw Error(where, quoted(name) + " is a scalar; arrays are [N, ...]");
    inputs.push_back({name, api::Array{{a.shape(), a.shape() + a.ndim()}, {}}});
    inputs.back().second.shape[0] = 0;
  }
  const bool batch_labels = first.labels.has_value();
  if (batch_labels && labels)
    throw Error(where, "labels given twice: in the batches and as labels=");
  std::vector<int64_t> all_labels;
  for (size_t i = 0; i < batches.size(); ++i) {
    const Batch& b = batches[i];
    const std::string at = batches.size() > 1 ? "batch " + std::to_string(i) + ": " : "";
    if (b.inputs.size() != first.inputs.size())
      throw Error(where, at + "holds " + std::to_string(b.inputs.size()) + " arrays, batch 0 " +
                             std::to_string(first.inputs.size()));
    if (b.labels.has_value() != batch_labels)
      throw Error(where, at + "labels in some batches only");
    for (size_t k = 0; k < first.inputs.size(); ++k) {
      const std::string& name = first.inputs[k].first;
      auto it = std::find_if(b.inputs.begin(), b.inputs.end(),
                             [&](const auto& input) { return input.first == name; });
      if (it == b.inputs.end()) throw Error(where, at + "has no array " + quoted(name));
      const FloatArray& a = it->second;
      api::Array& out = inputs[k].second;
      std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
      std::vector<int64_t> expected = out.shape;
      if (!shape.empty()) expected[0] = shape[0];
      if (shape != expected)
        throw Error(where, at + quoted(name) + " has shape " + shape_text(shape) + ", batch 0 " +
                               shape_text(batch0_shape(first.inputs[k].second)));
      out.shape[0] += shape[0];
      out.values.insert(out.values.end(), a.data(), a.data() + a.size());
    }
    if (b.labels) all_labels.insert(all_labels.end(), b.labels->begin(), b.labels->end());
  }
  if (labels) all_labels = std::move(*labels);
  return api::Data::from_arrays(std::move(inputs), std::move(all_labels), where);
}

}  // namespace

api::Data as_data(py::handle source, py::handle labels, const std::string& name) {
  if (py::isinstance<api::Data>(source)) {
    if (!labels.is_none()) throw Error(name.empty() ? "data" : name, "labels given to a Data");
    return source.cast<api::Data>();
  }
  if (py::isinstance<py::str>(source)) {
    if (!labels.is_none())
      throw Error(source.cast<std::string>(), "a data spec brings its own labels");
    const std::string spec = source.cast<std::string>();
    py::gil_scoped_release release;  // decoding a dataset can take seconds
    return api::Data::open(spec);
  }
  std::optional<std::vector<int64_t>> label_values;
  const std::string where = name.empty() ? "arrays" : name;
  if (!labels.is_none()) label_values = to_labels(labels, where);
  std::vector<Batch> batches;
  // An array or a dict is one batch; any other iterable yields batches.
  if (py::isinstance<py::dict>(source) || py::isinstance<py::array>(source) ||
      py::hasattr(source, "__array__") || !py::isinstance<py::iterable>(source)) {
    batches.push_back(to_batch(source, where, false));
  } else {
    for (py::handle item : source.cast<py::iterable>())
      batches.push_back(to_batch(item, where, true));
  }
  return concatenate(batches, std::move(label_values), where);
}

void bind_data(py::module_& m) {
  py::class_<api::Data>(m, "Data", R"(Samples to calibrate, measure and evaluate on.

Data(source, labels=None, name="") takes a data spec ("fmnist:train", "folder:DIR",
"npz:FILE", ...), a numpy array [N, ...] for a one-input model, a dict {input name: array},
or any iterable of such arrays or dicts, or of (inputs, labels) pairs, concatenated along
the first axis. Arrays become float32; labels are integer class indices, one per sample.)")
      .def(py::init([](py::handle source, py::handle labels, const std::string& name) {
             return as_data(source, labels, name);
           }),
           "source"_a, "labels"_a = py::none(), "name"_a = "")
      .def_static(
          "open", [](const std::string& spec) { return as_data(py::str(spec)); }, "spec"_a,
          "A data spec as the command line takes it.")
      .def("__len__", &api::Data::size)
      .def_property_readonly("labelled", &api::Data::labelled)
      .def_property_readonly("description", &api::Data::description)
      .def("__repr__", [](const api::Data& d) { return "<mixq.Data " + d.description() + ">"; });
}

}  // namespace mixq::python
