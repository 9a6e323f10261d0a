// Validators of the FPGA flags shared by mixq hw, quantize and calibrate.
#pragma once
#include <CLI/CLI.hpp>

namespace mixq::cli {

// --device: a name from the device table (hw/fpga.h).
CLI::Validator device_validator();
// --ratio: fixed:SP2 like 1:1.5, 2:3, 1.5 or 0.
CLI::Validator ratio_validator();

}  // namespace mixq::cli
