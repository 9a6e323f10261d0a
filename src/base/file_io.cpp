#include "base/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace mixq {

void write_file_atomic(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  check(fs::is_directory(dir), path, "folder " + dir.string() + " does not exist");
  std::string name = ".";
  name += target.filename().string();
  name += ".XXXXXX";
  std::string tmpl = (dir / name).string();
  int fd = mkstemp(tmpl.data());
  check(fd >= 0, path, std::string("cannot create a temporary file: ") + std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmpl.c_str());
      throw Error(path, std::string("write failed: ") + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::fchmod(fd, 0644) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    throw Error(path, std::string("write failed: ") + std::strerror(err));
  }
  ::close(fd);
  if (std::rename(tmpl.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    throw Error(path, std::string("cannot rename into place: ") + std::strerror(err));
  }
  // The rename itself is durable once the folder is synced.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  // A run killed while writing this file left its temporary file behind: the new file
  // supersedes it.
  const std::string stale = name.substr(0, name.size() - 6);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.size() == name.size() && n.compare(0, stale.size(), stale) == 0) fs::remove(e.path(), ec);
  }
}

std::string read_file(const std::string& path) {
  check(!std::filesystem::is_directory(path), path, "is a folder, not a file");
  std::ifstream f(path, std::ios::binary);
  check(f.good(), path, "cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  check(!f.bad(), path, "read error");
  return ss.str();
}

}  // namespace mixq
