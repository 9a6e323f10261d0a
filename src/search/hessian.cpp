#include "search/hessian.h"

#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "base/rng.h"
#include "data/model_inputs.h"
#include "quant/quantizer.h"
#include "runtime/backprop.h"
#include "runtime/executor.h"
#include "runtime/loss.h"

namespace mixq {
namespace {

// Gradient of the mean loss over all batches with respect to each weight, in double.
class GradientOracle {
 public:
  GradientOracle(const Graph& g, const std::vector<int>& weights, std::vector<Batch> batches)
      : g_(g),
        weights_(weights),
        batches_(std::move(batches)),
        ex_(g, Impl::fast, false),
        bp_(ex_, weights) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      bool flows = false;
      for (int v : g.nodes[i].inputs) flows = flows || (v >= 0 && bp_.needs_grad()[v]);
      if (flows && !ex_.kernel(i).has_backward())
        throw Error(g.nodes[i].label(), "has no backward; Hessian traces need one");
    }
    env_ = ex_.environment();
    for (const Batch& b : batches_) total_ += b.labels.size();
  }

  // The weights replaced by `w` (one tensor per weight, new allocations).
  std::vector<std::vector<double>> operator()(const std::vector<Tensor>& w) {
    for (size_t k = 0; k < weights_.size(); ++k) env_[weights_[k]] = w[k];
    std::vector<std::vector<double>> grad(weights_.size());
    for (size_t k = 0; k < weights_.size(); ++k) grad[k].assign(w[k].numel(), 0.0);
    for (const Batch& b : batches_) {
      for (size_t i = 0; i < b.inputs.size(); ++i) env_[g_.inputs[i]] = b.inputs[i];
      ex_.run_range(env_);
      Tensor dlogits;
      softmax_cross_entropy(env_[g_.outputs[0]], b.labels, &dlogits, g_.source);
      std::vector<Tensor> genv(g_.values.size());
      genv[g_.outputs[0]] = std::move(dlogits);
      bp_.run(env_, genv);
      // The loss gradient is per batch mean; weight batches by their share of the samples.
      const double share = static_cast<double>(b.labels.size()) / static_cast<double>(total_);
      for (size_t k = 0; k < weights_.size(); ++k) {
        const Tensor& gk = genv[weights_[k]];
        if (!gk.defined()) continue;
        const float* p = gk.data<float>();
        for (int64_t e = 0; e < gk.numel(); ++e) grad[k][e] += share * p[e];
      }
    }
    return grad;
  }

 private:
  const Graph& g_;
  std::vector<int> weights_;
  std::vector<Batch> batches_;
  Executor ex_;
  Backprop bp_;
  std::vector<Tensor> env_;
  size_t total_ = 0;
};

}  // namespace

HessianTraces hessian_traces(const Graph& g, const SearchSpace& space, const Dataset& data,
                             const std::vector<size_t>& subset, const HessianOptions& o) {
  check(!subset.empty(), "hessian", "no samples");
  check(o.probes >= 1, "hessian", "need at least one probe");
  check(o.step > 0, "hessian", "probe step must be positive");
  std::vector<int> weights;
  std::vector<Tensor> base;
  std::vector<double> eps;  // absolute probe size per layer
  for (int i : space.searched) {
    const int v = space.all[i].weight;
    weights.push_back(v);
    const Tensor& w = g.constant(v);
    base.push_back(w);
    double sq = 0;
    const float* p = w.data<float>();
    for (int64_t e = 0; e < w.numel(); ++e) sq += static_cast<double>(p[e]) * p[e];
    const double rms = std::sqrt(sq / static_cast<double>(std::max<int64_t>(1, w.numel())));
    eps.push_back(o.step * (rms > 0 ? rms : 1.0));
  }
  require_labels(data, "Hessian traces (the cross-entropy's curvature)");
  std::vector<Batch> batches;
  const size_t bs = std::max<size_t>(1, o.batch);
  for (size_t first = 0; first < subset.size(); first += bs) {
    Batch b = data.get(std::vector<size_t>(subset.begin() + first,
                                           subset.begin() + std::min(subset.size(), first + bs)));
    b.inputs = model_inputs(b, g, data);  // in the model's order from here on
    b.names.clear();
    batches.push_back(std::move(b));
  }
  GradientOracle grad(g, weights, std::move(batches));

  const size_t L = weights.size();
  std::vector<double> sum(L, 0.0), sq(L, 0.0);
  Rng rng(mix_seed({o.seed, 0x4861575155ull}));
  for (int probe = 0; probe < o.probes; ++probe) {
    // v_i = eps_i * r_i, r Rademacher; then tr(H_ii) ~ r_i' (H v)_i / eps_i.
    std::vector<std::vector<int8_t>> r(L);
    std::vector<Tensor> plus(L), minus(L);
    for (size_t k = 0; k < L; ++k) {
      const int64_t n = base[k].numel();
      r[k].resize(n);
      plus[k] = base[k].clone();
      minus[k] = base[k].clone();
      float* pp = plus[k].data<float>();
      float* pm = minus[k].data<float>();
      for (int64_t e = 0; e < n; ++e) {
        r[k][e] = (rng.next() >> 63) ? 1 : -1;
        pp[e] += static_cast<float>(eps[k] * r[k][e]);
        pm[e] -= static_cast<float>(eps[k] * r[k][e]);
      }
    }
    const auto gp = grad(plus), gm = grad(minus);
    for (size_t k = 0; k < L; ++k) {
      double est = 0;
      for (size_t e = 0; e < r[k].size(); ++e) est += r[k][e] * (gp[k][e] - gm[k][e]);
      est /= 2 * eps[k];
      sum[k] += est;
      sq[k] += est * est;
    }
    if (o.progress) std::fprintf(stderr, "hessian probe %d/%d\n", probe + 1, o.probes);
  }
  HessianTraces h;
  h.probes = o.probes;
  for (size_t k = 0; k < L; ++k) {
    const double n = o.probes, mean = sum[k] / n;
    h.trace.push_back(mean);
    const double var = n > 1 ? std::max(0.0, (sq[k] - n * mean * mean) / (n - 1)) : 0.0;
    h.trace_sd.push_back(std::sqrt(var / n));
  }
  return h;
}

std::vector<double> hawq_sensitivity(const Graph& g, const SearchSpace& space,
                                     const HessianTraces& h) {
  check(h.trace.size() == space.num_searched(), "hawq", "one trace per searched layer");
  const size_t C = space.num_candidates();
  std::vector<double> out(space.num_searched() * C);
  for (size_t s = 0; s < space.num_searched(); ++s) {
    const QuantLayer& l = space.all[space.searched[s]];
    const Tensor& w = g.constant(l.weight);
    for (size_t c = 0; c < C; ++c) {
      const CandidateSpec& cs = space.candidates[c];
      const Tensor q = fake_quantize_weight(
          w, choose_weight_quant(w, cs.scheme, cs.bits, ScaleMethod::mse, true, l.row_axis),
          l.row_axis);
      double err = 0;
      const float *pw = w.data<float>(), *pq = q.data<float>();
      for (int64_t e = 0; e < w.numel(); ++e) err += (double(pq[e]) - pw[e]) * (pq[e] - pw[e]);
      out[s * C + c] = h.trace[s] / static_cast<double>(w.numel()) * err;
    }
  }
  return out;
}

}  // namespace mixq
