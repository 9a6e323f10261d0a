#include "data/array_dataset.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "base/error.h"
#include "data/npy.h"

namespace mixq {

namespace {

std::vector<int64_t> label_values(const Tensor& t, size_t n, const std::string& where) {
  check(t.dtype() != DType::f32 && t.dtype() != DType::f64 && t.dtype() != DType::boolean, where,
        std::string("labels must be integers, got ") + dtype_name(t.dtype()));
  check(t.rank() == 1 && static_cast<size_t>(t.dim(0)) == n, where,
        "labels must have shape [" + std::to_string(n) + "] (one per sample), got " +
            shape_str(t.shape()));
  std::vector<int64_t> out = t.to_ints();
  for (size_t i = 0; i < out.size(); ++i)
    check(out[i] >= 0, where,
          "label " + std::to_string(out[i]) + " of sample " + std::to_string(i) + " is negative");
  return out;
}

// numpy.savez's names for positional arrays: arr_0, arr_1, ... in order.
bool positional_names(const std::vector<std::string>& names) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] != "arr_" + std::to_string(i)) return false;
  return true;
}

}  // namespace

ArrayDataset::ArrayDataset(std::vector<std::string> names, std::vector<Tensor> arrays,
                           const Tensor& labels, std::string name)
    : names_(std::move(names)), arrays_(std::move(arrays)), name_(std::move(name)) {
  check(!arrays_.empty(), name_, "holds no input arrays");
  check(names_.empty() || names_.size() == arrays_.size(), name_, "names and arrays differ");
  for (size_t i = 0; i < arrays_.size(); ++i) {
    const std::string what = names_.empty() ? "array " + std::to_string(i) : "'" + names_[i] + "'";
    check(arrays_[i].rank() >= 1, name_,
          what + " is a scalar; arrays hold one row per sample [N, ...]");
    check(arrays_[i].dim(0) == arrays_[0].dim(0), name_,
          what + " has " + std::to_string(arrays_[i].dim(0)) + " samples, the first array " +
              std::to_string(arrays_[0].dim(0)));
  }
  size_ = static_cast<size_t>(arrays_[0].dim(0));
  check(size_ > 0, name_, "holds no samples (N = 0)");
  if (labels.defined()) {
    labels_ = label_values(labels, size_, name_ + " labels");
    num_classes_ = *std::max_element(labels_.begin(), labels_.end()) + 1;
  }
}

Shape ArrayDataset::sample_shape() const {
  const Shape& s = arrays_[0].shape();
  return Shape(s.begin() + 1, s.end());
}

double ArrayDataset::sample_bytes() const {
  double b = 0;
  for (const Tensor& a : arrays_) b += static_cast<double>(a.nbytes()) / static_cast<double>(size_);
  return b;
}

int64_t ArrayDataset::label(size_t i) const {
  check(labelled(), name_, "has no labels");
  check(i < size_, description(), "sample index " + std::to_string(i) + " out of range");
  return labels_[i];
}

std::vector<std::string> ArrayDataset::class_names() const {
  std::vector<std::string> out;
  for (int64_t c = 0; c < num_classes_; ++c) out.push_back(std::to_string(c));
  return out;
}

std::string ArrayDataset::description() const {
  std::string inputs;
  for (const std::string& n : names_) inputs += (inputs.empty() ? "" : ", ") + n;
  return name_ + " (" + std::to_string(size_) + " samples" +
         (inputs.empty() ? "" : " of " + inputs) + (labelled() ? ", labelled)" : ", unlabelled)");
}

Batch ArrayDataset::get(const std::vector<size_t>& indices) const {
  for (size_t i : indices)
    check(i < size_, description(), "sample index " + std::to_string(i) + " out of range");
  Batch b;
  b.names = names_;
  for (const Tensor& a : arrays_) {
    Shape s = a.shape();
    s[0] = static_cast<int64_t>(indices.size());
    Tensor t(a.dtype(), s);
    const size_t row = a.nbytes() / size_;
    const auto* src = static_cast<const std::byte*>(a.raw());
    auto* dst = static_cast<std::byte*>(t.raw());
    for (size_t k = 0; k < indices.size() && row; ++k)
      std::memcpy(dst + k * row, src + indices[k] * row, row);
    b.inputs.push_back(std::move(t));
  }
  if (labelled())
    for (size_t i : indices) b.labels.push_back(labels_[i]);
  return b;
}

std::unique_ptr<Dataset> open_npy_dataset(const std::string& arg, const std::string& spec) {
  const size_t comma = arg.find(',');
  const std::string file = arg.substr(0, comma);
  check(!file.empty(), spec, "expected npy:FILE[,LABELS] (empty path)");
  Tensor labels;
  if (comma != std::string::npos) {
    const std::string lfile = arg.substr(comma + 1);
    check(!lfile.empty() && lfile.find(',') == std::string::npos, spec,
          "expected npy:FILE[,LABELS]");
    labels = read_npy(lfile);
  }
  return std::make_unique<ArrayDataset>(std::vector<std::string>{},
                                        std::vector<Tensor>{read_npy(file)}, labels, spec);
}

std::unique_ptr<Dataset> open_npz_dataset(const std::string& path, const std::string& spec) {
  check(!path.empty(), spec, "expected npz:FILE (empty path)");
  std::vector<std::string> names;
  std::vector<Tensor> arrays;
  Tensor labels;
  for (auto& [name, t] : read_npz(path)) {
    if (name == "labels") {
      labels = std::move(t);
      continue;
    }
    names.push_back(name);
    arrays.push_back(std::move(t));
  }
  check(!arrays.empty(), path, "holds only labels, no input arrays");
  if (positional_names(names)) names.clear();
  return std::make_unique<ArrayDataset>(std::move(names), std::move(arrays), labels, spec);
}

}  // namespace mixq
