// The one error type of mixq, public and internal alike: every failure a user can cause names
// where it happened (a file, a node, a flag) and why. An Error whose `where` starts with '-'
// names a command-line flag.
#pragma once
#include <stdexcept>
#include <string>

namespace mixq {

class Error : public std::runtime_error {
 public:
  Error(const std::string& where, const std::string& cause)
      : std::runtime_error(where.empty() ? cause : where + ": " + cause),
        where_(where),
        cause_(cause) {}
  const std::string& where() const { return where_; }
  const std::string& cause() const { return cause_; }

 private:
  std::string where_;
  std::string cause_;
};

}  // namespace mixq
