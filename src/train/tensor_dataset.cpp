#include "train/tensor_dataset.h"

#include <cstring>

#include "base/error.h"

namespace mixq {

TensorDataset::TensorDataset(Tensor images, std::vector<int64_t> labels, int64_t classes,
                             std::string name)
    : images_(std::move(images)),
      labels_(std::move(labels)),
      classes_(classes),
      name_(std::move(name)) {
  check(images_.dtype() == DType::f32 && images_.rank() == 4, name_,
        "images must be float32 [n, C, H, W], got " + shape_str(images_.shape()));
  check(images_.dim(0) == static_cast<int64_t>(labels_.size()), name_,
        "image and label counts differ");
  check(classes_ >= 1, name_, "needs at least one class");
  for (int64_t y : labels_) check(y >= 0 && y < classes_, name_, "label outside the classes");
}

Shape TensorDataset::sample_shape() const {
  return {images_.dim(1), images_.dim(2), images_.dim(3)};
}

std::vector<std::string> TensorDataset::class_names() const {
  std::vector<std::string> names;
  for (int64_t c = 0; c < classes_; ++c) names.push_back(std::to_string(c));
  return names;
}

std::string TensorDataset::description() const {
  return name_ + " (" + std::to_string(labels_.size()) + " images)";
}

Batch TensorDataset::get(const std::vector<size_t>& indices) const {
  const Shape s = sample_shape();
  const int64_t per = s[0] * s[1] * s[2];
  Batch b;
  b.inputs.emplace_back(DType::f32, Shape{static_cast<int64_t>(indices.size()), s[0], s[1], s[2]});
  const float* src = images_.data<float>();
  float* dst = b.inputs[0].data<float>();
  for (size_t i = 0; i < indices.size(); ++i) {
    check(indices[i] < labels_.size(), name_,
          "sample index " + std::to_string(indices[i]) + " out of range");
    std::memcpy(dst + i * per, src + indices[i] * per, sizeof(float) * per);
    b.labels.push_back(labels_[indices[i]]);
  }
  return b;
}

}  // namespace mixq
