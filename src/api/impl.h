// What the public API's value types hold: the library's own objects, shared between the values
// made from them (a Calibration keeps its Model alive, an Allocation its Sensitivities).
#pragma once
#include <memory>

#include "base/error.h"
#include "data/dataset.h"
#include "ir/graph.h"
#include "mixq/mixq.h"
#include "quant/calibrate.h"
#include "quant/config.h"
#include "search/allocate.h"
#include "search/candidates.h"
#include "search/sensitivity.h"

namespace mixq::api {

struct Model::Impl : std::enable_shared_from_this<Model::Impl> {
  Graph graph;
};

struct Data::Impl {
  std::shared_ptr<const Dataset> dataset;
};

struct Calibration::Impl {
  std::shared_ptr<const Model::Impl> model;
  int abits = 8;
  ActivationStats stats;
};

struct Sensitivities::Impl {
  std::shared_ptr<const Calibration::Impl> calibration;
  SearchSpace space;
  SensitivityData data;
  AllocInputs inputs() const { return {&calibration->model->graph, &space, &data, nullptr}; }
};

struct Allocation::Impl {
  std::shared_ptr<const Sensitivities::Impl> sensitivities;
  SearchSpace space;  // the measured space with the options' fixed layers
  std::vector<Budget> budgets;
  mixq::Allocation allocation;
  AllocInputs inputs() const {
    return {&sensitivities->calibration->model->graph, &space, &sensitivities->data, nullptr};
  }
};

struct QuantizedModel::Impl {
  std::shared_ptr<const Model::Impl> model;
  QuantConfig config;
};

// A value's state; a default-constructed value is an Error naming what it stands for.
template <class T>
const typename T::Impl& get(const T& value, const char* what) {
  check(value.impl != nullptr, what, "used before it was made (default-constructed)");
  return *value.impl;
}

}  // namespace mixq::api
