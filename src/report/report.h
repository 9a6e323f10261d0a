// The HTML report: one self-contained file (inline SVG and CSS, no scripts) showing what was
// chosen and why: per-layer bits and scheme shares, the Omega heatmap, accuracy against size for
// every allocator with the uniform baselines, the FPGA latency and utilisation, and the commands
// that produced it. Every input is optional; sections without data are left out.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "quant/config.h"
#include "search/sensitivity.h"

namespace mixq {

struct ReportInputs {
  std::string title = "mixq report";
  std::string model;                                // the model file, shown in the summary
  const QuantConfig* config = nullptr;              // the allocation (per-row schemes and bits)
  const SensitivityData* omega = nullptr;           // mixq sensitivity output
  nlohmann::json sweep;                             // mixq sweep --json output
  nlohmann::json hw;                                // mixq hw --json output
  nlohmann::json facts = nlohmann::json::object();  // extra summary lines (name -> value)
  std::vector<std::string> commands;                // how it was made
};

std::string render_report(const ReportInputs& in);

}  // namespace mixq
