#include "runtime/differential.h"

#include <fmt/format.h>
#include <omp.h>

#include <cmath>
#include <cstring>

#include "runtime/executor.h"

namespace mixq {
namespace {

// NHWC data of a 4-D value back in NCHW order.
Tensor to_nchw(const Tensor& nhwc) {
  const int64_t n = nhwc.dim(0), h = nhwc.dim(1), w = nhwc.dim(2), c = nhwc.dim(3);
  Tensor out(nhwc.dtype(), {n, c, h, w});
  const size_t es = dtype_size(nhwc.dtype());
  const auto* src = static_cast<const std::byte*>(nhwc.raw());
  auto* dst = static_cast<std::byte*>(out.raw());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t k = 0; k < c; ++k)
          std::memcpy(dst + (((b * c + k) * h + y) * w + x) * es,
                      src + (((b * h + y) * w + x) * c + k) * es, es);
  return out;
}

}  // namespace

std::string Divergence::describe() const {
  if (!found) return "fast and reference agree";
  return fmt::format(
      "{}: output '{}' differs between the fast and the reference kernels "
      "(reference {}, fast {}, |difference| up to {:.3g})",
      node, value, reference_at, fast_at, max_abs);
}

bool tensors_agree(const Tensor& ref, const Tensor& fast, const DifferentialOptions& o,
                   double* max_abs, int64_t* worst) {
  if (max_abs) *max_abs = 0;
  if (worst) *worst = 0;
  if (ref.dtype() != fast.dtype() || ref.shape() != fast.shape()) {
    if (max_abs) *max_abs = INFINITY;
    return false;
  }
  const bool real = ref.dtype() == DType::f32 || ref.dtype() == DType::f64;
  bool ok = true;
  double largest = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double r = ref.get_double(i), f = fast.get_double(i);
    bool same;
    double d;
    if (std::isnan(r) || std::isnan(f) || std::isinf(r) || std::isinf(f)) {
      same = (std::isnan(r) && std::isnan(f)) || r == f;
      d = same ? 0 : INFINITY;
    } else {
      d = std::fabs(r - f);
      same = real ? d <= o.abs_tol + o.rel_tol * std::fabs(r) : d == 0;
    }
    if (!same && (ok || d > largest)) {
      if (worst) *worst = i;
    }
    if (d > largest) largest = d;
    ok = ok && same;
  }
  if (max_abs) *max_abs = largest;
  return ok;
}

Divergence compare_fast_to_reference(const Graph& g, const std::vector<Tensor>& inputs,
                                     const DifferentialOptions& o) {
  Executor ref(g, Impl::reference, false);
  Executor fast(g, Impl::fast, true);
  const std::vector<Tensor> want = ref.run(inputs);
  std::vector<Tensor> got;
  {
    const int saved = omp_get_max_threads();
    if (o.batch_threads > 0) omp_set_num_threads(o.batch_threads);
    got = fast.run(inputs);
    omp_set_num_threads(saved);
  }
  Divergence d;
  size_t bad = want.size();
  for (size_t k = 0; k < want.size() && bad == want.size(); ++k)
    if (!tensors_agree(want[k], got[k], o)) bad = k;
  if (bad == want.size()) return d;

  // Locate: both executors over an environment each, intermediate values compared in
  // reference order. The fast executor's graph keeps the value ids of g.
  std::vector<Tensor> renv = ref.environment(), fenv = fast.environment();
  for (size_t i = 0; i < inputs.size(); ++i) {
    renv[g.inputs[i]] = inputs[i];
    fenv[fast.graph().inputs[i]] = inputs[i];
  }
  ref.run_range(renv);
  fast.run_range(fenv);
  const Graph& rg = ref.graph();
  d.found = true;
  for (const Node& n : rg.nodes)
    for (int v : n.outputs) {
      if (v < 0 || static_cast<size_t>(v) >= fenv.size() || !fenv[v].defined()) continue;
      if (!renv[v].defined()) continue;
      Tensor f = fenv[v];
      if (fast.channels_last(v) && f.rank() == 4) f = to_nchw(f);
      int64_t at = 0;
      if (tensors_agree(renv[v], f, o, &d.max_abs, &at)) continue;
      d.node = n.label();
      d.value = rg.values[v].name;
      if (renv[v].shape() == f.shape()) {
        d.reference_at = renv[v].get_double(at);
        d.fast_at = f.get_double(at);
      }
      return d;
    }
  // Every value agrees when run node by node: the difference comes from run()'s batch slices
  // or in-place sums.
  const int v = g.outputs[bad];
  d.node = "graph output '" + g.values[v].name + "' (batch slices or in-place sums)";
  d.value = g.values[v].name;
  tensors_agree(want[bad], got[bad], o, &d.max_abs);
  return d;
}

}  // namespace mixq
