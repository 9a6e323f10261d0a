#include "base/data_files.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "base/error.h"

namespace mixq {

namespace fs = std::filesystem;

namespace {

// The folder of the object (executable or shared library) this function was linked into.
std::string own_object_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_object_dir), &info) == 0 || !info.dli_fname) return "";
  std::error_code ec;
  const fs::path p = fs::canonical(info.dli_fname, ec);
  return ec ? "" : p.parent_path().string();
}

std::string executable_dir() {
  std::error_code ec;
  const fs::path p = fs::canonical("/proc/self/exe", ec);
  return ec ? "" : p.parent_path().string();
}

}  // namespace

std::vector<std::string> data_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("MIXQ_DATA_DIR"); env && *env) dirs.emplace_back(env);
  for (const std::string& base : {executable_dir(), own_object_dir()}) {
    if (base.empty()) continue;
    for (const fs::path& d : {fs::path(base) / ".." / "share" / "mixq",
                              fs::path(base) / "share" / "mixq"}) {
      const std::string s = d.lexically_normal().string();
      if (std::find(dirs.begin(), dirs.end(), s) == dirs.end()) dirs.push_back(s);
    }
  }
  return dirs;
}

std::string find_data_file(const std::string& relative) {
  std::string searched;
  for (const std::string& dir : data_dirs()) {
    const fs::path p = fs::path(dir) / relative;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
    searched += (searched.empty() ? "" : ", ") + dir;
  }
  throw Error(relative, "not found in mixq's data folders (" + searched +
                            "); set MIXQ_DATA_DIR to the folder holding it");
}

}  // namespace mixq
