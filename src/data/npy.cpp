#include "data/npy.h"

#include <zip.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <set>

#include "base/error.h"
#include "base/file_io.h"
#include "base/memory.h"

namespace mixq {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct Descr {
  DType dtype;
  bool swap;  // big-endian elements wider than a byte
};

Descr parse_descr(const std::string& d, const std::string& where) {
  check(d.size() >= 3, where, "unsupported dtype '" + d + "'");
  const char order = d[0];
  const std::string kind = d.substr(1);
  check(order == '<' || order == '>' || order == '|' || order == '=', where,
        "unsupported dtype '" + d + "'");
  for (const DTypeTraits& t : kDTypeTraits)
    if (kind == t.npy) return {t.dtype, order == '>' && t.size > 1};
  throw Error(where, "unsupported dtype '" + d +
                         "' (mixq reads float32, float64, int8-64, uint8 and bool arrays)");
}

// The value of `key` in the header dict: the text from after "'key':" up to the matching
// delimiter (a quoted string, a parenthesised tuple or a bare word).
std::string header_field(const std::string& h, const std::string& key, const std::string& where) {
  size_t p = h.find("'" + key + "'");
  check(p != std::string::npos, where, "npy header has no '" + key + "'");
  p = h.find(':', p + key.size() + 2);
  check(p != std::string::npos, where, "npy header: malformed '" + key + "'");
  p = h.find_first_not_of(" ", p + 1);
  check(p != std::string::npos, where, "npy header: malformed '" + key + "'");
  if (h[p] == '\'' || h[p] == '"') {
    const size_t e = h.find(h[p], p + 1);
    check(e != std::string::npos, where, "npy header: unterminated '" + key + "'");
    return h.substr(p + 1, e - p - 1);
  }
  if (h[p] == '(') {
    const size_t e = h.find(')', p);
    check(e != std::string::npos, where, "npy header: unterminated '" + key + "'");
    return h.substr(p + 1, e - p - 1);
  }
  const size_t e = h.find_first_of(",}", p);
  check(e != std::string::npos, where, "npy header: malformed '" + key + "'");
  std::string v = h.substr(p, e - p);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

Shape parse_shape(const std::string& text, const std::string& where) {
  Shape s;
  size_t p = 0;
  while (true) {
    p = text.find_first_not_of(" ", p);
    if (p == std::string::npos) break;
    int64_t v = -1;
    auto [end, ec] = std::from_chars(text.data() + p, text.data() + text.size(), v);
    check(ec == std::errc() && v >= 0, where, "npy header: bad shape (" + text + ")");
    s.push_back(v);
    p = static_cast<size_t>(end - text.data());
    p = text.find_first_not_of(" ", p);
    if (p == std::string::npos) break;
    check(text[p] == ',', where, "npy header: bad shape (" + text + ")");
    ++p;
  }
  check(s.size() <= 16, where, "npy header: rank " + std::to_string(s.size()) + " is too large");
  return s;
}

// Element (C order of `shape`) of a Fortran-order array: its axes are stored reversed.
void fortran_to_c(const std::byte* src, std::byte* dst, const Shape& shape, size_t item) {
  const size_t r = shape.size();
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> idx(r, 0), fstride(r, 1);
  for (size_t d = 1; d < r; ++d) fstride[d] = fstride[d - 1] * shape[d - 1];
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) off += idx[d] * fstride[d];
    std::memcpy(dst + i * item, src + off * item, item);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

Tensor parse_npy(const std::string& bytes, const std::string& where) {
  check(bytes.size() >= kMagicSize + 4 && std::memcmp(bytes.data(), kMagic, kMagicSize) == 0, where,
        "not a .npy file (bad magic)");
  const int major = static_cast<uint8_t>(bytes[6]);
  check(major >= 1 && major <= 3, where, "unsupported .npy version " + std::to_string(major));
  size_t header_len = 0, start = 0;
  const auto u8 = [&](size_t i) { return static_cast<size_t>(static_cast<uint8_t>(bytes[i])); };
  if (major == 1) {
    header_len = u8(8) | u8(9) << 8;
    start = 10;
  } else {
    check(bytes.size() >= 12, where, "truncated .npy header");
    header_len = u8(8) | u8(9) << 8 | u8(10) << 16 | u8(11) << 24;
    start = 12;
  }
  check(header_len <= bytes.size() - start, where, "truncated .npy header");
  const std::string header = bytes.substr(start, header_len);
  check(header.find('{') != std::string::npos, where, "npy header is not a dict");
  const Descr descr = parse_descr(header_field(header, "descr", where), where);
  const std::string fortran = header_field(header, "fortran_order", where);
  check(fortran == "False" || fortran == "True", where,
        "npy header: fortran_order is '" + fortran + "'");
  const Shape shape = parse_shape(header_field(header, "shape", where), where);
  const size_t item = dtype_size(descr.dtype);
  double declared = static_cast<double>(item);
  for (int64_t d : shape) declared *= static_cast<double>(d);
  check_memory(declared, where, "the array " + shape_str(shape));
  const size_t body = bytes.size() - start - header_len;
  check(declared == static_cast<double>(body), where,
        "the array " + shape_str(shape) + " needs " +
            std::to_string(static_cast<size_t>(declared)) + " bytes of data, the file holds " +
            std::to_string(body));
  Tensor t(descr.dtype, shape);
  const auto* src = reinterpret_cast<const std::byte*>(bytes.data() + start + header_len);
  auto* dst = static_cast<std::byte*>(t.raw());
  if (fortran == "True" && shape.size() > 1)
    fortran_to_c(src, dst, shape, item);
  else if (body)
    std::memcpy(dst, src, body);
  if (descr.swap)
    for (size_t i = 0; i < body; i += item) std::reverse(dst + i, dst + i + item);
  if (descr.dtype == DType::boolean)
    for (size_t i = 0; i < body; ++i)
      check(dst[i] == std::byte{0} || dst[i] == std::byte{1}, where,
            "bool array holds a byte that is neither 0 nor 1");
  return t;
}

Tensor read_npy(const std::string& path) {
  return parse_npy(read_file(path, 2), path);
}

std::vector<std::pair<std::string, Tensor>> parse_npz(const std::string& bytes,
                                                      const std::string& where) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  check(src != nullptr, where, "cannot read the archive");
  zip_t* za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!za) {
    const std::string why = zip_error_strerror(&err);
    zip_source_free(src);
    zip_error_fini(&err);
    throw Error(where, "not a valid .npz (zip) archive: " + why);
  }
  std::unique_ptr<zip_t, int (*)(zip_t*)> archive(za, zip_close);
  std::vector<std::pair<std::string, Tensor>> out;
  std::set<std::string> seen;
  const zip_int64_t n = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    zip_stat_init(&st);
    check(zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st) == 0 &&
              (st.valid & ZIP_STAT_NAME) && (st.valid & ZIP_STAT_SIZE),
          where, "unreadable archive member " + std::to_string(i));
    std::string name = st.name;
    const std::string member = where + ":" + name;
    if (!name.empty() && name.back() == '/') continue;  // a folder entry
    check(name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0, member,
          "is not a .npy member");
    name.resize(name.size() - 4);
    check(seen.insert(name).second, member, "appears twice in the archive");
    check_memory(static_cast<double>(st.size) * 2, member, "the member");
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> f(
        zip_fopen_index(za, static_cast<zip_uint64_t>(i), 0), zip_fclose);
    check(f != nullptr, member, std::string("cannot open: ") + zip_strerror(za));
    std::string data(static_cast<size_t>(st.size), '\0');
    const zip_int64_t got = data.empty() ? 0 : zip_fread(f.get(), data.data(), data.size());
    check(got == static_cast<zip_int64_t>(data.size()), member,
          std::string("cannot read (corrupt or truncated): ") + zip_file_strerror(f.get()));
    char extra = 0;
    check(zip_fread(f.get(), &extra, 1) == 0, member, "is longer than its declared size");
    out.emplace_back(name, parse_npy(data, member));
  }
  check(!out.empty(), where, "the archive holds no arrays");
  return out;
}

std::vector<std::pair<std::string, Tensor>> read_npz(const std::string& path) {
  return parse_npz(read_file(path), path);
}

std::string npy_bytes(const Tensor& t) {
  // Little-endian, or no byte order for single bytes.
  const DTypeTraits& dt = dtype_traits(t.dtype());
  const std::string descr = (dt.size > 1 ? "<" : "|") + std::string(dt.npy);
  std::string shape;
  for (size_t d = 0; d < t.rank(); ++d) shape += (d ? ", " : "") + std::to_string(t.dim(d));
  if (t.rank() == 1) shape += ",";  // Python's one-element tuple
  std::string header =
      std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Padded with spaces to a multiple of 64 bytes including the 10-byte preamble and '\n'.
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic, kMagicSize);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

std::string npz_bytes(const std::vector<std::pair<std::string, Tensor>>& arrays, bool compress) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(nullptr, 0, 0, &err);
  check(src != nullptr, "npz", "cannot create an archive in memory");
  zip_t* za = zip_open_from_source(src, ZIP_TRUNCATE, &err);
  check(za != nullptr, "npz", "cannot create an archive in memory");
  zip_source_keep(src);  // its bytes are read after zip_close
  std::vector<std::string> members;
  members.reserve(arrays.size());  // zip_source_buffer keeps pointers into these until close
  for (const auto& [name, t] : arrays) {
    members.push_back(npy_bytes(t));
    zip_source_t* s = zip_source_buffer(za, members.back().data(), members.back().size(), 0);
    const zip_int64_t i = s ? zip_file_add(za, (name + ".npy").c_str(), s, ZIP_FL_ENC_UTF_8) : -1;
    check(i >= 0, "npz", "cannot add '" + name + "': " + zip_strerror(za));
    zip_set_file_compression(za, static_cast<zip_uint64_t>(i),
                             compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  check(zip_close(za) == 0, "npz", std::string("cannot write the archive: ") + zip_strerror(za));
  std::string out;
  if (zip_source_open(src) == 0) {
    zip_source_seek(src, 0, SEEK_END);
    out.resize(static_cast<size_t>(zip_source_tell(src)));
    zip_source_seek(src, 0, SEEK_SET);
    const zip_int64_t got = zip_source_read(src, out.data(), out.size());
    zip_source_close(src);
    if (got != static_cast<zip_int64_t>(out.size())) out.clear();
  }
  zip_source_free(src);
  check(!out.empty(), "npz", "cannot read the archive back from memory");
  return out;
}

}  // namespace mixq
