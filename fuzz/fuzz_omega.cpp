// Fuzzes the sensitivity-file (.omega) reader, then what `mixq allocate` and the report compute
// from an accepted file: completeness, L0, the deltas and Omega.
#include "fuzz_common.h"
#include "search/sensitivity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
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
  });
  return 0;
}
