#include "data/folder_dataset.h"

#include <algorithm>
#include <filesystem>

#include "base/error.h"
#include "data/image.h"
#include "data/parallel.h"

namespace fs = std::filesystem;

namespace mixq {

namespace {

bool is_image_name(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto ends = [&](const std::string& e) {
    return name.size() >= e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
  };
  return ends(".jpg") || ends(".jpeg") || ends(".png");
}

// Image files under a class folder, in torchvision's order: sorted(os.walk(dir)) visits folders
// by path string, and each folder's files by name. Folder symlinks inside a class are not
// followed (a cycle would never end).
std::vector<std::string> list_class_images(const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> found;  // (folder, file name)
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  check(!ec, dir.string(), "cannot read folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    check(!ec, dir.string(), "cannot read folder: " + ec.message());
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const fs::path& p = it->path();
    if (is_image_name(p.filename().string()))
      found.emplace_back(p.parent_path().string(), p.filename().string());
  }
  check(!ec, dir.string(), "cannot read folder: " + ec.message());
  std::sort(found.begin(), found.end());
  std::vector<std::string> files;
  for (const auto& [folder, name] : found) files.push_back((fs::path(folder) / name).string());
  return files;
}

}  // namespace

FolderDataset::FolderDataset(const std::string& dir, const DataOptions& options) : dir_(dir) {
  std::error_code ec;
  check(fs::exists(dir, ec), dir, "folder does not exist");
  check(fs::is_directory(dir, ec), dir, "not a folder");
  fs::directory_iterator it(dir, ec), end;
  check(!ec, dir, "cannot read folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    check(!ec, dir, "cannot read folder: " + ec.message());
    std::error_code dec;
    if (it->is_directory(dec)) classes_.push_back(it->path().filename().string());
  }
  check(!ec, dir, "cannot read folder: " + ec.message());
  std::sort(classes_.begin(), classes_.end());
  if (classes_.empty()) {
    // No class subfolders: the images directly in DIR, unlabelled, sorted by name.
    for (fs::directory_iterator f(dir, ec); !ec && f != end; f.increment(ec)) {
      std::error_code fec;
      if (f->is_regular_file(fec) && is_image_name(f->path().filename().string()))
        files_.push_back(f->path().string());
    }
    check(!ec, dir, "cannot read folder: " + ec.message());
    check(!files_.empty(), dir,
          "no class subfolders (DIR/<class>/<image>) and no .jpg, .jpeg or .png images in it");
    std::sort(files_.begin(), files_.end());
  }

  for (size_t c = 0; c < classes_.size(); ++c) {
    const fs::path cdir = fs::path(dir) / classes_[c];
    std::vector<std::string> files = list_class_images(cdir);
    check(!files.empty(), cdir.string(), "class folder has no .jpg, .jpeg or .png images");
    for (auto& f : files) {
      files_.push_back(std::move(f));
      labels_.push_back(static_cast<int64_t>(c));
    }
  }

  pre_.channels = options.channels == 0 ? 3 : options.channels;
  pre_.resize = options.resize;
  pre_.crop_height = options.crop_height;
  pre_.crop_width = options.crop_width;
  pre_.mean = options.mean;
  pre_.std = options.std;
  pre_.validate(dir);
  if (pre_.crop_height > 0) {
    out_size_ = {pre_.crop_height, pre_.crop_width};
  } else {
    // Without a crop the first image sets the size every other one must reach.
    out_size_ = pre_.output_size(decode_image_size(read_file_bytes(files_[0]), files_[0]));
  }
}

Shape FolderDataset::sample_shape() const {
  return {pre_.channels, out_size_.height, out_size_.width};
}

int64_t FolderDataset::label(size_t i) const {
  check(labelled(), description(), "has no labels (images without class subfolders)");
  check(i < labels_.size(), description(), "sample index " + std::to_string(i) + " out of range");
  return labels_[i];
}

std::string FolderDataset::description() const {
  return "folder:" + dir_ + " (" + std::to_string(files_.size()) + " images, " +
         (labelled() ? std::to_string(classes_.size()) + " classes)" : "unlabelled)");
}

Batch FolderDataset::get(const std::vector<size_t>& indices) const {
  Batch b = new_image_batch(indices);
  const Shape s = sample_shape();
  float* out = b.inputs[0].data<float>();
  const int64_t per = s[0] * s[1] * s[2];
  parallel_for_samples(indices.size(), [&](size_t k) {
    const std::string& path = files_[indices[k]];
    pre_.run(decode_image(read_file_bytes(path), path), path, out_size_,
             out + static_cast<int64_t>(k) * per);
  });
  if (labelled())
    for (size_t i : indices) b.labels.push_back(labels_[i]);
  return b;
}

}  // namespace mixq
