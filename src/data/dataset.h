// Datasets: samples streamed as batches of model inputs, with class labels when the data has
// them. open_dataset() turns a data spec string (as the CLI accepts it) into one:
//   fmnist:test | fmnist:train   Debian's Fashion-MNIST (package dataset-fashion-mnist)
//   idx:IMAGES,LABELS            any unsigned-byte IDX pair (raw or gzip)
//   folder:DIR                   one subfolder per class (JPEG / PNG), torchvision ImageFolder;
//                                images directly in DIR: unlabelled
//   npy:FILE[,LABELS]            one array [N, ...] fed as is (no preprocessing), labels [N]
//   npz:FILE                     arrays [N, ...] keyed by model input name (numpy's arr_0,
//                                arr_1, ... feed the inputs in order), optional 'labels' [N]
// Image sources give one float NCHW input after preprocessing; arrays are raw model inputs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mixq {

struct Batch {
  std::vector<Tensor> inputs;      // one per input, each [n, ...]
  std::vector<std::string> names;  // the inputs' names; empty: positional (the model's order)
  std::vector<int64_t> labels;     // n class indices; empty when the data has no labels
  size_t size() const { return inputs.empty() ? 0 : static_cast<size_t>(inputs[0].dim(0)); }
};

class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual size_t size() const = 0;
  // 0 when the data has no labels.
  virtual int64_t num_classes() const = 0;
  virtual bool labelled() const { return true; }
  // One sample of the first input after preprocessing: {C, H, W} for images.
  virtual Shape sample_shape() const = 0;
  // Bytes of one sample over all inputs (memory planning).
  virtual double sample_bytes() const;
  // Label of sample i without decoding it (Error when the data has no labels).
  virtual int64_t label(size_t i) const = 0;
  virtual std::vector<std::string> class_names() const = 0;
  // What this is, for messages ("folder:/data/test (10000 images)").
  virtual std::string description() const = 0;

  // Samples at these indices, in this order (any order, repeats allowed). Only these samples are
  // decoded, so memory stays bounded by the batch. Throws Error naming a bad file or index.
  virtual Batch get(const std::vector<size_t>& indices) const = 0;

  // Samples [first, first + count).
  Batch get_batch(size_t first, size_t count) const;

 protected:
  // For get() of image data: checks every index is below size() and returns a batch holding
  // one zeroed f32 input [n, C, H, W] of sample_shape() to decode the samples into.
  Batch new_image_batch(const std::vector<size_t>& indices) const;
};

// Content hash (16 hex digits) of the samples at these indices in this order, inputs after
// preprocessing and labels, decoded `per_batch` at a time: resumes compare data by content.
std::string hash_samples(const Dataset& data, const std::vector<size_t>& indices,
                         size_t per_batch = 64);

struct DataOptions {
  std::vector<float> mean;  // 1 or C values; empty = 0
  std::vector<float> std;   // 1 or C values; empty = 1
  int64_t resize = 0;       // shorter side to this (PIL bilinear); 0 = off
  int64_t crop_height = 0;  // center crop; 0 = off
  int64_t crop_width = 0;
  int64_t channels = 0;  // 1 or 3; 0 = the source's default (3 for folders, 1 for IDX)
};

// Parses a comma-separated list of numbers ("0.485,0.456,0.406"); Error(where, ...) on bad text.
// Throws Error naming the data, the label and the class count when a label of `data` is not
// one of the `classes` outputs of `model`: the data, not the model, holds the bad value.
void check_labels(const Dataset& data, const std::vector<int64_t>& labels, int64_t classes,
                  const std::string& model);

std::vector<float> parse_float_list(const std::string& text, const std::string& where);
// Parses "HxW" or "S" (square) into {H, W}.
std::pair<int64_t, int64_t> parse_size(const std::string& text, const std::string& where);

// Where Debian's dataset-fashion-mnist installs its files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Opens a data spec (see the top of this file); Error naming the spec for an unknown scheme or
// malformed spec, and naming the file for unreadable or invalid data.
std::unique_ptr<Dataset> open_dataset(const std::string& spec, const DataOptions& options = {});

}  // namespace mixq
