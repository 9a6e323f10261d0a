#include "quant/config.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "base/error.h"
#include "base/file_io.h"
#include "base/json_int.h"

namespace mixq {

using nlohmann::json;

const LayerConfig* QuantConfig::find(const std::string& name) const {
  for (const auto& l : layers)
    if (l.name == name) return &l;
  return nullptr;
}

LayerConfig* QuantConfig::find(const std::string& name) {
  for (auto& l : layers)
    if (l.name == name) return &l;
  return nullptr;
}

namespace {

// Why a scale cannot be used, or "": JSON numbers are doubles, and 1e39 is one but no float.
std::string scale_problem(double v) {
  if (std::isnan(v)) return "is NaN";
  if (std::isinf(v) || std::fabs(v) > std::numeric_limits<float>::max())
    return fmt::format("{:g} is out of float range (largest {:g})", v,
                       std::numeric_limits<float>::max());
  if (v <= 0) return fmt::format("{:g} must be positive", v);
  if (static_cast<float>(v) == 0) return fmt::format("{:g} is out of float range (rounds to 0)", v);
  return "";
}

}  // namespace

json to_json(const QuantConfig& c) {
  json j;
  j["format"] = "mixq-quant";
  j["version"] = QuantConfig::kVersion;
  j["model"] = c.model;
  if (!c.weights_hash.empty()) j["weights_hash"] = c.weights_hash;
  j["info"] = c.info;
  j["layers"] = json::array();
  for (const auto& l : c.layers) {
    json lj;
    lj["name"] = l.name;
    if (!l.rows.empty()) {
      json w;
      bool uniform = true;
      for (const auto& r : l.rows)
        uniform = uniform && r.scheme == l.rows[0].scheme && r.bits == l.rows[0].bits;
      if (uniform) {
        w["scheme"] = scheme_name(l.rows[0].scheme);
        w["bits"] = l.rows[0].bits;
      } else {
        json schemes = json::array(), bits = json::array();
        for (const auto& r : l.rows) {
          schemes.push_back(scheme_name(r.scheme));
          bits.push_back(r.bits);
        }
        w["row_schemes"] = schemes;
        w["row_bits"] = bits;
      }
      json scales = json::array();
      for (size_t r = 0; r < l.rows.size(); ++r) {
        // JSON has no NaN or Inf: such a scale would be written as null and never read back.
        const std::string bad = scale_problem(l.rows[r].scale);
        check(bad.empty(), "layer '" + l.name + "'",
              "row " + std::to_string(r) + " weight scale " + bad +
                  "; no quantization config is written");
        scales.push_back(l.rows[r].scale);
      }
      w["scales"] = scales;
      lj["weight"] = w;
    }
    if (l.input) {
      const std::string bad = scale_problem(l.input->scale);
      check(bad.empty(), "layer '" + l.name + "'",
            "input scale " + bad + "; no quantization config is written");
      lj["input"] = act_quant_to_json(*l.input);
    }
    j["layers"].push_back(lj);
  }
  return j;
}

namespace {

template <class T>
T get(const json& j, const char* key, const std::string& where) {
  check(j.contains(key), where, std::string("missing '") + key + "'");
  if constexpr (std::is_integral_v<T> || std::is_same_v<T, std::vector<int>>)
    check(json_int_fits<T>(j.at(key)), where, std::string("'") + key + "' has the wrong type");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw Error(where, std::string("'") + key + "' has the wrong type");
  }
}

}  // namespace

json act_quant_to_json(const ActQuant& a) {
  return {{"bits", a.bits},
          {"scale", a.scale},
          {"zero_point", a.zero_point},
          {"qmin", a.qmin},
          {"qmax", a.qmax}};
}

ActQuant act_quant_from_json(const json& a, const std::string& where) {
  ActQuant q;
  q.bits = get<int>(a, "bits", where);
  const double scale = get<double>(a, "scale", where);
  const std::string bad = scale_problem(scale);
  check(bad.empty(), where, "activation scale " + bad);
  q.scale = static_cast<float>(scale);
  q.zero_point = get<int32_t>(a, "zero_point", where);
  q.qmin = get<int32_t>(a, "qmin", where);
  q.qmax = get<int32_t>(a, "qmax", where);
  check(q.bits >= 2 && q.bits <= 16, where, "activation bits outside 2..16");
  check(q.qmin < q.qmax && q.zero_point >= q.qmin && q.zero_point <= q.qmax, where,
        "activation qmin/qmax/zero_point inconsistent");
  check(q.qmax - q.qmin <= (int64_t{1} << q.bits) - 1, where,
        "activation range wider than its bits");
  return q;
}

QuantConfig quant_config_from_json(const json& j, const std::string& where) {
  check(j.is_object(), where, "not a JSON object");
  // value() with a JSON default: a field of another type compares unequal instead of throwing.
  check(j.value("format", json()) == "mixq-quant", where, "not a mixq quantization config");
  const int version = get<int>(j, "version", where);
  check(version >= 1 && version <= QuantConfig::kVersion, where,
        "config version " + std::to_string(version) + " is not supported (expected 1 to " +
            std::to_string(QuantConfig::kVersion) + ")");
  QuantConfig c;
  if (j.contains("model")) c.model = get<std::string>(j, "model", where);
  if (j.contains("weights_hash")) {
    check(version >= 2, where, "'weights_hash' needs version 2");
    c.weights_hash = get<std::string>(j, "weights_hash", where);
    check(c.weights_hash.size() == 16 &&
              c.weights_hash.find_first_not_of("0123456789abcdef") == std::string::npos,
          where, "'weights_hash' must be 16 hex digits");
  }
  if (j.contains("info")) c.info = j["info"];
  check(j.contains("layers") && j["layers"].is_array(), where, "missing 'layers' array");
  for (const auto& lj : j["layers"]) {
    LayerConfig l;
    l.name = get<std::string>(lj, "name", where);
    const std::string lw = where + ": layer '" + l.name + "'";
    check(c.find(l.name) == nullptr, lw, "listed twice");
    if (lj.contains("weight")) {
      const json& w = lj["weight"];
      const auto scales = get<std::vector<double>>(w, "scales", lw);
      check(!scales.empty(), lw, "no scales");
      std::vector<std::string> schemes;
      std::vector<int> bits;
      if (w.contains("row_schemes")) {
        schemes = get<std::vector<std::string>>(w, "row_schemes", lw);
        bits = get<std::vector<int>>(w, "row_bits", lw);
      } else {
        schemes.assign(scales.size(), get<std::string>(w, "scheme", lw));
        bits.assign(scales.size(), get<int>(w, "bits", lw));
      }
      check(schemes.size() == scales.size() && bits.size() == scales.size(), lw,
            "row_schemes, row_bits and scales differ in length");
      for (size_t r = 0; r < scales.size(); ++r) {
        check(bits[r] >= kMinBits && bits[r] <= kMaxBits, lw,
              "bits " + std::to_string(bits[r]) + " outside 2..8");
        const std::string bad = scale_problem(scales[r]);
        check(bad.empty(), lw, "row " + std::to_string(r) + " weight scale " + bad);
        l.rows.push_back({parse_scheme(schemes[r], lw), bits[r], static_cast<float>(scales[r])});
      }
    }
    if (lj.contains("input")) l.input = act_quant_from_json(lj["input"], lw);
    c.layers.push_back(std::move(l));
  }
  return c;
}

QuantConfig parse_quant_config(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number too large
    throw Error(where, std::string("invalid JSON: ") + e.what());
  }
  return quant_config_from_json(j, where);
}

QuantConfig load_quant_config(const std::string& path) {
  return parse_quant_config(read_file(path), path);
}

void save_quant_config(const QuantConfig& c, const std::string& path) {
  write_file_atomic(path, to_json(c).dump(1) + "\n");
}

}  // namespace mixq
