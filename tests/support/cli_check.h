// The command line's error contract, checked the same way by every CLI test: exactly one line
// on stderr starting "mixq: error: ", naming what was wrong, and the exit status (1 for bad
// input, 2 for bad usage).
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "support/onnx_builder.h"

namespace mixq::test {

inline void expect_clean_error(const CommandResult& r, const std::string& must_contain,
                               int status = 1) {
  EXPECT_EQ(r.status, status) << r.err;
  std::string err = r.err;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  EXPECT_EQ(err.find('\n'), std::string::npos) << "more than one line: " << r.err;
  EXPECT_NE(err.find(must_contain), std::string::npos)
      << "expected '" << must_contain << "' in: " << r.err;
  EXPECT_EQ(err.rfind("mixq: error: ", 0), 0u) << r.err;
}

}  // namespace mixq::test
