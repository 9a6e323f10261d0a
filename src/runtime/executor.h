// Executor: builds one kernel per node and runs the graph over an environment holding one tensor
// per value. Any node range can be run, so callers can cache activations and re-run only the part
// of the network downstream of a change.
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
  // Throws Error naming the first node no implementation accepts.
  explicit Executor(const Graph& graph, Impl impl = Impl::fast);

  const Graph& graph() const { return graph_; }
  // The kernel of node i (training runs its backward, see train/backprop.h).
  Kernel& kernel(size_t node) { return *kernels_[node]; }
  // Name of the implementation chosen for node i ("dnnl", "ref", ...).
  const std::string& impl_name(size_t node) const { return impl_names_[node]; }

  // One slot per value, constants filled in, everything else empty.
  std::vector<Tensor> environment() const;
  // Checks a runtime input against the declared shape and dtype of graph input i.
  void check_input(size_t i, const Tensor& t) const;
  // Runs nodes [first, last) over env; every value they read must be present.
  void run_range(std::vector<Tensor>& env, size_t first = 0,
                 size_t last = std::numeric_limits<size_t>::max());
  // Feeds the graph inputs, runs everything, returns the graph outputs.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

 private:
  Graph graph_;
  std::vector<std::unique_ptr<Kernel>> kernels_;
  std::vector<std::string> impl_names_;
  std::vector<Tensor> env_;  // reused by run(inputs) so buffers are allocated once per shape
};

// Lists the op types of a graph that no implementation supports (empty when all are).
std::vector<std::string> unsupported_ops(const Graph& graph);

}  // namespace mixq
