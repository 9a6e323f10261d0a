// mixq::Error (public: include/mixq/error.h) and the check that throws it. The command line exits
// 2 (bad usage) for an Error naming a flag, 1 (bad input) for everything else.
#pragma once
#include <string>

#include "mixq/error.h"

namespace mixq {

// Throws Error(where, cause) when cond is false.
inline void check(bool cond, const std::string& where, const std::string& cause) {
  if (!cond) throw Error(where, cause);
}

}  // namespace mixq
