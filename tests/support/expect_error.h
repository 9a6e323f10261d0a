// Checks the error contract: a call is refused with a mixq::Error naming what it must name.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"

namespace mixq::test {

// Expects fn to throw an Error whose message contains every piece (other exceptions escape and
// fail the test).
template <class Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& pieces) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    for (const auto& p : pieces)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "'" << e.what() << "' does not mention '" << p << "'";
  }
}

}  // namespace mixq::test
