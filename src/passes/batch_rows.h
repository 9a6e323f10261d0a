// Can a graph run a batch in slices? It can when it computes each batch row from the same row
// of its inputs alone: the optimising executor then spreads slices of a large batch over its
// threads, each running the whole graph single-threaded on cache-sized activations, with no
// barrier between layers.
#pragma once
#include <cstdint>

#include "ir/graph.h"
#include "passes/shape_info.h"

namespace mixq {

// The largest size in bytes of one batch row of any value, when every graph input and output
// has the batch as its leading dimension (per the shape probe) and every node touching the
// batch is known to keep rows apart (checked op by op, with the axes it uses); 0 otherwise.
int64_t batch_row_bytes(const Graph& g, const ShapeInfo& shapes);

}  // namespace mixq
