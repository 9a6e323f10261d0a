// Fuzzes the IDX reader (raw and gzip) at the two ranks mixq reads: images (3) and labels (1).
#include "data/idx.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mixq;
  const std::string bytes = fuzz::as_string(data, size);
  for (int rank : {1, 3}) {
    fuzz::accept_errors([&] {
      IdxArray a = read_idx_bytes(bytes, "fuzz.idx", rank);
      fuzz::require(static_cast<int>(a.dims.size()) == rank, "rank as asked");
      // Datasets index the data by the dimensions: they must describe exactly the bytes read.
      uint64_t numel = 1;
      for (int64_t d : a.dims) {
        fuzz::require(d > 0, "positive dimensions");
        numel *= static_cast<uint64_t>(d);
      }
      fuzz::require(numel == a.data.size(), "dimensions match the data");
    });
  }
  return 0;
}
