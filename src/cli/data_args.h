// The data options every command that reads a dataset accepts.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "base/file_io.h"
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
// and --limit when the command honours it, to a subcommand.
void add_data_options(CLI::App* cmd, DataArgs& a, bool required = true, bool limit = true);
// Opens the dataset the options describe.
std::unique_ptr<Dataset> open_data(const DataArgs& a);
// The files a data spec reads (idx:IMAGES,LABELS, folder:DIR), for check_no_overwrite.
std::vector<InputFile> data_inputs(const std::string& spec, const std::string& flag);

}  // namespace mixq::cli
