#include "cli/cli.h"

namespace mixq {
int cli_main(int, char**) { return 0; }
}  // namespace mixq
