// The quantization config: per layer, the weight quantizer of every row (scheme, bits, scale)
// and the activation quantizer at its input. Stored as versioned JSON (docs/quant-config.md).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "quant/observer.h"
#include "quant/quantizer.h"

namespace mixq {

struct LayerConfig {
  std::string name;               // node name in the model
  std::vector<RowQuant> rows;     // empty: weights stay float
  std::optional<ActQuant> input;  // activation quantizer at the data input; none: float
};

struct QuantConfig {
  // 2: weights_hash. Version 1 files still read.
  static constexpr int kVersion = 2;
  std::string model;  // the model it was made for (informative)
  // Non-empty: the config rounds weights that were moved for it (compensated rounding,
  // fine-tuning) and holds only for a model with exactly these weights (quant/apply.h).
  std::string weights_hash;
  std::vector<LayerConfig> layers;
  nlohmann::json info = nlohmann::json::object();  // how it was made (informative)

  const LayerConfig* find(const std::string& name) const;
  LayerConfig* find(const std::string& name);
  // Weight bits summed over rows weighted by row size: needs the model, see quant/apply.h.
};

nlohmann::json to_json(const QuantConfig& c);
nlohmann::json act_quant_to_json(const ActQuant& a);
ActQuant act_quant_from_json(const nlohmann::json& j, const std::string& where);
// `where` names the source in errors (a file path).
QuantConfig quant_config_from_json(const nlohmann::json& j, const std::string& where);
// The text of a quant.json file; `where` names it in errors.
QuantConfig parse_quant_config(const std::string& text, const std::string& where);
QuantConfig load_quant_config(const std::string& path);
void save_quant_config(const QuantConfig& c, const std::string& path);

}  // namespace mixq
