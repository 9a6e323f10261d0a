// One error type for every failure a user can cause: it names where (file, node, flag) and why.
// An Error whose `where` starts with '-' names a flag: the command line exits 2 (bad usage)
// for it, 1 (bad input) for everything else.
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

// Throws Error(where, cause) when cond is false.
inline void check(bool cond, const std::string& where, const std::string& cause) {
  if (!cond) throw Error(where, cause);
}

}  // namespace mixq
