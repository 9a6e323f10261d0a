// Fuzzes the ONNX importer: protobuf parse, libonnx checker and shape inference, mixq's own
// conversion to its graph, then the default passes (constant folding runs kernels on constants).
#include "fuzz_common.h"
#include "onnx/import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
  fuzz::accept_errors([&] {
    Graph g = load_onnx_bytes(fuzz::as_string(data, size), "fuzz.onnx");
    fuzz::require(!g.outputs.empty(), "an imported graph has outputs");
  });
  return 0;
}
