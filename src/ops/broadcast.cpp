#include "ops/broadcast.h"

namespace mixq {

Shape broadcast_all(const std::vector<Shape>& shapes, const std::string& where) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const Shape& s : shapes) {
    const size_t off = rank - s.size();
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[off + i];
      if (s[i] == o || s[i] == 1) continue;
      if (o != 1) {
        std::string list;
        for (const Shape& t : shapes) list += (list.empty() ? "" : " with ") + shape_str(t);
        throw Error(where, "cannot broadcast " + list);
      }
      o = s[i];
    }
  }
  return out;
}

BroadcastLoop::BroadcastLoop(const Shape& out, const std::vector<Shape>& ins) {
  const size_t k = ins.size();
  step_.assign(k, 0);
  // Keep the output dimensions larger than 1 with each operand's strides along them.
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> strides(k);
  std::vector<std::vector<int64_t>> all(k);
  for (size_t i = 0; i < k; ++i) all[i] = broadcast_strides(ins[i], out);
  for (size_t j = 0; j < out.size(); ++j) {
    if (out[j] == 1) continue;
    if (out[j] == 0) {
      rows_ = 0;
      row_len_ = 0;
      return;
    }
    dims.push_back(out[j]);
    for (size_t i = 0; i < k; ++i) strides[i].push_back(all[i][j]);
  }
  // Merge a dimension into the next inner one when every operand is contiguous across both.
  std::vector<int64_t> mdims;
  std::vector<std::vector<int64_t>> mstrides(k);
  for (size_t j = 0; j < dims.size(); ++j) {
    bool merge = !mdims.empty();
    for (size_t i = 0; i < k && merge; ++i) merge = mstrides[i].back() == strides[i][j] * dims[j];
    if (merge) {
      mdims.back() *= dims[j];
      for (size_t i = 0; i < k; ++i) mstrides[i].back() = strides[i][j];
    } else {
      mdims.push_back(dims[j]);
      for (size_t i = 0; i < k; ++i) mstrides[i].push_back(strides[i][j]);
    }
  }
  if (!mdims.empty()) {
    row_len_ = mdims.back();
    for (size_t i = 0; i < k; ++i) step_[i] = mstrides[i].back();
    mdims.pop_back();
    for (auto& s : mstrides) s.pop_back();
  }
  dims_ = mdims;
  rows_ = shape_numel(dims_);
  const size_t d = dims_.size();
  strides_.assign(k * d, 0);
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < d; ++j) strides_[i * d + j] = mstrides[i][j];
}

bool block_layout(const Shape& small, const Shape& out, BlockLayout* layout) {
  if (small.size() > out.size()) return false;
  const size_t off = out.size() - small.size();
  auto dim = [&](size_t j) { return j < off ? int64_t{1} : small[j - off]; };
  int first = -1, last = -1;
  for (size_t j = 0; j < out.size(); ++j) {
    if (dim(j) == 1) continue;
    if (dim(j) != out[j]) return false;
    if (first < 0) first = static_cast<int>(j);
    last = static_cast<int>(j);
  }
  BlockLayout l;
  if (first < 0) {  // a single element
    l.inner = shape_numel(out);
  } else {
    for (int j = first; j <= last; ++j)
      if (dim(j) != out[j]) return false;  // a broadcast dimension inside the block
    for (int j = 0; j < first; ++j) l.outer *= out[j];
    for (int j = first; j <= last; ++j) l.mid *= out[j];
    for (size_t j = last + 1; j < out.size(); ++j) l.inner *= out[j];
  }
  *layout = l;
  return true;
}

}  // namespace mixq
