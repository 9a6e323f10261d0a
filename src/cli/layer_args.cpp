#include "cli/layer_args.h"

#include "cli/validators.h"

namespace mixq::cli {

void add_layer_options(CLI::App* cmd, LayerRules& rules) {
  // One value per occurrence, so a positional MODEL after the flag stays positional.
  cmd->add_option("--keep-float", rules.keep_float,
                  "Layers whose name the ECMAScript regex finds (regex_search; '^fc$' for one "
                  "name) stay float: weights and input, not searched (repeatable)")
      ->allow_extra_args(false)
      ->type_name("REGEX")
      ->check(parsed_by([](const std::string& s) { check_layer_rule(s, false, "--keep-float"); },
                        "REGEX"));
  cmd->add_option("--pin", rules.pins,
                  "REGEX=CANDIDATE: layers whose name the regex finds get that candidate (with "
                  "a search, one of the candidates), e.g. conv1=w8 (repeatable)")
      ->allow_extra_args(false)
      ->check(parsed_by([](const std::string& s) { check_layer_rule(s, true, "--pin"); },
                        "REGEX=CANDIDATE"));
}

}  // namespace mixq::cli
