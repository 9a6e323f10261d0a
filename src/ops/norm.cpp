#include "ops/kernel.h"

namespace mixq {

void register_norm_ops(Registry& r) { (void)r; }

}  // namespace mixq
