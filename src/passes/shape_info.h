// Value shapes as the inference optimiser needs them: can two values be summed without
// broadcasting at every batch size, and what is a value's rank. ONNX shape inference leaves
// gaps (e.g. the output of a Pad whose pads were computed), so the graph is also run once at
// two batch sizes with the fast kernels on zero-filled inputs: a dimension that changes with
// the batch follows it, the others are static.
#pragma once
#include <vector>

#include "ir/graph.h"

namespace mixq {

class ShapeInfo {
 public:
  // Probes the graph when every runtime input has a declared shape whose only dynamic
  // dimension (if any) is the first; otherwise, or when the probe fails, only the declared
  // and inferred static shapes are used.
  explicit ShapeInfo(const Graph& g);

  // True when the probe ran.
  bool probed() const { return probed_; }
  // Rank of value v, -1 when unknown (and for values added to the graph afterwards).
  int rank(int v) const;
  // True when a and b have the same shape whatever the batch size.
  bool same_shape(int a, int b) const;

  // How value v's shape depends on the batch size, as the probe saw it: not at all, through
  // its first dimension alone (which then equals the batch), or otherwise (or unknown).
  enum class BatchUse { none, leading, other };
  BatchUse batch_use(int v) const;
  // Bytes of one batch row of value v (leading values only, else 0).
  int64_t row_bytes(int v) const;

  // The batch sizes the probe uses (not 1, so no dimension equals 1 by accident of the batch).
  static constexpr int64_t kBatchA = 2, kBatchB = 3;

 private:
  bool probe(const Graph& g);

  std::vector<Shape> declared_;     // static shapes (all dims known), per value
  std::vector<int> declared_rank_;  // -1 when unknown
  bool probed_ = false;
  bool dynamic_ = false;  // the probe ran at two batch sizes
  std::vector<DType> dtype_;
  std::vector<Shape> at_a_, at_b_;  // shapes at kBatchA and kBatchB
  std::vector<char> seen_;          // the probe computed the value
};

}  // namespace mixq
