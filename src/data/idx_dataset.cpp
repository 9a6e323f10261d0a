#include "data/idx_dataset.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "data/idx.h"
#include "data/parallel.h"

namespace mixq {

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

IdxDataset::IdxDataset(const std::string& images_path, const std::string& labels_path,
                       const DataOptions& options, int64_t num_classes,
                       std::vector<std::string> class_names, std::string name)
    : images_path_(images_path), name_(std::move(name)), class_names_(std::move(class_names)) {
  IdxArray images = read_idx(images_path, 3);
  IdxArray labels = read_idx(labels_path, 1);
  check(labels.dims[0] == images.dims[0], labels_path,
        "has " + std::to_string(labels.dims[0]) + " labels but " + images_path + " has " +
            std::to_string(images.dims[0]) + " images");
  height_ = images.dims[1];
  width_ = images.dims[2];
  pixels_ = std::move(images.data);
  labels_.assign(labels.data.begin(), labels.data.end());

  if (num_classes > 0) {
    for (size_t i = 0; i < labels_.size(); ++i)
      check(labels_[i] < num_classes, labels_path,
            "label " + std::to_string(labels_[i]) + " of sample " + std::to_string(i) +
                " is outside 0.." + std::to_string(num_classes - 1));
    num_classes_ = num_classes;
  } else {
    num_classes_ = *std::max_element(labels_.begin(), labels_.end()) + 1;
  }
  if (class_names_.empty())
    for (int64_t c = 0; c < num_classes_; ++c) class_names_.push_back(std::to_string(c));
  check(static_cast<int64_t>(class_names_.size()) == num_classes_, images_path,
        "class name count does not match the class count");

  pre_.channels = options.channels == 0 ? 1 : options.channels;
  pre_.resize = options.resize;
  pre_.crop_height = options.crop_height;
  pre_.crop_width = options.crop_width;
  pre_.mean = options.mean;
  pre_.std = options.std;
  pre_.validate(description());
  out_size_ = pre_.output_size({height_, width_});
}

Shape IdxDataset::sample_shape() const {
  return {pre_.channels, out_size_.height, out_size_.width};
}

int64_t IdxDataset::label(size_t i) const {
  check(i < labels_.size(), description(), "sample index " + std::to_string(i) + " out of range");
  return labels_[i];
}

std::string IdxDataset::description() const {
  return (name_.empty() ? images_path_ : name_) + " (" + std::to_string(labels_.size()) +
         " images)";
}

Batch IdxDataset::get(const std::vector<size_t>& indices) const {
  Batch b = new_image_batch(indices);
  const Shape s = sample_shape();
  float* out = b.inputs[0].data<float>();
  const int64_t per = s[0] * s[1] * s[2];
  const size_t src_size = static_cast<size_t>(height_ * width_);
  parallel_for_samples(indices.size(), [&](size_t k) {
    Image img;
    img.height = height_;
    img.width = width_;
    img.channels = 1;
    const uint8_t* src = pixels_.data() + indices[k] * src_size;
    img.pixels.assign(src, src + src_size);
    pre_.run(std::move(img), images_path_, out_size_, out + static_cast<int64_t>(k) * per);
  });
  for (size_t i : indices) b.labels.push_back(labels_[i]);
  return b;
}

}  // namespace mixq
