#include "cli/commands.h"

namespace mixq::cli {
void add_eval(CLI::App&, Action&) {}
}  // namespace mixq::cli
