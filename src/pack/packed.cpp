#include "pack/packed.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/file_io.h"
#include "base/json_int.h"
#include "base/memory.h"
#include "quant/apply.h"
#include "quant/layers.h"
#include "quant/quantizer.h"

namespace mixq {
namespace {

static_assert(std::endian::native == std::endian::little, "the packed format is little-endian");

constexpr char kMagic[8] = {'M', 'I', 'X', 'Q', 'P', 'A', 'C', 'K'};
constexpr size_t kAlign = 64;
// Refuse headers that declare more than this many weights in a layer: no real layer comes close,
// and a corrupt count must not turn into a huge allocation.
constexpr int64_t kMaxLayerElements = int64_t{1} << 32;

size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

uint64_t fnv1a(const char* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 0x100000001b3ull;
  return h;
}

template <typename T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

template <typename T>
T get(const std::string& in, size_t pos) {
  T v;
  std::memcpy(&v, in.data() + pos, sizeof(T));
  return v;
}

// Element i of row r in the weight's flat layout (rows along axis 0 are contiguous).
int64_t element(int row_axis, int64_t rows, int64_t per_row, int64_t r, int64_t i) {
  return row_axis == 0 ? r * per_row + i : i * rows + r;
}

nlohmann::json attrs_json(const Node& n) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : n.attrs) {
    if (auto* i = std::get_if<int64_t>(&value)) j[key] = *i;
    if (auto* f = std::get_if<float>(&value)) j[key] = *f;
    if (auto* v = std::get_if<std::vector<int64_t>>(&value)) j[key] = *v;
    if (auto* s = std::get_if<std::string>(&value)) j[key] = *s;
  }
  return j;
}

}  // namespace

size_t packed_code_bytes(const std::vector<RowQuant>& rows, int64_t row_elements) {
  size_t bytes = 0;
  for (const RowQuant& r : rows) bytes += static_cast<size_t>((row_elements * r.bits + 7) / 8);
  return bytes;
}

PackedModel pack_model(const Graph& g, const QuantConfig& cfg, const std::string& where) {
  check_config_weights(g, cfg, where);
  PackedModel m;
  m.model = g.source;
  for (const QuantLayer& l : find_quant_layers(g)) {
    const LayerConfig* lc = cfg.find(l.name);
    if (!lc || lc->rows.empty()) continue;
    check(static_cast<int64_t>(lc->rows.size()) == l.rows, where,
          "layer '" + l.name + "' has " + std::to_string(l.rows) + " rows, config gives " +
              std::to_string(lc->rows.size()));
    const Node& node = g.nodes[l.node];
    const Tensor& w = g.constant(l.weight);
    PackedLayer p;
    p.name = l.name;
    p.op_type = l.op_type;
    p.weight_shape = w.shape();
    p.row_axis = l.row_axis;
    p.rows = lc->rows;
    p.attrs = attrs_json(node);
    p.input = lc->input;
    if (node.inputs.size() > 2 && g.is_constant(node.inputs[2])) {
      const Tensor& b = g.constant(node.inputs[2]);
      if (b.dtype() == DType::f32 && b.numel() == l.rows)
        p.bias.assign(b.data<float>(), b.data<float>() + b.numel());
    }
    const IntegerWeight iw = integer_weight(w, lc->rows, l.row_axis);
    const int64_t per_row = w.numel() / l.rows;
    p.codes.assign(packed_code_bytes(lc->rows, per_row), 0);
    size_t bit = 0;
    for (int64_t r = 0; r < l.rows; ++r) {
      const RowQuant& rq = lc->rows[r];
      const LevelSet& ls = level_set(rq.scheme, rq.bits);
      for (int64_t i = 0; i < per_row; ++i) {
        const int64_t c = iw.codes.data<int64_t>()[element(l.row_axis, l.rows, per_row, r, i)];
        const auto level = static_cast<size_t>(
            std::lower_bound(ls.integers.begin(), ls.integers.end(), c < 0 ? -c : c) -
            ls.integers.begin());
        const uint32_t code =
            (c < 0 ? 1u << (rq.bits - 1) : 0u) | level_field(rq.scheme, rq.bits, level);
        for (int k = 0; k < rq.bits; ++k, ++bit)
          if (code >> k & 1u) p.codes[bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
      }
      bit = (bit + 7) / 8 * 8;  // rows start on a byte
    }
    m.layers.push_back(std::move(p));
  }
  return m;
}

Tensor unpack_weight(const PackedLayer& l) {
  const int64_t rows = static_cast<int64_t>(l.rows.size());
  check(rows > 0, l.name, "no rows");
  Tensor w(DType::f32, l.weight_shape);
  const int64_t per_row = w.numel() / rows;
  check(l.codes.size() == packed_code_bytes(l.rows, per_row), l.name,
        "packed codes have the wrong size");
  size_t bit = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const RowQuant& rq = l.rows[r];
    const LevelSet& ls = level_set(rq.scheme, rq.bits);
    for (int64_t i = 0; i < per_row; ++i) {
      uint32_t code = 0;
      for (int k = 0; k < rq.bits; ++k, ++bit)
        code |= static_cast<uint32_t>(l.codes[bit / 8] >> (bit % 8) & 1u) << k;
      const int64_t level = field_level(rq.scheme, rq.bits, code & ((1u << (rq.bits - 1)) - 1));
      check(level >= 0, l.name,
            "row " + std::to_string(r) + " holds a code that is no " + scheme_name(rq.scheme) +
                " level");
      const float mag = ls.magnitudes[static_cast<size_t>(level)] * rq.scale;
      w.data<float>()[element(l.row_axis, rows, per_row, r, i)] =
          code >> (rq.bits - 1) ? -mag : mag;
    }
    bit = (bit + 7) / 8 * 8;
  }
  return w;
}

std::string serialize_packed(const PackedModel& m) {
  nlohmann::json layers = nlohmann::json::array();
  std::string data;
  for (const PackedLayer& l : m.layers) {
    data.resize(align_up(data.size()), '\0');
    nlohmann::json j = {{"name", l.name},
                        {"op_type", l.op_type},
                        {"weight_shape", l.weight_shape},
                        {"row_axis", l.row_axis},
                        {"rows", l.rows.size()},
                        {"has_bias", !l.bias.empty()},
                        {"code_bytes", l.codes.size()},
                        {"offset", data.size()},
                        {"attrs", l.attrs},
                        {"input", l.input ? act_quant_to_json(*l.input) : nlohmann::json()}};
    layers.push_back(j);
    for (const RowQuant& r : l.rows) put(data, static_cast<uint8_t>(r.scheme));
    for (const RowQuant& r : l.rows) put(data, static_cast<uint8_t>(r.bits));
    for (const RowQuant& r : l.rows) put(data, r.scale);
    for (float b : l.bias) put(data, b);
    data.append(reinterpret_cast<const char*>(l.codes.data()), l.codes.size());
  }
  const std::string header = nlohmann::json{
      {"format", "mixq-pack"},
      {"version", PackedModel::kVersion},
      {"model", m.model},
      {"layers", layers}}.dump();
  std::string out(kMagic, sizeof(kMagic));
  put(out, PackedModel::kVersion);
  put(out, uint32_t{0});
  put(out, static_cast<uint64_t>(header.size()));
  out += header;
  out.resize(align_up(out.size()), '\0');
  out += data;
  put(out, fnv1a(out.data(), out.size()));
  return out;
}

PackedModel parse_packed(const std::string& in, const std::string& where) {
  check(in.size() >= 32 && std::memcmp(in.data(), kMagic, sizeof(kMagic)) == 0, where,
        "not a mixq packed file (no MIXQPACK magic)");
  const auto version = get<uint32_t>(in, 8);
  check(version == PackedModel::kVersion, where,
        "packed format version " + std::to_string(version) + ", this mixq reads " +
            std::to_string(PackedModel::kVersion));
  check(get<uint64_t>(in, in.size() - 8) == fnv1a(in.data(), in.size() - 8), where,
        "checksum mismatch (truncated or corrupt file)");
  const auto header_bytes = get<uint64_t>(in, 16);
  check(header_bytes <= in.size() - 32, where, "header runs past the end of the file");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(in.substr(24, header_bytes));
  } catch (const std::exception& e) {
    throw Error(where, std::string("bad header: ") + e.what());
  }
  const size_t data_start = align_up(24 + header_bytes), data_end = in.size() - 8;
  check(data_start <= data_end, where, "data section missing");
  PackedModel m;
  try {
    m.model = h.at("model").get<std::string>();
    for (const nlohmann::json& j : h.at("layers")) {
      PackedLayer l;
      l.name = j.at("name").get<std::string>();
      const std::string lw = where + ": layer '" + l.name + "'";
      l.op_type = j.at("op_type").get<std::string>();
      check(json_int_fits<Shape>(j.at("weight_shape")) && json_int_fits<int>(j.at("row_axis")) &&
                json_int_fits<int64_t>(j.at("rows")) && json_int_fits<size_t>(j.at("code_bytes")) &&
                json_int_fits<size_t>(j.at("offset")),
            lw, "bad header: sizes and offsets must be integers");
      l.weight_shape = j.at("weight_shape").get<Shape>();
      l.row_axis = j.at("row_axis").get<int>();
      l.attrs = j.at("attrs");
      if (!j.at("input").is_null()) l.input = act_quant_from_json(j.at("input"), lw);
      const auto rows = j.at("rows").get<int64_t>();
      int64_t numel = 1;
      for (int64_t d : l.weight_shape) {
        check(d > 0 && d <= kMaxLayerElements && numel <= kMaxLayerElements / d, lw,
              "absurd weight shape");
        numel *= d;
      }
      check_memory(static_cast<double>(numel) * sizeof(float), lw, "unpacking its weights");
      check(l.row_axis == 0 || l.row_axis == 1, lw, "row axis must be 0 or 1");
      check(static_cast<int64_t>(l.weight_shape.size()) > l.row_axis &&
                rows == l.weight_shape[static_cast<size_t>(l.row_axis)],
            lw, "row count does not match the weight shape");
      const bool has_bias = j.at("has_bias").get<bool>();
      const auto code_bytes = j.at("code_bytes").get<size_t>();
      const auto offset = j.at("offset").get<size_t>();
      const size_t need = static_cast<size_t>(rows) * (has_bias ? 10 : 6) + code_bytes;
      check(offset <= data_end - data_start && need <= data_end - data_start - offset, lw,
            "data runs past the end of the file");
      size_t pos = data_start + offset;
      l.rows.resize(static_cast<size_t>(rows));
      for (RowQuant& r : l.rows) {
        const auto s = get<uint8_t>(in, pos++);
        check(s < kSchemeCount, lw, "unknown scheme code " + std::to_string(s));
        r.scheme = static_cast<Scheme>(s);
      }
      for (RowQuant& r : l.rows) {
        r.bits = get<uint8_t>(in, pos++);
        check(r.bits >= kMinBits && r.bits <= kMaxBits, lw,
              "bit-width " + std::to_string(r.bits) + " outside 2..8");
      }
      for (RowQuant& r : l.rows) {
        r.scale = get<float>(in, pos);
        pos += 4;
        check(std::isfinite(r.scale) && r.scale > 0, lw, "scale must be positive and finite");
      }
      if (has_bias) {
        l.bias.resize(static_cast<size_t>(rows));
        std::memcpy(l.bias.data(), in.data() + pos, 4 * l.bias.size());
        pos += 4 * l.bias.size();
      }
      check(code_bytes == packed_code_bytes(l.rows, numel / rows), lw,
            "packed codes have the wrong size");
      l.codes.assign(in.begin() + static_cast<std::ptrdiff_t>(pos),
                     in.begin() + static_cast<std::ptrdiff_t>(pos + code_bytes));
      m.layers.push_back(std::move(l));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(where, std::string("bad header: ") + e.what());
  }
  return m;
}

void save_packed(const PackedModel& m, const std::string& path) {
  write_file_atomic(path, serialize_packed(m));
}

PackedModel load_packed(const std::string& path) {
  return parse_packed(read_file(path), path);
}

}  // namespace mixq
