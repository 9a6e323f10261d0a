// Fuzzes the packed-format (.mixq) loader and the weight unpacking a toolchain would do next.
// The file ends with a hash of everything before it, which random mutations would almost never
// match: the target rewrites it, so the fuzzer explores the header and data instead.
#include <cstring>

#include "fuzz_common.h"
#include "pack/packed.h"

namespace {

uint64_t fnv1a(const char* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<uint8_t>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
  std::string bytes = fuzz::as_string(data, size);
  if (bytes.size() >= 8) {
    const uint64_t h = fnv1a(bytes.data(), bytes.size() - 8);
    std::memcpy(bytes.data() + bytes.size() - 8, &h, 8);
  }
  fuzz::accept_errors([&] {
    const PackedModel m = parse_packed(bytes, "fuzz.mixq");
    for (const PackedLayer& l : m.layers) {
      const Tensor w = unpack_weight(l);
      fuzz::require(w.shape() == l.weight_shape, "unpacked weight has the declared shape");
    }
    // Writing what was read and reading it again gives the same model.
    const std::string once = serialize_packed(m);
    const std::string twice =
        fuzz::must_accept([&] { return serialize_packed(parse_packed(once, "rewritten")); },
                          "a file mixq wrote is read back");
    fuzz::require(once == twice, "write, read, write is unchanged");
  });
  return 0;
}
