// What the Python module's files share: the conversions between Python objects and the public
// API's values (include/mixq/mixq.h).
#pragma once
#include <pybind11/pybind11.h>

#include <string>

#include "mixq/mixq.h"

namespace mixq::python {

namespace py = pybind11;

// A mixq.Data, or what mixq.Data(...) accepts: a spec string, an array, a dict of arrays, or an
// iterable of those (see data.cpp).
api::Data as_data(py::handle source, py::handle labels = py::none(), const std::string& name = "");

void bind_data(py::module_& m);

}  // namespace mixq::python
