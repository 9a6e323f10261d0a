// A dataset from an IDX image file [N, H, W] and an IDX label file [N] (MNIST layout). The
// bytes stay in memory (47 MB for Fashion-MNIST's training set); batches are converted on demand.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/preprocess.h"

namespace mixq {

class IdxDataset : public Dataset {
 public:
  // num_classes 0: the largest label + 1. Otherwise every label must be below it.
  // class_names may be empty (then "0", "1", ...).
  IdxDataset(const std::string& images_path, const std::string& labels_path,
             const DataOptions& options, int64_t num_classes = 0,
             std::vector<std::string> class_names = {}, std::string name = "");

  size_t size() const override { return labels_.size(); }
  int64_t num_classes() const override { return num_classes_; }
  Shape sample_shape() const override;
  int64_t label(size_t i) const override;
  std::vector<std::string> class_names() const override { return class_names_; }
  std::string description() const override;
  Batch get(const std::vector<size_t>& indices) const override;

 private:
  std::string images_path_;
  std::string name_;
  int64_t height_ = 0, width_ = 0;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  int64_t num_classes_ = 0;
  std::vector<std::string> class_names_;
  Preprocessing pre_;
  ImageSize out_size_;
};

// The Fashion-MNIST class names, in label order.
const std::vector<std::string>& fashion_mnist_classes();

}  // namespace mixq
