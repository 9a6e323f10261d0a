// torchvision's ImageFolder: DIR/<class>/**/<image>. Classes are the sorted subfolder names;
// within a class, images are ordered as torchvision's sorted os.walk gives them (the class
// folder's own files by name, then each subfolder's, folders in path order). Only .jpg, .jpeg
// and .png files (any case) count. Images are decoded only when a batch asks for them. A folder
// without class subfolders holds unlabelled images: the files directly in it, sorted by name.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/preprocess.h"

namespace mixq {

class FolderDataset : public Dataset {
 public:
  FolderDataset(const std::string& dir, const DataOptions& options);

  size_t size() const override { return files_.size(); }
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  bool labelled() const override { return !classes_.empty(); }
  Shape sample_shape() const override;
  int64_t label(size_t i) const override;
  std::vector<std::string> class_names() const override { return classes_; }
  std::string description() const override;
  Batch get(const std::vector<size_t>& indices) const override;

  const std::string& file(size_t i) const { return files_.at(i); }

 private:
  std::string dir_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
  Preprocessing pre_;
  ImageSize out_size_;
};

}  // namespace mixq
