// Linked into every fuzz target.
#include <cstdint>

#include "base/memory.h"

// Runs once before fuzzing. mixq's memory limit is set as `--mem-limit 1G` would set it, well
// under the fuzzer's -rss_limit_mb: a size an input declares beyond it must end in an Error.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  mixq::set_mem_limit(uint64_t{1} << 30);
  return 0;
}
