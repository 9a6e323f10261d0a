// Fuzzes the NumPy readers: .npy bytes, and .npz archives (zip container, then .npy members).
#include "data/npy.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
  const std::string bytes = fuzz::as_string(data, size);
  // Datasets copy rows by the shape: it must describe exactly the tensor's storage.
  const auto consistent = [](const Tensor& t) {
    int64_t n = 1;
    for (int64_t d : t.shape()) {
      fuzz::require(d >= 0, "non-negative dimensions");
      n *= d;
    }
    fuzz::require(n == t.numel(), "shape matches the element count");
  };
  fuzz::accept_errors([&] { consistent(parse_npy(bytes, "fuzz.npy")); });
  fuzz::accept_errors([&] {
    const auto arrays = parse_npz(bytes, "fuzz.npz");
    fuzz::require(!arrays.empty(), "an accepted archive holds arrays");
    for (const auto& [name, t] : arrays) consistent(t);
    // What mixq writes from what it read reads back the same.
    const auto again = fuzz::must_accept(
        [&] { return parse_npz(npz_bytes(arrays, true), "again.npz"); }, "round trip");
    fuzz::require(again.size() == arrays.size(), "round trip keeps every array");
  });
  return 0;
}
