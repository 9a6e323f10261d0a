// Files mixq writes are written atomically: to a temporary file in the same folder, flushed,
// then renamed over the target, so a run killed at any moment leaves the old file or the new
// one, never a partial one.
#pragma once
#include <string>

namespace mixq {

void write_file_atomic(const std::string& path, const std::string& content);
// Reads a whole file; Error naming the path when it cannot.
std::string read_file(const std::string& path);

}  // namespace mixq
