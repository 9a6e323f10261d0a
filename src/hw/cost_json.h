// The FPGA cost of a network as JSON (what `mixq hw --json` writes and the report reads).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hw/fpga.h"

namespace mixq::hw {

nlohmann::json cost_json(const Design& design, const std::vector<LayerShape>& layers,
                         const std::vector<RowSplit>& splits, const NetworkCost& cost,
                         const std::string& source);

}  // namespace mixq::hw
