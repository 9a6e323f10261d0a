// The inference optimisation the fast executor may apply to its own copy of a graph: conv
// fusions (passes/fuse.h), then channels-last chains (passes/layout.h). Value ids and names of
// the input graph keep their meaning (new values are appended); graph outputs keep their names
// and NCHW layout; constants are never rewritten. The result is for running only: internal
// attributes must not reach ONNX export.
#pragma once
#include <cstdint>
#include <vector>

#include "ir/graph.h"

namespace mixq {

struct OptimizeResult {
  bool shapes_probed = false;  // shape facts came from a dry run, not only from the file
  int fused = 0;               // nodes fused away
  int channels_last = 0;       // nodes running channels-last
  int transposes = 0;          // Transposes added
  // Bytes of the widest batch row when the graph keeps batch rows apart (passes/batch_rows.h),
  // so a batch may run in slices; 0 when it may not.
  int64_t batch_row_bytes = 0;
  std::vector<bool> channels_last_values;  // per value id of the optimised graph
};

OptimizeResult optimize_for_inference(Graph& g);

}  // namespace mixq
