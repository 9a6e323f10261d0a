// Fuzzes the optimised executor against the reference on whole graphs: the input bytes steer
// the random graph generator's structural choices (tests/support/random_graph.h), the graph is
// imported like any model, and both executors must agree on it. A disagreement or a graph the
// generator made that mixq refuses is a finding.
#include "fuzz_common.h"
#include "onnx/import.h"
#include "runtime/differential.h"
#include "support/random_graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
  if (size > 64) return 0;  // a graph needs far fewer choices; longer inputs add nothing
  test::RandomGraph r = test::graph_from_choices(data, size);
  Graph g = load_onnx_bytes(r.onnx, "generated graph");
  DifferentialOptions o;
  o.batch_threads = 2;
  const Divergence d = compare_fast_to_reference(g, r.inputs, o);
  if (d.found) std::fprintf(stderr, "%s\n%s\n", r.summary.c_str(), d.describe().c_str());
  fuzz::require(!d.found, "the fast path computes what the reference computes");
  return 0;
}
