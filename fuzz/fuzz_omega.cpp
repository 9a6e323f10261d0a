// Fuzzes the sensitivity-file (.omega) reader, then what `mixq allocate` and the report read
// from an accepted file: the search space its header names (against the model the seeds were
// measured on), the activation quantizers, completeness, L0, the deltas and Omega.
#include "fuzz_common.h"
#include "onnx/import.h"
#include "quant/rounding.h"
#include "search/candidates.h"
#include "search/sensitivity.h"
#include "seed_models.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
  static const Graph model = load_onnx_bytes(fuzz::conv_net().bytes(), "conv_net");
  fuzz::accept_errors([&] {
    const std::string bytes = fuzz::as_string(data, size);
    const SensitivityData d = parse_sensitivity(bytes, "fuzz.omega");
    fuzz::require(d.base.size() == d.chunks && d.single.size() == d.chunks &&
                      d.pair.size() == d.chunks && d.done.size() == d.chunks,
                  "one entry per chunk");
    // A checkpoint mixq rewrites (on resume) must read back as the same measurement.
    const std::string once = sensitivity_bytes(d);
    const std::string twice =
        fuzz::must_accept([&] { return sensitivity_bytes(parse_sensitivity(once, "rewritten")); },
                          "a file mixq wrote is read back");
    fuzz::require(once == twice, "write, read, write is unchanged");
    (void)sensitivity_to_json(d);  // L0, deltas and Omega when complete
    if (d.complete()) fuzz::require(d.omega().size() == d.n() * d.n(), "Omega is n x n");
    // What allocate reads next; errors here are refusals of the file too.
    const SearchSpace space = search_space_from_header(model, d.header, "fuzz.omega");
    fuzz::require(space.num_searched() == d.layers && space.num_candidates() == d.candidates,
                  "the search space has the file's layers and candidates");
    (void)input_quants_from_json(d.header.value("activations", nlohmann::json()), "fuzz.omega");
    if (d.header.contains("rounding")) (void)rounding_from_json(d.header["rounding"], "fuzz.omega");
  });
  return 0;
}
