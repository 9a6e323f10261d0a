#include "data/dataset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "base/error.h"
#include "base/hash.h"
#include "data/array_dataset.h"
#include "data/folder_dataset.h"
#include "data/idx_dataset.h"

namespace mixq {

Batch Dataset::get_batch(size_t first, size_t count) const {
  check(first <= size() && count <= size() - first, description(),
        "batch [" + std::to_string(first) + ", " + std::to_string(first + count) +
            ") is outside the " + std::to_string(size()) + " samples");
  std::vector<size_t> idx(count);
  std::iota(idx.begin(), idx.end(), first);
  return get(idx);
}

Batch Dataset::new_image_batch(const std::vector<size_t>& indices) const {
  for (size_t i : indices)
    check(i < size(), description(), "sample index " + std::to_string(i) + " out of range");
  const Shape s = sample_shape();
  Batch b;
  b.inputs.emplace_back(DType::f32, Shape{static_cast<int64_t>(indices.size()), s[0], s[1], s[2]});
  return b;
}

double Dataset::sample_bytes() const {
  double b = sizeof(float);
  for (int64_t d : sample_shape()) b *= static_cast<double>(d);
  return b;
}

std::string hash_samples(const Dataset& data, const std::vector<size_t>& indices,
                         size_t per_batch) {
  Hasher h;
  h.add(static_cast<uint64_t>(indices.size()));
  for (size_t first = 0; first < indices.size(); first += per_batch) {
    const size_t last = std::min(indices.size(), first + per_batch);
    const Batch b = data.get(std::vector<size_t>(indices.begin() + first, indices.begin() + last));
    for (const Tensor& t : b.inputs) h.add(t.raw(), t.nbytes());
    h.add(b.labels.data(), b.labels.size() * sizeof(int64_t));
  }
  return h.hex();
}

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

int64_t parse_positive(const std::string& text, const std::string& where, const std::string& all) {
  int64_t v = 0;
  const std::string t = trim(text);
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  check(ec == std::errc() && p == t.data() + t.size() && v > 0, where,
        "'" + all + "' is not a positive size");
  return v;
}

}  // namespace

void check_labels(const Dataset& data, const std::vector<int64_t>& labels, int64_t classes,
                  const std::string& model) {
  for (int64_t y : labels)
    check(y >= 0 && y < classes, data.description(),
          "label " + std::to_string(y) + " is outside the " + std::to_string(classes) +
              " classes of the model's output (" + model + ")");
}

std::vector<float> parse_float_list(const std::string& text, const std::string& where) {
  std::vector<float> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = trim(text.substr(start, comma - start));
    float v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    check(!item.empty() && ec == std::errc() && p == item.data() + item.size(), where,
          "'" + text + "' is not a comma-separated list of numbers");
    check(std::isfinite(v), where, "'" + text + "' holds a value that is not a finite number");
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::pair<int64_t, int64_t> parse_size(const std::string& text, const std::string& where) {
  const size_t x = text.find_first_of("xX");
  if (x == std::string::npos) {
    const int64_t s = parse_positive(text, where, text);
    return {s, s};
  }
  return {parse_positive(text.substr(0, x), where, text),
          parse_positive(text.substr(x + 1), where, text)};
}

std::unique_ptr<Dataset> open_dataset(const std::string& spec, const DataOptions& options) {
  const size_t colon = spec.find(':');
  check(colon != std::string::npos && colon > 0, spec,
        "expected a data spec SCHEME:ARGS (fmnist:test, fmnist:train, idx:IMAGES,LABELS, "
        "folder:DIR, npy:FILE[,LABELS] or npz:FILE)");
  const std::string scheme = spec.substr(0, colon);
  const std::string arg = spec.substr(colon + 1);
  if (scheme == "fmnist") {
    check(arg == "test" || arg == "train", spec,
          "unknown Fashion-MNIST split '" + arg + "' (expected test or train)");
    const std::string base = std::string(kFashionMnistDir) + (arg == "test" ? "/t10k" : "/train");
    const std::string images = base + "-images-idx3-ubyte.gz";
    const std::string labels = base + "-labels-idx1-ubyte.gz";
    std::error_code ec;
    check(std::filesystem::exists(images, ec), images,
          "not found (install the Debian package dataset-fashion-mnist)");
    return std::make_unique<IdxDataset>(images, labels, options, 10, fashion_mnist_classes(), spec);
  }
  if (scheme == "idx") {
    const size_t comma = arg.find(',');
    check(comma != std::string::npos, spec, "expected idx:IMAGES,LABELS (missing comma)");
    check(arg.find(',', comma + 1) == std::string::npos, spec,
          "expected idx:IMAGES,LABELS (more than one comma)");
    const std::string images = arg.substr(0, comma), labels = arg.substr(comma + 1);
    check(!images.empty() && !labels.empty(), spec, "expected idx:IMAGES,LABELS (empty path)");
    return std::make_unique<IdxDataset>(images, labels, options, 0, std::vector<std::string>{},
                                        spec);
  }
  if (scheme == "folder") {
    check(!arg.empty(), spec, "expected folder:DIR (empty path)");
    return std::make_unique<FolderDataset>(arg, options);
  }
  if (scheme == "npy" || scheme == "npz") {
    check(options.mean.empty() && options.std.empty() && options.resize == 0 &&
              options.crop_height == 0 && options.channels == 0,
          spec,
          "arrays are fed as they are: --mean, --std, --resize, --crop and --channels apply to "
          "images only");
    return scheme == "npy" ? open_npy_dataset(arg, spec) : open_npz_dataset(arg, spec);
  }
  throw Error(spec,
              "unknown data scheme '" + scheme + "' (expected fmnist, idx, folder, npy or npz)");
}

}  // namespace mixq
