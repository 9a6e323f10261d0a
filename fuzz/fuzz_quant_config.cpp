// Fuzzes the quantization-config reader (quant.json). A config it accepts must survive a write
// and re-read unchanged, as `mixq calibrate` output read back by `mixq eval --quant` does.
#include "fuzz_common.h"
#include "quant/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
  fuzz::accept_errors([&] {
    const QuantConfig c = parse_quant_config(fuzz::as_string(data, size), "fuzz.json");
    const std::string once = to_json(c).dump();
    const QuantConfig again = fuzz::must_accept(
        [&] { return parse_quant_config(once, "rewritten"); }, "a config mixq wrote is read back");
    fuzz::require(to_json(again).dump() == once, "write, read, write is unchanged");
  });
  return 0;
}
