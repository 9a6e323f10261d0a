#include "cli/data_args.h"

#include "base/error.h"

namespace mixq::cli {

void add_data_options(CLI::App* cmd, DataArgs& a, bool required) {
  auto* d = cmd->add_option("--data", a.spec,
                            "Data: fmnist:test|fmnist:train, idx:IMAGES,LABELS, folder:DIR");
  if (required) d->required();
  cmd->add_option("--mean", a.mean, "Per-channel mean after x/255, e.g. 0.485,0.456,0.406");
  cmd->add_option("--std", a.std, "Per-channel std after x/255, e.g. 0.229,0.224,0.225");
  cmd->add_option("--resize", a.resize, "Resize the shorter side to this (bilinear)")
      ->check(CLI::Range(int64_t{1}, int64_t{16384}));
  cmd->add_option("--crop", a.crop, "Center crop, HxW or S");
  cmd->add_option("--channels", a.channels, "1 (gray) or 3 (RGB); default from the data")
      ->check(CLI::IsMember({1, 3}));
  cmd->add_option("--batch", a.batch, "Batch size")->check(CLI::Range(size_t{1}, size_t{65536}));
  cmd->add_option("--limit", a.limit, "Use only the first N samples (0 = all)");
}

std::unique_ptr<Dataset> open_data(const DataArgs& a) {
  DataOptions o;
  if (!a.mean.empty()) o.mean = parse_float_list(a.mean, "--mean");
  if (!a.std.empty()) o.std = parse_float_list(a.std, "--std");
  for (float s : o.std) check(s > 0, "--std", "values must be positive");
  o.resize = a.resize;
  if (!a.crop.empty()) std::tie(o.crop_height, o.crop_width) = parse_size(a.crop, "--crop");
  o.channels = a.channels;
  return open_dataset(a.spec, o);
}

}  // namespace mixq::cli
