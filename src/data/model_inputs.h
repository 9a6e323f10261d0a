// Feeding a batch to a model: the batch's arrays matched to the model's runtime inputs (by name,
// or in order when the data is positional) and converted where the conversion is the usual
// numpy one: float64 data to a float32 input, any integer data to an int64 or int32 input when
// every value fits. Anything else is an error naming the data and the input.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "ir/graph.h"

namespace mixq {

// The model's inputs for this batch, in the order of graph.inputs. Error(data.description(),
// ...) for a missing input, an array that is no input of the model, a count that differs for
// positional data, or a dtype that cannot be converted. Shapes are checked by the executor.
std::vector<Tensor> model_inputs(const Batch& batch, const Graph& graph, const Dataset& data);

// Error(data.description(), ...) when the data has no labels: `what` needs them ("training").
void require_labels(const Dataset& data, const std::string& what);

}  // namespace mixq
