#include "ops/kernel.h"

namespace mixq {

void register_gemm_ops(Registry& r) { (void)r; }

}  // namespace mixq
