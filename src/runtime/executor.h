// Executor: builds one kernel per node and runs the graph over an environment holding one tensor
// per value. Any node range can be run, so callers can cache activations and re-run only the part
// of the network downstream of a change.
//
// Optimisation is an explicit choice: with optimize, the fast executor runs its own optimised
// copy of the graph (passes/optimize.h: fused convs, channels-last chains), and run() lets
// fused residual sums accumulate in place and, when the graph keeps batch rows apart
// (passes/batch_rows.h), spreads slices of a large batch over the OpenMP threads, each running
// the whole graph on one thread (no barrier per layer, activations that fit in cache). graph() then
// returns that copy and node indices refer to it; value ids of the input graph keep their meaning,
// so a caller may still feed and read values by the ids (or names) it knows, but an intermediate
// value may hold NHWC data (channels_last()) and a value fused away is never computed.
#pragma once
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ops/kernel.h"

namespace mixq {

class Executor {
 public:
  // Throws Error naming the first node no implementation accepts. The reference executor is the
  // specification and never optimises.
  explicit Executor(const Graph& graph, Impl impl = Impl::fast, bool optimize = false);

  const Graph& graph() const { return graph_; }
  // The graph as given, before optimisation (graph() itself when not optimised): the one to
  // run with the reference kernels when a result must be explained node by node.
  const Graph& source_graph() const { return optimized_ ? source_ : graph_; }
  bool optimized() const { return optimized_; }
  // Value v of graph() holds channels-last data where the ONNX value is channels-first.
  bool channels_last(int v) const {
    return v >= 0 && static_cast<size_t>(v) < channels_last_.size() && channels_last_[v];
  }
  // The kernel of node i (training runs its backward, see train/backprop.h).
  Kernel& kernel(size_t node) { return *kernels_[node]; }
  // Node i accumulates its fused residual sum in place during run() (when the sum's buffer
  // turns out to be the environment's alone).
  bool sums_in_place(size_t node) const { return sum_in_place_.at(node); }
  // Most rows of a batch slice run() gives one thread; 0 when batches are never sliced.
  int64_t batch_slice_rows() const { return slice_rows_; }
  // Name of the implementation chosen for node i ("dnnl", "ref", ...).
  const std::string& impl_name(size_t node) const { return impl_names_[node]; }

  // One slot per value, constants filled in, everything else empty.
  std::vector<Tensor> environment() const;
  // Checks a runtime input against the declared shape and dtype of graph input i.
  void check_input(size_t i, const Tensor& t) const;
  // Runs nodes [first, last) over env; every value they read must be present. Every value the
  // range computes is left in env, correct, so env can serve as a cache of activations.
  void run_range(std::vector<Tensor>& env, size_t first = 0,
                 size_t last = std::numeric_limits<size_t>::max());
  // Feeds the graph inputs, runs everything, returns the graph outputs.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

 private:
  void run_nodes(std::vector<Tensor>& env, size_t first, size_t last, bool in_place);
  std::vector<Tensor> run_sliced(const std::vector<Tensor>& inputs, int threads);
  // Runs rows [first, first + rows) of the inputs through the graph into env_.
  void run_slice(const std::vector<Tensor>& inputs, int64_t first, int64_t rows);

  Graph graph_;
  Graph source_;  // the input graph, kept when graph_ is an optimised copy (tensors shared)
  bool optimized_ = false;
  std::vector<bool> channels_last_;
  std::vector<std::unique_ptr<Kernel>> kernels_;
  std::vector<std::string> impl_names_;
  // Per node: inputs[3] of a fused residual sum that no later node, and no caller, reads; run()
  // hands its buffer to the output so the conv accumulates into it.
  std::vector<bool> sum_in_place_;
  std::vector<Tensor> env_;  // reused by run(inputs) so buffers are allocated once per shape
  int64_t slice_rows_ = 0;
  // Kernels and environments of threads 1.. for batch slices (built on first use); thread 0
  // uses this executor's own.
  std::vector<std::unique_ptr<Executor>> workers_;
  std::vector<Tensor> sliced_outputs_;
};

// Lists the op types of a graph that no implementation supports (empty when all are).
std::vector<std::string> unsupported_ops(const Graph& graph);

}  // namespace mixq
