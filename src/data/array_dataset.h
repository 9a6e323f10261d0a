// Samples held as arrays in memory, fed to the model as they are (no preprocessing): the npy:
// and npz: data specs. Every array is [N, ...] over the same N samples; labels, when present,
// are N integer class indices.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"

namespace mixq {

class ArrayDataset : public Dataset {
 public:
  // names empty: the arrays are positional (the model's inputs in order). labels may be an
  // undefined tensor (no labels). `name` describes the data in messages ("npz:calib.npz").
  // Error(name, ...) when the arrays disagree on N, a rank-0 array, or bad labels.
  ArrayDataset(std::vector<std::string> names, std::vector<Tensor> arrays, const Tensor& labels,
               std::string name);

  size_t size() const override { return size_; }
  int64_t num_classes() const override { return num_classes_; }
  bool labelled() const override { return !labels_.empty(); }
  Shape sample_shape() const override;
  double sample_bytes() const override;
  int64_t label(size_t i) const override;
  std::vector<std::string> class_names() const override;
  std::string description() const override;
  Batch get(const std::vector<size_t>& indices) const override;

 private:
  std::vector<std::string> names_;
  std::vector<Tensor> arrays_;
  std::vector<int64_t> labels_;
  int64_t num_classes_ = 0;
  size_t size_ = 0;
  std::string name_;
};

// npy:FILE[,LABELS] and npz:FILE (see data/dataset.h).
std::unique_ptr<Dataset> open_npy_dataset(const std::string& arg, const std::string& spec);
std::unique_ptr<Dataset> open_npz_dataset(const std::string& path, const std::string& spec);

}  // namespace mixq
