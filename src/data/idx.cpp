#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "base/file_io.h"
#include "base/memory.h"

namespace mixq {

namespace {

// Reads raw or gzip-compressed bytes sequentially, decompressing only as data is asked for.
class ByteReader {
 public:
  ByteReader(const std::string& bytes, const std::string& where) : in_(bytes), where_(where) {
    gzipped_ = bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
               static_cast<uint8_t>(bytes[1]) == 0x8b;
    // 15 + 16: a gzip wrapper (header, CRC and length checked) around a 32 KiB-window stream.
    if (gzipped_) check(inflateInit2(&z_, 15 + 16) == Z_OK, where, "cannot start gzip decoding");
  }
  ~ByteReader() {
    if (gzipped_) inflateEnd(&z_);
  }
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the data. Throws on corrupt gzip data.
  size_t read(uint8_t* out, size_t n) {
    if (!gzipped_) {
      const size_t r = std::min(n, in_.size() - pos_);
      if (r) std::memcpy(out, in_.data() + pos_, r);
      pos_ += r;
      return r;
    }
    size_t got = 0;
    while (got < n && !ended_) {
      // zlib counts in 32 bits: hand it at most 1 GiB of input and output at a time.
      const size_t in_slice = std::min<size_t>(in_.size() - pos_, size_t{1} << 30);
      const size_t out_slice = std::min<size_t>(n - got, size_t{1} << 30);
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in_.data() + pos_));
      z_.avail_in = static_cast<uInt>(in_slice);
      z_.next_out = out + got;
      z_.avail_out = static_cast<uInt>(out_slice);
      const int r = inflate(&z_, Z_NO_FLUSH);
      pos_ += in_slice - z_.avail_in;
      got += out_slice - z_.avail_out;
      if (r == Z_STREAM_END) {
        // Like gzread: another gzip member may follow; anything else after the end is ignored.
        const bool member = in_.size() - pos_ >= 2 && static_cast<uint8_t>(in_[pos_]) == 0x1f &&
                            static_cast<uint8_t>(in_[pos_ + 1]) == 0x8b;
        if (member) {
          inflateReset(&z_);
        } else {
          ended_ = true;
        }
      } else if (r == Z_BUF_ERROR) {
        // No input left before the end of the stream: the caller reports what is short.
        break;
      } else if (r != Z_OK) {
        throw Error(where_, std::string("corrupt gzip data: ") + (z_.msg ? z_.msg : zError(r)));
      }
    }
    return got;
  }

  bool gzipped() const { return gzipped_; }

 private:
  const std::string& in_;
  std::string where_;
  size_t pos_ = 0;
  bool gzipped_ = false, ended_ = false;
  z_stream z_{};
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
  std::error_code ec;
  check(std::filesystem::is_regular_file(path, ec), path, "not a readable file");
  return read_idx_bytes(read_file(path), path, rank);
}

IdxArray read_idx_bytes(const std::string& bytes, const std::string& where, int rank) {
  ByteReader in(bytes, where);
  const std::string what = in.gzipped() ? " (after gzip decompression)" : "";
  uint8_t head[4];
  size_t n = in.read(head, 4);
  check(n == 4, where,
        "truncated: the 4-byte IDX magic number is short, file has " + std::to_string(n) +
            " bytes" + what);
  const uint32_t magic = be32(head);
  const uint32_t want = 0x0800u | static_cast<uint32_t>(rank);
  check(head[0] == 0 && head[1] == 0, where,
        "bad magic number " + hex32(magic) + ", expected " + hex32(want) + " (not an IDX file)");
  check(head[2] == 0x08, where,
        "bad magic number " + hex32(magic) + ", expected " + hex32(want) +
            " (element type must be unsigned byte 0x08)");
  check(head[3] == rank, where,
        "bad magic number " + hex32(magic) + ", expected " + hex32(want) + " (rank " +
            std::to_string(head[3]) + " instead of " + std::to_string(rank) + ")");

  std::vector<uint8_t> dimbytes(4 * static_cast<size_t>(rank));
  n = in.read(dimbytes.data(), dimbytes.size());
  check(n == dimbytes.size(), where,
        "truncated: the header's " + std::to_string(rank) + " dimensions need " +
            std::to_string(dimbytes.size()) + " bytes, found " + std::to_string(n) + what);
  IdxArray arr;
  uint64_t total = 1;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = be32(&dimbytes[4 * i]);
    check(d > 0 && d <= 0x7fffffffu, where,
          "dimension " + std::to_string(i) + " is " + std::to_string(d));
    arr.dims.push_back(d);
    // Checked before multiplying: the product itself could wrap around 2^64 to a small number.
    check(total <= kMaxIdxBytes / d, where, "header claims an array of more than 16 GiB");
    total *= d;
  }
  check_memory(static_cast<double>(total), where, "the header's array");

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
  check(got >= total, where,
        "truncated: " + shape_str(arr.dims) + " needs " + std::to_string(total) +
            " bytes of data after the header, found " + std::to_string(got) + what);
  check(got == total, where,
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
  if (!gz) {
    write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
    return;
  }
  // Compressed in memory (15 + 16: the gzip wrapper), then written like every other file.
  z_stream z{};
  check(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
        path, "cannot start gzip encoding");
  std::string out(deflateBound(&z, static_cast<uLong>(bytes.size())), '\0');
  z.next_in = bytes.data();
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int r = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  check(r == Z_STREAM_END, path, "gzip encoding failed");
  write_file_atomic(path, out);
}

}  // namespace mixq
