// Where tests find data that lives outside the repository. Tests run with the repository root as
// working directory; data beside it (../shared) or from Debian packages may be absent, in which
// case the test skips with a message saying what is missing.
#pragma once
#include <filesystem>
#include <string>

namespace mixq::test {

inline std::string repo_path(const std::string& rel) {
  return std::string(MIXQ_SOURCE_DIR) + "/" + rel;
}
inline std::string shared_path(const std::string& rel) {
  return repo_path("../shared/" + rel);
}
inline bool exists(const std::string& p) {
  return std::filesystem::exists(p);
}

#define MIXQ_SKIP_UNLESS_EXISTS(path)                                     \
  do {                                                                    \
    if (!std::filesystem::exists(path)) {                                 \
      GTEST_SKIP() << "missing " << (path) << ": test needs it, skipped"; \
    }                                                                     \
  } while (0)

}  // namespace mixq::test
