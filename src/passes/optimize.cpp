#include "passes/optimize.h"

#include "passes/batch_rows.h"
#include "passes/fuse.h"
#include "passes/layout.h"
#include "passes/shape_info.h"

namespace mixq {

OptimizeResult optimize_for_inference(Graph& g) {
  OptimizeResult r;
  g.sort();
  const ShapeInfo shapes(g);
  r.shapes_probed = shapes.probed();
  r.batch_row_bytes = batch_row_bytes(g, shapes);  // on the ONNX ops, before rewriting
  r.fused = fuse_conv_activations(g, shapes);
  LayoutResult layout = to_channels_last(g, shapes);
  r.channels_last = layout.nodes;
  r.transposes = layout.transposes;
  r.channels_last_values = std::move(layout.channels_last);
  return r;
}

}  // namespace mixq
