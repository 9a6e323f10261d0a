#pragma once

namespace mixq {
int cli_main(int argc, char** argv);
}
