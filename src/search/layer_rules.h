// Per-layer control: layers kept float (--keep-float REGEX) and layers pinned to one candidate
// (--pin REGEX=CANDIDATE). A regex is ECMAScript and is searched in the layer (node) name, so
// 'conv1' matches 'conv1' and 'block.conv1'; anchor it ('^conv1$') for one exact name.
#pragma once
#include <string>
#include <vector>

#include "search/candidates.h"

namespace mixq {

struct LayerRules {
  std::vector<std::string> keep_float;  // regexes
  std::vector<std::string> pins;        // "REGEX=CANDIDATE", candidate as --candidates spells it
  // How errors name the two lists (the CLI's flags, the API's fields).
  std::string keep_float_name = "--keep-float", pin_name = "--pin";
  bool empty() const { return keep_float.empty() && pins.empty(); }
};

// The syntax of one rule (a regex, or with pin REGEX=CANDIDATE); Error naming `where` if bad.
void check_layer_rule(const std::string& text, bool pin, const std::string& where);

// Per layer of `layers`, what the rules fix. One-line Error naming the flag and its text for a
// bad regex or pin, a regex that matches no layer, a layer both kept float and pinned, and a
// layer pinned to two different candidates.
std::vector<LayerFix> resolve_layer_rules(const std::vector<QuantLayer>& layers,
                                          const LayerRules& rules);

// The rules on a search space: a search chooses among the space's candidates, so a pin must name
// one of them (Error otherwise). No rules: the space is left as it is.
void set_layer_rules(SearchSpace& space, const LayerRules& rules);

// The rules on a config made for g (calibrate, quantize without a budget): any candidate pins.
void apply_layer_rules(const Graph& g, const LayerRules& rules, QuantConfig& cfg);

// The fixed layers as JSON for a config's info: {"layer": "float" | candidate}.
nlohmann::json fixes_json(const std::vector<QuantLayer>& layers, const std::vector<LayerFix>& f);

}  // namespace mixq
