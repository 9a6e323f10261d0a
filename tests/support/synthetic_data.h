// A small labelled dataset held in memory, for tests that need data without files.
#pragma once
#include <random>

#include "data/dataset.h"

namespace mixq::test {

class SyntheticDataset : public Dataset {
 public:
  // n samples of shape {c,h,w}; label = argmax of per-class channel sums, so it is learnable.
  SyntheticDataset(size_t n, Shape chw, int64_t classes, uint32_t seed)
      : n_(n), chw_(std::move(chw)), classes_(classes) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0, 1);
    const int64_t per = shape_numel(chw_);
    data_.resize(n * per);
    for (float& v : data_) v = g(rng);
    for (size_t i = 0; i < n; ++i) {
      double best = -1e30;
      int64_t arg = 0;
      for (int64_t k = 0; k < classes_; ++k) {
        double s = 0;
        for (int64_t j = k; j < per; j += classes_) s += data_[i * per + j];
        if (s > best) best = s, arg = k;
      }
      labels_.push_back(arg);
    }
  }
  size_t size() const override { return n_; }
  int64_t num_classes() const override { return classes_; }
  Shape sample_shape() const override { return chw_; }
  int64_t label(size_t i) const override { return labels_.at(i); }
  std::vector<std::string> class_names() const override {
    std::vector<std::string> names;
    for (int64_t k = 0; k < classes_; ++k) names.push_back("class" + std::to_string(k));
    return names;
  }
  std::string description() const override { return "synthetic"; }
  Batch get(const std::vector<size_t>& indices) const override {
    Shape s = {static_cast<int64_t>(indices.size())};
    s.insert(s.end(), chw_.begin(), chw_.end());
    Batch b;
    b.inputs = {Tensor(DType::f32, s)};
    const int64_t per = shape_numel(chw_);
    for (size_t i = 0; i < indices.size(); ++i) {
      std::copy(data_.begin() + indices[i] * per, data_.begin() + (indices[i] + 1) * per,
                b.inputs[0].data<float>() + i * per);
      b.labels.push_back(labels_[indices[i]]);
    }
    return b;
  }

 private:
  size_t n_;
  Shape chw_;
  int64_t classes_;
  std::vector<float> data_;
  std::vector<int64_t> labels_;
};

}  // namespace mixq::test
