#include "passes/shape_info.h"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <memory>

#include "ops/kernel.h"

namespace mixq {
namespace {

// The probe's batches are tiny: one thread does them in milliseconds, where two threads that
// meet at every kernel's barrier can take seconds on busy shared cores.
class OneThread {
 public:
  OneThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(saved_); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;

 private:
  int saved_;
};

}  // namespace

ShapeInfo::ShapeInfo(const Graph& g) {
  const size_t n = g.values.size();
  declared_.resize(n);
  declared_rank_.assign(n, -1);
  for (const Value& v : g.values) dtype_.push_back(v.dtype);
  for (size_t v = 0; v < n; ++v) {
    const Value& val = g.values[v];
    if (!val.shape_known) continue;
    declared_rank_[v] = static_cast<int>(val.shape.size());
    const bool all_static =
        std::all_of(val.shape.begin(), val.shape.end(), [](int64_t d) { return d >= 0; });
    if (all_static) declared_[v] = val.shape;
  }
  try {
    OneThread one;
    probed_ = probe(g);
  } catch (const std::exception&) {
    // A graph the probe cannot run on zeros (data-dependent shapes, ...) keeps static shapes.
    probed_ = false;
  }
  if (!probed_) seen_.assign(n, 0);
}

bool ShapeInfo::probe(const Graph& g) {
  bool dynamic = false;
  for (int v : g.inputs) {
    const Value& in = g.values[v];
    if (!in.shape_known) return false;
    for (size_t d = 0; d < in.shape.size(); ++d) {
      if (in.shape[d] >= 0) continue;
      if (d != 0) return false;  // only a dynamic batch can be probed
      dynamic = true;
    }
  }
  std::vector<std::unique_ptr<Kernel>> kernels;
  for (const Node& node : g.nodes) kernels.push_back(Registry::get().make(node, g, Impl::fast));
  // The last node reading each value, so tensors are freed early on big graphs.
  std::vector<int> last_use(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].inputs)
      if (v >= 0) last_use[v] = static_cast<int>(i);
  seen_.assign(g.values.size(), 0);
  auto run = [&](int64_t batch, std::vector<Shape>& shapes) {
    shapes.assign(g.values.size(), Shape{});
    std::vector<Tensor> env(g.values.size());
    auto seed = [&](int v, Tensor t) {
      shapes[v] = t.shape();
      seen_[v] = 1;
      env[v] = std::move(t);
    };
    for (size_t v = 0; v < g.values.size(); ++v)
      if (g.values[v].constant) seed(static_cast<int>(v), *g.values[v].constant);
    for (int v : g.inputs) {
      Shape s = g.values[v].shape;
      if (!s.empty() && s[0] < 0) s[0] = batch;
      seed(v, Tensor(g.values[v].dtype, s));
    }
    std::vector<const Tensor*> in;
    std::vector<Tensor*> out;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const Node& node = g.nodes[i];
      in.clear();
      out.clear();
      for (int v : node.inputs) {
        if (v >= 0 && !env[v].defined()) return false;
        in.push_back(v >= 0 ? &env[v] : nullptr);
      }
      for (int v : node.outputs) out.push_back(v >= 0 ? &env[v] : nullptr);
      kernels[i]->forward(in, out);
      for (int v : node.outputs)
        if (v >= 0 && env[v].defined()) {
          shapes[v] = env[v].shape();
          seen_[v] = 1;
        }
      for (int v : node.inputs)
        if (v >= 0 && last_use[v] == static_cast<int>(i) && !g.values[v].constant)
          env[v] = Tensor();
    }
    return true;
  };
  if (!run(kBatchA, at_a_)) return false;
  if (!dynamic) {
    at_b_ = at_a_;
    return true;
  }
  dynamic_ = run(kBatchB, at_b_);
  return dynamic_;
}

int ShapeInfo::rank(int v) const {
  if (v < 0 || static_cast<size_t>(v) >= declared_rank_.size()) return -1;
  if (probed_ && seen_[v]) return static_cast<int>(at_a_[v].size());
  return declared_rank_[v];
}

ShapeInfo::BatchUse ShapeInfo::batch_use(int v) const {
  if (v < 0 || static_cast<size_t>(v) >= seen_.size() || !probed_ || !seen_[v])
    return BatchUse::other;
  const Shape &a = at_a_[v], &b = at_b_[v];
  if (a == b) return BatchUse::none;
  if (!dynamic_ || a.size() != b.size() || a.empty() || a[0] != kBatchA || b[0] != kBatchB)
    return BatchUse::other;
  return std::equal(a.begin() + 1, a.end(), b.begin() + 1) ? BatchUse::leading : BatchUse::other;
}

int64_t ShapeInfo::row_bytes(int v) const {
  if (batch_use(v) != BatchUse::leading) return 0;
  return shape_numel(at_a_[v]) / kBatchA * static_cast<int64_t>(dtype_size(dtype_[v]));
}

bool ShapeInfo::same_shape(int a, int b) const {
  const int n = static_cast<int>(declared_rank_.size());
  if (a < 0 || b < 0 || a >= n || b >= n) return false;
  if (probed_ && seen_[a] && seen_[b]) return at_a_[a] == at_a_[b] && at_b_[a] == at_b_[b];
  return declared_rank_[a] >= 0 && declared_rank_[a] == static_cast<int>(declared_[a].size()) &&
         declared_[a] == declared_[b] && declared_rank_[b] == declared_rank_[a];
}

}  // namespace mixq
