// The Python module `mixq`: the public API (include/mixq/mixq.h) with numpy arrays, dicts and
// Python exceptions. Long calls run without the GIL so other Python threads keep running.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <filesystem>
#include <optional>
#include <type_traits>

#include "bindings.h"

namespace mixq::python {

using namespace pybind11::literals;
namespace fs = std::filesystem;

namespace {

// Thrown through the library to stop a measurement whose Python callback raised.
struct CallbackRaised {};

py::dict layer_info(const api::LayerInfo& l) {
  return py::dict("name"_a = l.name, "op_type"_a = l.op_type, "rows"_a = l.rows,
                  "weights"_a = l.weights);
}

py::dict accuracy(const api::Accuracy& a) {
  py::dict d("samples"_a = a.samples, "labelled"_a = a.labelled);
  if (a.labelled) {  // measured only with labels
    d["top1"] = a.top1;
    d["top5"] = a.top5;
    d["loss"] = a.loss;
  }
  return d;
}

// values (row-major) as a float64 array of the given shape.
py::array_t<double> matrix(const std::vector<double>& values, size_t rows, size_t cols) {
  py::array_t<double> a({rows, cols});
  std::copy(values.begin(), values.end(), a.mutable_data());
  return a;
}

// Candidates as a list or one comma-separated string.
std::vector<std::string> candidate_list(py::handle c) {
  if (!py::isinstance<py::str>(c)) return c.cast<std::vector<std::string>>();
  std::vector<std::string> out;
  std::string s = c.cast<std::string>(), item;
  for (char ch : s + ",") {
    if (ch != ',') {
      item += ch;
    } else if (!item.empty()) {
      out.push_back(item);
      item.clear();
    }
  }
  return out;
}

api::Sensitivities measure(const api::Model& model, const api::Calibration& cal, py::handle data,
                           py::handle candidates, size_t samples, uint64_t seed,
                           const std::string& loss, const std::optional<fs::path>& checkpoint,
                           py::object progress) {
  const api::Data d = as_data(data);
  api::SensitivityOptions o;
  o.candidates = candidate_list(candidates);
  o.samples = samples;
  o.seed = seed;
  o.loss = loss;
  if (checkpoint) o.checkpoint = checkpoint->string();
  // Called after each layer, also without a Python callback, so that Ctrl-C stops the call.
  std::optional<py::error_already_set> raised;
  o.progress = [&](const std::string& line) {
    py::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (!progress.is_none()) progress(line);
    } catch (py::error_already_set& e) {
      raised.emplace(std::move(e));
      throw CallbackRaised{};
    }
  };
  try {
    py::gil_scoped_release release;
    return api::measure_sensitivities(model, cal, d, o);
  } catch (const CallbackRaised&) {
    throw *raised;
  }
}

void bind_model(py::module_& m) {
  py::class_<api::Model>(m, "Model", "An ONNX model (float32 weights) mixq quantizes.")
      .def_static(
          "load", [](const fs::path& p) { return api::Model::load(p.string()); }, "path"_a,
          py::call_guard<py::gil_scoped_release>(), "Reads an ONNX file.")
      .def_static(
          "from_bytes",
          [](const py::bytes& b, const std::string& name) {
            std::string bytes = b;
            py::gil_scoped_release release;
            return api::Model::from_bytes(bytes, name);
          },
          "data"_a, "name"_a = "model bytes",
          "A serialized ModelProto (onnx.ModelProto.SerializeToString()).")
      .def_property_readonly("source", &api::Model::source)
      .def_property_readonly("inputs", &api::Model::inputs)
      .def_property_readonly("outputs", &api::Model::outputs)
      .def_property_readonly(
          "layers",
          [](const api::Model& model) {
            py::list out;
            for (const api::LayerInfo& l : model.layers()) out.append(layer_info(l));
            return out;
          },
          "The quantizable layers in graph order: dicts of name, op_type, rows, weights.")
      .def("__repr__", [](const api::Model& model) {
        return "<mixq.Model " + model.source() + ", " + std::to_string(model.layers().size()) +
               " layers>";
      });
}

void bind_steps(py::module_& m) {
  py::class_<api::Calibration>(m, "Calibration", "Activation ranges from the float model.")
      .def_property_readonly("activation_bits", &api::Calibration::activation_bits)
      .def_property_readonly("samples", &api::Calibration::samples);
  m.def(
      "calibrate",
      [](const api::Model& model, py::handle data, int activation_bits, size_t samples,
         uint64_t seed) {
        const api::Data d = as_data(data);
        py::gil_scoped_release release;
        return api::calibrate(model, d, {activation_bits, samples, seed});
      },
      "model"_a, "data"_a, "activation_bits"_a = 8, "samples"_a = 512, "seed"_a = 0);

  py::class_<api::Sensitivities>(m, "Sensitivities", "CLADO's single and pair measurements.")
      .def_property_readonly("layers", &api::Sensitivities::layers)
      .def_property_readonly("candidates", &api::Sensitivities::candidates)
      .def_property_readonly("base_loss", &api::Sensitivities::base_loss)
      .def(
          "single",
          [](const api::Sensitivities& s) {
            return matrix(s.single(), s.layers().size(), s.candidates().size());
          },
          "Loss increase of each layer alone at each candidate: [layers, candidates].")
      .def(
          "omega",
          [](const api::Sensitivities& s) {
            const size_t n = s.layers().size() * s.candidates().size();
            return matrix(s.omega(), n, n);
          },
          "The cross-layer matrix over (layer, candidate), layer-major: [L*C, L*C].");
  m.def("measure_sensitivities", &measure, "model"_a, "calibration"_a, "data"_a,
        "candidates"_a = std::vector<std::string>{"w2", "w4", "w8"}, "samples"_a = 256,
        "seed"_a = 0, "loss"_a = "", "checkpoint"_a = py::none(), "progress"_a = py::none(),
        "progress(line) is called with a line after each layer; an exception it raises stops "
        "the measurement.");

  py::class_<api::Allocation>(m, "Allocation", "A candidate per searched layer.")
      .def_property_readonly("method", &api::Allocation::method)
      .def_property_readonly("predicted_loss_increase", &api::Allocation::predicted_loss_increase)
      .def("layers",
           [](const api::Allocation& a) {
             py::list out;
             for (const api::LayerChoice& c : a.layers())
               out.append(
                   py::dict("layer"_a = c.layer, "candidate"_a = c.candidate, "bits"_a = c.bits));
             return out;
           })
      .def("budgets", [](const api::Allocation& a) {
        py::list out;
        for (const api::BudgetUse& u : a.budgets())
          out.append(py::dict("budget"_a = u.budget, "used"_a = u.used, "limit"_a = u.limit));
        return out;
      });
  m.def(
      "allocate",
      [](const api::Sensitivities& s, const std::string& budgets, const std::string& method,
         std::vector<std::string> keep_float, std::vector<std::string> pins) {
        api::AllocateOptions o;
        o.method = method;
        o.keep_float = std::move(keep_float);
        o.pins = std::move(pins);
        return api::allocate(s, budgets, o);
      },
      "sensitivities"_a, "budgets"_a, "method"_a = "clado",
      "keep_float"_a = std::vector<std::string>{}, "pins"_a = std::vector<std::string>{},
      py::call_guard<py::gil_scoped_release>(),
      "keep_float: regexes of layers left float; pins: 'REGEX=CANDIDATE' (docs/layer-control.md).");
}

void bind_quantized(py::module_& m) {
  py::class_<api::QuantizedModel>(m, "QuantizedModel", "A model with its quantization config.")
      .def_property_readonly("bits", &api::QuantizedModel::average_weight_bits,
                             "Average weight bits over every quantized layer.")
      .def_property_readonly("bytes", &api::QuantizedModel::weight_bytes,
                             "Weight storage of the whole model in bytes.")
      .def("layers",
           [](const api::QuantizedModel& q) {
             py::list out;
             for (const api::QuantizedLayer& l : q.layers())
               out.append(py::dict("name"_a = l.name, "op_type"_a = l.op_type,
                                   "schemes"_a = l.schemes, "weight_bits"_a = l.weight_bits,
                                   "activation_bits"_a = l.activation_bits,
                                   "weights"_a = l.weights));
             return out;
           })
      .def("config_json", &api::QuantizedModel::config_json)
      .def("config",
           [](const api::QuantizedModel& q) {
             return py::module_::import("json").attr("loads")(q.config_json());
           })
      .def(
          "save_config",
          [](const api::QuantizedModel& q, const fs::path& p) { q.save_config(p.string()); },
          "path"_a, py::call_guard<py::gil_scoped_release>())
      .def(
          "export_qdq",
          [](const api::QuantizedModel& q, const fs::path& p) { q.export_qdq(p.string()); },
          "path"_a, py::call_guard<py::gil_scoped_release>())
      .def(
          "export_packed",
          [](const api::QuantizedModel& q, const fs::path& p) { q.export_packed(p.string()); },
          "path"_a, py::call_guard<py::gil_scoped_release>());
  m.def("apply", &api::apply, "model"_a, "calibration"_a, "allocation"_a,
        py::call_guard<py::gil_scoped_release>());

  const char* eval_doc =
      "Runs the model on the data (limit: at most that many samples, 0: all); a dict of "
      "samples, labelled, and with labels top1, top5, loss.";
  // Models and quantized models evaluate alike: the data converted with the GIL held, the run
  // without it.
  auto def_evaluate = [&](auto model_tag) {
    using M = typename decltype(model_tag)::type;
    m.def(
        "evaluate",
        [](const M& model, py::handle data, size_t limit) {
          const api::Data d = as_data(data);
          api::Accuracy a;
          {
            py::gil_scoped_release release;
            a = api::evaluate(model, d, limit);
          }
          return accuracy(a);
        },
        "model"_a, "data"_a, "limit"_a = 0, eval_doc);
  };
  def_evaluate(std::type_identity<api::QuantizedModel>{});
  def_evaluate(std::type_identity<api::Model>{});
}

}  // namespace

}  // namespace mixq::python

PYBIND11_MODULE(mixq, m) {
  namespace mp = mixq::python;
  m.doc() = "Mixed-precision quantization of ONNX models (docs/python.md).";
  // mixq's one-line messages name the file, input or option at fault.
  pybind11::register_exception<mixq::Error>(m, "Error", PyExc_RuntimeError);
  m.attr("__version__") = mixq::api::version();
  m.def("version", &mixq::api::version);
  m.def("default_model_path", &mixq::api::default_model_path,
        "The embedded default model (a Fashion-MNIST CNN).");
  mp::bind_model(m);
  mp::bind_data(m);
  mp::bind_steps(m);
  mp::bind_quantized(m);
}
