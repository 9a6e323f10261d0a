// The data options every command that reads a dataset accepts.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "data/dataset.h"

namespace mixq::cli {

struct DataArgs {
  std::string spec;
  std::string mean, std, crop;
  int64_t resize = 0;
  int64_t channels = 0;
  size_t batch = 256;
  size_t limit = 0;
};

// Adds --data (required when `required`), --mean, --std, --resize, --crop, --channels, --batch,
// --limit to a subcommand.
void add_data_options(CLI::App* cmd, DataArgs& a, bool required = true);
// Opens the dataset the options describe.
std::unique_ptr<Dataset> open_data(const DataArgs& a);

}  // namespace mixq::cli
