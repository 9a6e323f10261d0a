// --keep-float and --pin: per-layer control of the commands that quantize or allocate.
#pragma once
#include <CLI/CLI.hpp>

#include "search/layer_rules.h"

namespace mixq::cli {

void add_layer_options(CLI::App* cmd, LayerRules& rules);

}  // namespace mixq::cli
