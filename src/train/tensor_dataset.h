// A dataset held in memory as one NCHW float tensor and its labels: synthetic problems in tests
// and benchmarks, and data already decoded by the caller.
#pragma once
#include "data/dataset.h"

namespace mixq {

class TensorDataset : public Dataset {
 public:
  // images: f32 [n, C, H, W]; labels: n values in [0, classes). Throws Error otherwise.
  TensorDataset(Tensor images, std::vector<int64_t> labels, int64_t classes,
                std::string name = "tensor data");

  size_t size() const override { return labels_.size(); }
  int64_t num_classes() const override { return classes_; }
  Shape sample_shape() const override;
  int64_t label(size_t i) const override { return labels_.at(i); }
  std::vector<std::string> class_names() const override;
  std::string description() const override;
  Batch get(const std::vector<size_t>& indices) const override;

 private:
  Tensor images_;
  std::vector<int64_t> labels_;
  int64_t classes_;
  std::string name_;
};

}  // namespace mixq
