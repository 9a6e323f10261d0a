#include "data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "base/error.h"

namespace mixq {

namespace {

// Reads a raw or gzip file sequentially.
class ByteReader {
 public:
  explicit ByteReader(const std::string& path) : path_(path) {
    std::error_code ec;
    check(std::filesystem::is_regular_file(path, ec), path, "not a readable file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    check(f != nullptr, path, std::string("cannot open: ") + std::strerror(errno));
    unsigned char magic[2] = {0, 0};
    const size_t n = std::fread(magic, 1, 2, f);
    std::fclose(f);
    gzipped_ = n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (gzipped_) {
      gz_ = gzopen(path.c_str(), "rb");
      check(gz_ != nullptr, path, "cannot open gzip file");
    } else {
      file_ = std::fopen(path.c_str(), "rb");
      check(file_ != nullptr, path, std::string("cannot open: ") + std::strerror(errno));
    }
  }
  ~ByteReader() {
    if (gz_) gzclose(gz_);
    if (file_) std::fclose(file_);
  }
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the data. Throws on corrupt gzip data.
  size_t read(uint8_t* out, size_t n) {
    size_t got = 0;
    while (got < n) {
      const unsigned want = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
      if (gzipped_) {
        const int r = gzread(gz_, out + got, want);
        if (r < 0 || (r == 0 && gz_failed())) {
          int errnum = 0;
          const char* msg = gzerror(gz_, &errnum);
          // A stream cut short is reported by the caller as a truncated file.
          if (errnum == Z_BUF_ERROR) break;
          throw Error(path_, std::string("corrupt gzip data: ") + msg);
        }
        if (r == 0) break;
        got += static_cast<size_t>(r);
      } else {
        const size_t r = std::fread(out + got, 1, want, file_);
        check(!std::ferror(file_), path_, "read error");
        if (r == 0) break;
        got += r;
      }
    }
    return got;
  }

  bool gzipped() const { return gzipped_; }

 private:
  bool gz_failed() {
    int errnum = 0;
    gzerror(gz_, &errnum);
    return errnum != Z_OK;
  }

  std::string path_;
  bool gzipped_ = false;
  gzFile gz_ = nullptr;
  std::FILE* file_ = nullptr;
};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", v);
  return buf;
}

// Generous bound on the data an IDX header may claim (16 GiB), so a corrupt header cannot
// make us allocate without limit: data is read in chunks and grows only as it arrives.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 34;

}  // namespace

IdxArray read_idx(const std::string& path, int rank) {
  ByteReader in(path);
  const std::string what = in.gzipped() ? " (after gzip decompression)" : "";
  uint8_t head[4];
  size_t n = in.read(head, 4);
  check(n == 4, path,
        "truncated: the 4-byte IDX magic number is short, file has " + std::to_string(n) +
            " bytes" + what);
  const uint32_t magic = be32(head);
  const uint32_t want = 0x0800u | static_cast<uint32_t>(rank);
  check(head[0] == 0 && head[1] == 0, path,
        "bad magic number " + hex32(magic) + ", expected " + hex32(want) + " (not an IDX file)");
  check(head[2] == 0x08, path,
        "bad magic number " + hex32(magic) + ", expected " + hex32(want) +
            " (element type must be unsigned byte 0x08)");
  check(head[3] == rank, path,
        "bad magic number " + hex32(magic) + ", expected " + hex32(want) + " (rank " +
            std::to_string(head[3]) + " instead of " + std::to_string(rank) + ")");

  std::vector<uint8_t> dimbytes(4 * static_cast<size_t>(rank));
  n = in.read(dimbytes.data(), dimbytes.size());
  check(n == dimbytes.size(), path,
        "truncated: the header's " + std::to_string(rank) + " dimensions need " +
            std::to_string(dimbytes.size()) + " bytes, found " + std::to_string(n) + what);
  IdxArray arr;
  uint64_t total = 1;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = be32(&dimbytes[4 * i]);
    check(d > 0 && d <= 0x7fffffffu, path,
          "dimension " + std::to_string(i) + " is " + std::to_string(d));
    arr.dims.push_back(d);
    total *= d;
    check(total <= kMaxIdxBytes, path, "header claims an array of more than 16 GiB");
  }

  // Read one byte past the expected end to detect trailing data.
  size_t got = 0;
  while (got < total + 1) {
    const size_t chunk = std::min<size_t>(total + 1 - got, size_t{1} << 24);
    arr.data.resize(got + chunk);
    const size_t r = in.read(arr.data.data() + got, chunk);
    got += r;
    if (r < chunk) break;
  }
  arr.data.resize(got);
  check(got >= total, path,
        "truncated: " + shape_str(arr.dims) + " needs " + std::to_string(total) +
            " bytes of data after the header, found " + std::to_string(got) + what);
  check(got == total, path,
        "unexpected bytes after the " + std::to_string(total) + " bytes of " + shape_str(arr.dims) +
            " data" + what);
  return arr;
}

void write_idx(const std::string& path, const Shape& dims, const std::vector<uint8_t>& data,
               bool gz) {
  check(static_cast<size_t>(shape_numel(dims)) == data.size(), path,
        "data size does not match the dimensions");
  std::vector<uint8_t> bytes = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (int64_t d : dims)
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<uint8_t>(d >> s));
  bytes.insert(bytes.end(), data.begin(), data.end());
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    check(f != nullptr, path, "cannot create file");
    const int w = gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    const int c = gzclose(f);
    check(w == static_cast<int>(bytes.size()) && c == Z_OK, path, "write error");
  } else {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    check(f != nullptr, path, std::string("cannot create file: ") + std::strerror(errno));
    const size_t w = std::fwrite(bytes.data(), 1, bytes.size(), f);
    const int c = std::fclose(f);
    check(w == bytes.size() && c == 0, path, "write error");
  }
}

}  // namespace mixq
