#include "cli/cli.h"

int main(int argc, char** argv) { return mixq::cli_main(argc, argv); }
