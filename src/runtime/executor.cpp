#include "runtime/executor.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>

#include "base/error.h"
#include "ir/internal_names.h"
#include "passes/fuse.h"
#include "passes/optimize.h"

namespace mixq {
namespace {

// For each node, whether run() may let it accumulate its fused sum into that input's buffer:
// that value must be computed by the graph (not an input or constant, whose tensors belong to
// the caller), not be a graph output, be read by no later node, and not be another input of
// the node itself (the conv would overwrite what it reads).
std::vector<bool> in_place_sums(const Graph& g) {
  std::vector<int> last_reader(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].inputs)
      if (v >= 0) last_reader[v] = static_cast<int>(i);
  std::vector<bool> caller_owned(g.values.size(), false);
  for (int v : g.inputs) caller_owned[v] = true;
  for (int v : g.outputs) caller_owned[v] = true;
  std::vector<bool> ok(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const int at = fused_sum_input(n);
    if (n.get_int(names::kSum, 0) == 0 || !n.has_input(at) || n.outputs.empty()) continue;
    const int s = n.inputs[at];
    const int uses = static_cast<int>(std::count(n.inputs.begin(), n.inputs.end(), s));
    ok[i] = !caller_owned[s] && !g.is_constant(s) && g.values[s].producer >= 0 &&
            last_reader[s] == static_cast<int>(i) && uses == 1 && n.outputs[0] != s;
  }
  return ok;
}

// In an optimised executor, nodes whose largest input holds fewer elements than this run on one
// thread. Their work takes microseconds, and on busy shared cores a second thread that every
// kernel's barrier waits for can cost milliseconds (oneDNN partitions work statically).
constexpr int64_t kSerialBelow = int64_t{1} << 16;

// Batch slices: rows chosen so the widest activation of a slice takes about this many bytes
// (it then stays in a core's L2 cache between layers), within [1, kMaxSliceRows].
constexpr int64_t kSliceBytes = int64_t{1} << 20;
constexpr int64_t kMaxSliceRows = 64;

// Sets the OpenMP thread count of the calling thread for one scope.
class ThreadLimit {
 public:
  ThreadLimit(bool active, int threads) : saved_(active ? omp_get_max_threads() : 0) {
    if (active) omp_set_num_threads(threads);
  }
  ~ThreadLimit() {
    if (saved_ > 0) omp_set_num_threads(saved_);
  }
  ThreadLimit(const ThreadLimit&) = delete;
  ThreadLimit& operator=(const ThreadLimit&) = delete;

 private:
  int saved_;
};

}  // namespace

Executor::Executor(const Graph& graph, Impl impl, bool optimize) : graph_(graph) {
  if (optimize && impl == Impl::fast) {
    source_ = graph;
    OptimizeResult r = optimize_for_inference(graph_);
    channels_last_ = std::move(r.channels_last_values);
    optimized_ = true;
    if (r.batch_row_bytes > 0)
      slice_rows_ = std::clamp<int64_t>(kSliceBytes / r.batch_row_bytes, 1, kMaxSliceRows);
  }
  kernels_.reserve(graph_.nodes.size());
  impl_names_.resize(graph_.nodes.size());
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    kernels_.push_back(Registry::get().make(graph_.nodes[i], graph_, impl, &impl_names_[i]));
  sum_in_place_ = in_place_sums(graph_);
}

std::vector<Tensor> Executor::environment() const {
  std::vector<Tensor> env(graph_.values.size());
  for (size_t v = 0; v < graph_.values.size(); ++v)
    if (graph_.values[v].constant) env[v] = *graph_.values[v].constant;
  return env;
}

void Executor::check_input(size_t i, const Tensor& t) const {
  const Value& v = graph_.values[graph_.inputs.at(i)];
  const std::string where = "model input '" + v.name + "'";
  check(t.dtype() == v.dtype, where,
        std::string("expects ") + dtype_name(v.dtype) + ", got " + dtype_name(t.dtype()));
  if (!v.shape_known) return;
  bool ok = t.rank() == v.shape.size();
  for (size_t d = 0; ok && d < v.shape.size(); ++d)
    ok = v.shape[d] < 0 || v.shape[d] == t.shape()[d];
  check(ok, where, "expects shape " + shape_str(v.shape) + ", got " + shape_str(t.shape()));
}

void Executor::run_range(std::vector<Tensor>& env, size_t first, size_t last) {
  run_nodes(env, first, last, false);
}

void Executor::run_nodes(std::vector<Tensor>& env, size_t first, size_t last, bool in_place) {
  last = std::min(last, graph_.nodes.size());
  std::vector<const Tensor*> in;
  std::vector<Tensor*> out;
  const bool threaded = optimized_ && omp_get_max_threads() > 1;
  for (size_t i = first; i < last; ++i) {
    const Node& node = graph_.nodes[i];
    in.clear();
    out.clear();
    int64_t largest = 0;
    for (int v : node.inputs) {
      if (v >= 0 && !env[v].defined())
        throw Error(node.label(), "input '" + graph_.values[v].name + "' has not been computed");
      in.push_back(v >= 0 ? &env[v] : nullptr);
      if (v >= 0) largest = std::max(largest, env[v].numel());
    }
    ThreadLimit serial(threaded && largest < kSerialBelow, 1);
    for (int v : node.outputs) out.push_back(v >= 0 ? &env[v] : nullptr);
    // The sum's tensor must be env's alone: a view or a caller's copy must not change.
    const int s = node.has_input(fused_sum_input(node)) ? node.inputs[fused_sum_input(node)] : -1;
    if (in_place && sum_in_place_[i] && env[s].unique()) {
      Tensor spare = std::move(env[node.outputs[0]]);
      env[node.outputs[0]] = env[s];
      kernels_[i]->forward(in, out);
      // The sum input is dead: it keeps the spare buffer for the next run, not the result.
      env[s] = std::move(spare);
    } else {
      try {
        kernels_[i]->forward(in, out);
      } catch (const Error& e) {
        // An output too large for the memory limit: name the node that asked for it.
        if (e.where() != "tensor") throw;
        throw Error(node.label(), e.cause());
      }
    }
  }
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs) {
  check(inputs.size() == graph_.inputs.size(), graph_.source,
        "model has " + std::to_string(graph_.inputs.size()) + " inputs, got " +
            std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) check_input(i, inputs[i]);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  bool slice = slice_rows_ > 0 && threads > 1 && !inputs.empty();
  for (const Tensor& t : inputs)
    slice = slice && t.rank() > 0 && t.dim(0) == inputs[0].dim(0) && t.dim(0) > 1;
  if (slice) return run_sliced(inputs, threads);
  if (env_.empty()) env_ = environment();
  for (size_t i = 0; i < inputs.size(); ++i) env_[graph_.inputs[i]] = inputs[i];
  run_nodes(env_, 0, graph_.nodes.size(), true);
  std::vector<Tensor> outs;
  for (int v : graph_.outputs) outs.push_back(env_[v]);
  // The caller's inputs are not held past the run, so the next batch's inputs can take their
  // memory (a short last batch would otherwise need both batches' inputs at once).
  for (int v : graph_.inputs) env_[v] = Tensor();
  return outs;
}

void Executor::run_slice(const std::vector<Tensor>& inputs, int64_t first, int64_t rows) {
  if (env_.empty()) env_ = environment();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    Shape s = x.shape();
    const size_t row = x.nbytes() / static_cast<size_t>(s[0]);
    s[0] = rows;
    // Never the caller's tensor: ensure() reuses only storage nobody else holds.
    Tensor& t = env_[graph_.inputs[i]];
    ensure(t, x.dtype(), s);
    std::memcpy(t.raw(), static_cast<const std::byte*>(x.raw()) + first * row, rows * row);
  }
  run_nodes(env_, 0, graph_.nodes.size(), true);
}

std::vector<Tensor> Executor::run_sliced(const std::vector<Tensor>& inputs, int threads) {
  const int64_t n = inputs[0].dim(0);
  const int64_t rows = std::min<int64_t>(slice_rows_, (n + threads - 1) / threads);
  const int64_t slices = (n + rows - 1) / rows;
  threads = static_cast<int>(std::min<int64_t>(threads, slices));
  while (workers_.size() + 1 < static_cast<size_t>(threads))
    workers_.push_back(std::make_unique<Executor>(graph_, Impl::fast));
  std::vector<Tensor>& outs = sliced_outputs_;
  outs.resize(graph_.outputs.size());
  std::atomic<int64_t> next{0};
  std::mutex mu;
  bool sized = false;
  std::exception_ptr error;
  // Threads take slices as they come free, so a thread the OS holds back just takes fewer.
#pragma omp parallel num_threads(threads)
  {
    ThreadLimit one(true, 1);
    const int t = omp_get_thread_num();
    Executor& ex = t == 0 ? *this : *workers_[t - 1];
    try {
      for (int64_t s = next++; s < slices; s = next++) {
        const int64_t first = s * rows, r = std::min(rows, n - first);
        ex.run_slice(inputs, first, r);
        std::vector<const Tensor*> got;
        for (int v : graph_.outputs) {
          const Tensor& y = ex.env_[v];
          check(y.rank() > 0 && y.dim(0) == r, graph_.source,
                "output '" + graph_.values[v].name + "' does not follow the batch");
          got.push_back(&y);
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          for (size_t k = 0; k < got.size() && !sized; ++k) {
            Shape full = got[k]->shape();
            full[0] = n;
            ensure(outs[k], got[k]->dtype(), full);
          }
          sized = true;
        }
        for (size_t k = 0; k < got.size(); ++k) {
          const size_t row = got[k]->nbytes() / static_cast<size_t>(r);
          check(outs[k].nbytes() == row * n && outs[k].dtype() == got[k]->dtype(), graph_.source,
                "output '" + graph_.values[graph_.outputs[k]].name + "' differs between slices");
          std::memcpy(static_cast<std::byte*>(outs[k].raw()) + first * row, got[k]->raw(), r * row);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
      next = slices;  // the other threads stop at their next slice
    }
  }
  if (error) std::rethrow_exception(error);
  return outs;
}

std::vector<std::string> unsupported_ops(const Graph& graph) {
  std::vector<std::string> missing;
  for (const Node& n : graph.nodes) {
    std::string name = op_key(n);
    bool ok = Registry::get().supports(name);
    if (!ok && std::find(missing.begin(), missing.end(), name) == missing.end())
      missing.push_back(name);
  }
  return missing;
}

}  // namespace mixq
