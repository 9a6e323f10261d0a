#include "ops/kernel.h"

namespace mixq {

void register_reduce_ops(Registry& r) { (void)r; }

}  // namespace mixq
