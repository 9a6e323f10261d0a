#include "cli/data_args.h"

#include "base/error.h"
#include "cli/validators.h"

namespace mixq::cli {

void add_data_options(CLI::App* cmd, DataArgs& a, bool required, bool limit) {
  auto* d = cmd->add_option("--data", a.spec,
                            "Data: fmnist:test|fmnist:train, idx:IMAGES,LABELS, folder:DIR, "
                            "npy:FILE[,LABELS], npz:FILE (arrays by input name, optional "
                            "'labels')")
                ->type_name(kSpecType);
  if (required) d->required();
  cmd->add_option("--mean", a.mean, "Per-channel mean after x/255, e.g. 0.485,0.456,0.406")
      ->check(parsed_by([](const std::string& s) { parse_float_list(s, "--mean"); }, "MEANS"));
  cmd->add_option("--std", a.std, "Per-channel std after x/255, e.g. 0.229,0.224,0.225")
      ->check(parsed_by(
          [](const std::string& s) {
            for (float v : parse_float_list(s, "--std"))
              check(v > 0, "", "values must be positive");
          },
          "STDS"));
  cmd->add_option("--resize", a.resize, "Resize the shorter side to this (bilinear)")
      ->check(CLI::Range(int64_t{1}, int64_t{16384}));
  cmd->add_option("--crop", a.crop, "Center crop, HxW or S")
      ->check(parsed_by([](const std::string& s) { parse_size(s, "--crop"); }, "SIZE"));
  cmd->add_option("--channels", a.channels, "1 (gray) or 3 (RGB); default from the data")
      ->check(CLI::IsMember({1, 3}));
  cmd->add_option("--batch", a.batch, "Batch size")->check(CLI::Range(size_t{1}, size_t{65536}));
  // Commands that sample their own subsets (--calib-samples, --samples) do not offer it.
  if (limit) cmd->add_option("--limit", a.limit, "Use only the first N samples (0 = all)");
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

std::vector<InputFile> data_inputs(const std::string& spec, const std::string& flag) {
  const std::string what = flag + " data";
  if (spec.rfind("folder:", 0) == 0 || spec.rfind("npz:", 0) == 0)
    return {{spec.substr(spec.find(':') + 1), what}};
  if (spec.rfind("idx:", 0) != 0 && spec.rfind("npy:", 0) != 0) return {};
  const size_t colon = spec.find(':') + 1, comma = spec.find(',');
  if (comma == std::string::npos) return {{spec.substr(colon), what}};
  return {{spec.substr(colon, comma - colon), what}, {spec.substr(comma + 1), what}};
}

}  // namespace mixq::cli
