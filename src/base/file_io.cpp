#include "base/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "base/error.h"
#include "base/memory.h"

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

std::string read_file(const std::string& path, double peak) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  check(fs::exists(st), path, "cannot open file");
  check(!fs::is_directory(st), path, "is a folder, not a file");
  // A device or pipe (/dev/zero) has no size to check and may never end.
  check(fs::is_regular_file(st), path, "not a regular file");
  const uintmax_t size = fs::file_size(path, ec);
  check(!ec, path, "cannot read its size: " + ec.message());
  check_memory(static_cast<double>(size) * peak, path,
               peak > 1 ? fmt::format("reading its {} (parsing holds {:g}x)",
                                      format_bytes(static_cast<double>(size)), peak)
                        : "reading it");
  std::ifstream f(path, std::ios::binary);
  check(f.good(), path, "cannot open file");
  std::string bytes(size, '\0');
  f.read(bytes.data(), static_cast<std::streamsize>(size));
  check(!f.bad() && static_cast<uintmax_t>(f.gcount()) == size, path, "read error");
  return bytes;
}

namespace {

namespace fs = std::filesystem;

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  const fs::path ca = fs::weakly_canonical(a, ec);
  if (ec) return false;
  const fs::path cb = fs::weakly_canonical(b, ec);
  if (ec) return false;
  if (ca == cb) return true;
  // Hard links and bind mounts: same device and inode under different names.
  return fs::exists(ca, ec) && fs::exists(cb, ec) && fs::equivalent(ca, cb, ec);
}

std::string folder_of(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : ".";
}

void check_writable_folder(const std::string& folder, const std::string& path) {
  check(::access(folder.c_str(), W_OK | X_OK) == 0, path,
        "cannot write in folder " + folder + ": " + std::strerror(errno));
}

}  // namespace

void check_no_overwrite(const std::string& output, const std::vector<InputFile>& inputs,
                        const std::string& flag) {
  if (output.empty()) return;
  for (const InputFile& in : inputs)
    if (!in.path.empty() && same_file(output, in.path))
      throw Error(flag + " " + output,
                  "is the " + in.what + " '" + in.path + "'; choose another output");
}

void check_output_file(const std::string& path, const std::string& flag) {
  check(!path.empty(), flag, "must not be empty");
  std::error_code ec;
  check(!fs::is_directory(path, ec), path, "is a folder; give a file name");
  const std::string dir = folder_of(path);
  check(fs::exists(dir, ec), path, "folder " + dir + " does not exist");
  check(fs::is_directory(dir, ec), path, dir + " is not a folder");
  check_writable_folder(dir, path);
}

void check_output_dir(const std::string& path, const std::string& flag) {
  check(!path.empty(), flag, "must not be empty");
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  check(!fs::exists(p, ec) || fs::is_directory(p, ec), path, "exists and is not a folder");
  // The folder may not exist yet: the nearest part that does must be a writable folder.
  while (!fs::exists(p, ec) && p.has_parent_path() && p.parent_path() != p) p = p.parent_path();
  check(fs::is_directory(p, ec), path, p.string() + " is not a folder");
  check_writable_folder(p.string(), path);
}

}  // namespace mixq
