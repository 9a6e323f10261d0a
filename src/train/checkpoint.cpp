#include "train/checkpoint.h"

#include <bit>
#include <cstring>

#include "base/error.h"
#include "base/file_io.h"

namespace mixq {
namespace {

static_assert(std::endian::native == std::endian::little, "checkpoints are little-endian");

constexpr char kMagic[8] = {'M', 'I', 'X', 'Q', 'C', 'K', 'P', 'T'};
constexpr size_t kAlign = 64;
constexpr size_t kFixed = 24;  // magic, version, reserved, header length

uint64_t fnv1a(const char* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

template <class T>
void put(std::string& s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  s.append(b, sizeof(T));
}

template <class T>
T get(const std::string& s, size_t at) {
  T v;
  std::memcpy(&v, s.data() + at, sizeof(T));
  return v;
}

DType dtype_from_name(const std::string& name, const std::string& where) {
  for (DType t : {DType::f32, DType::f64, DType::i64, DType::i32, DType::i16, DType::i8, DType::u8,
                  DType::boolean})
    if (name == dtype_name(t)) return t;
  throw Error(where, "unknown tensor type '" + name + "'");
}

}  // namespace

const Tensor* Checkpoint::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

std::string serialize_checkpoint(const Checkpoint& c) {
  nlohmann::json table = nlohmann::json::array();
  size_t offset = 0;
  for (const auto& [name, t] : c.tensors) {
    table.push_back({{"name", name},
                     {"dtype", dtype_name(t.dtype())},
                     {"shape", t.shape()},
                     {"offset", offset},
                     {"bytes", t.nbytes()}});
    offset = align_up(offset + t.nbytes());
  }
  const std::string header = nlohmann::json{{"meta", c.meta}, {"tensors", table}}.dump();
  std::string s(kMagic, sizeof(kMagic));
  put<uint32_t>(s, kCheckpointVersion);
  put<uint32_t>(s, 0);
  put<uint64_t>(s, header.size());
  s += header;
  s.resize(align_up(s.size()), '\0');
  const size_t data = s.size();
  s.resize(data + offset, '\0');
  size_t at = 0;
  for (const auto& [name, t] : c.tensors) {
    if (t.nbytes()) std::memcpy(s.data() + data + at, t.raw(), t.nbytes());
    at = align_up(at + t.nbytes());
  }
  put<uint64_t>(s, fnv1a(s.data(), s.size()));
  return s;
}

Checkpoint parse_checkpoint(const std::string& s, const std::string& where) {
  check(s.size() >= kFixed + 8 && std::memcmp(s.data(), kMagic, sizeof(kMagic)) == 0, where,
        "is not a mixq checkpoint");
  const uint32_t version = get<uint32_t>(s, 8);
  check(version == kCheckpointVersion, where,
        "checkpoint format version " + std::to_string(version) + " is not supported (this mixq " +
            "reads version " + std::to_string(kCheckpointVersion) + ")");
  check(get<uint64_t>(s, s.size() - 8) == fnv1a(s.data(), s.size() - 8), where,
        "checkpoint is corrupted (hash mismatch)");
  const uint64_t hlen = get<uint64_t>(s, 16);
  check(hlen <= s.size() - kFixed - 8, where, "checkpoint header is truncated");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(s.substr(kFixed, hlen));
  } catch (const std::exception& e) {
    throw Error(where, std::string("checkpoint header is not valid JSON: ") + e.what());
  }
  const size_t data = align_up(kFixed + hlen);
  const size_t end = s.size() - 8;
  Checkpoint c;
  try {
    c.meta = header.at("meta");
    for (const auto& e : header.at("tensors")) {
      const std::string name = e.at("name").get<std::string>();
      const DType dt = dtype_from_name(e.at("dtype").get<std::string>(), where);
      const Shape shape = e.at("shape").get<Shape>();
      const size_t off = e.at("offset").get<size_t>(), bytes = e.at("bytes").get<size_t>();
      check(off <= end - data && bytes <= end - data - off, where,
            "tensor '" + name + "' lies outside the checkpoint");
      // The shape must account for exactly its bytes (checked before allocating).
      size_t count = 1;
      for (int64_t d : shape) {
        check(d >= 0 && (d == 0 || count <= bytes / static_cast<size_t>(d)), where,
              "tensor '" + name + "' has a bad shape");
        count *= static_cast<size_t>(d);
      }
      check(count * dtype_size(dt) == bytes, where, "tensor '" + name + "' has a bad size");
      Tensor t(dt, shape);
      if (bytes) std::memcpy(t.raw(), s.data() + data + off, bytes);
      c.tensors.emplace_back(name, std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(where, std::string("checkpoint header is malformed: ") + e.what());
  }
  return c;
}

void save_checkpoint(const std::string& path, const Checkpoint& c) {
  write_file_atomic(path, serialize_checkpoint(c));
}

Checkpoint load_checkpoint(const std::string& path) {
  return parse_checkpoint(read_file(path), path);
}

}  // namespace mixq
