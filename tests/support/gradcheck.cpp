#include "support/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "base/error.h"
#include "runtime/executor.h"
#include "runtime/backprop.h"

namespace mixq::test {
namespace {

bool is_float(DType t) {
  return t == DType::f32 || t == DType::f64;
}

Tensor convert(const Tensor& t, DType to) {
  if (t.dtype() == to || !is_float(t.dtype())) return t.clone();
  Tensor out(to, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (to == DType::f64)
      out.data<double>()[i] = t.get_double(i);
    else
      out.data<float>()[i] = static_cast<float>(t.get_double(i));
  }
  return out;
}

struct Built {
  Graph g;
  std::vector<int> diff_inputs;  // graph input value ids, in spec order of float inputs
  std::vector<size_t> diff_index;
};

Built build(const OpSpec& spec, DType dtype) {
  Built b;
  Graph& g = b.g;
  g.opset = spec.opset;
  g.source = "gradcheck";
  Node n;
  n.name = spec.op + "_under_test";
  n.op_type = spec.op;
  n.domain = spec.domain;
  n.attrs = spec.attrs;
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    const Tensor& t = spec.inputs[i];
    const bool held = std::find(spec.constant_inputs.begin(), spec.constant_inputs.end(), i) !=
                      spec.constant_inputs.end();
    if (!t.defined()) {
      n.inputs.push_back(-1);
    } else if (is_float(t.dtype()) && !held) {
      int v = g.add_value("in" + std::to_string(i), dtype);
      g.values[v].shape = t.shape();
      g.values[v].shape_known = true;
      g.inputs.push_back(v);
      b.diff_inputs.push_back(v);
      b.diff_index.push_back(i);
      n.inputs.push_back(v);
    } else {
      n.inputs.push_back(g.add_constant("in" + std::to_string(i), convert(t, dtype)));
    }
  }
  for (size_t o = 0; o < spec.outputs; ++o) {
    int v = g.add_value("out" + std::to_string(o), dtype);
    n.outputs.push_back(v);
    if (o == 0) g.outputs.push_back(v);
  }
  g.nodes.push_back(n);
  g.sort();
  return b;
}

struct Run {
  std::vector<Tensor> grads;  // per differentiated input
};

// Forward then backward with loss = sum <out_k, R_k>; R from the seed.
Run analytic(const OpSpec& spec, DType dtype, Impl impl, uint32_t seed, double* loss_out = nullptr,
             const std::vector<Tensor>* inputs_override = nullptr) {
  Built b = build(spec, dtype);
  Executor ex(b.g, impl);
  auto env = ex.environment();
  for (size_t k = 0; k < b.diff_inputs.size(); ++k)
    env[b.diff_inputs[k]] =
        inputs_override ? (*inputs_override)[k] : convert(spec.inputs[b.diff_index[k]], dtype);
  ex.run_range(env);
  std::vector<Tensor> genv(b.g.values.size());
  double loss = 0;
  for (size_t o = 0; o < spec.outputs; ++o) {
    const int v = b.g.nodes[0].outputs[o];
    const Tensor& y = env[v];
    if (!y.defined() || !is_float(y.dtype())) continue;
    Tensor r = random_tensor(dtype, y.shape(), seed * 7919 + static_cast<uint32_t>(o));
    for (int64_t i = 0; i < y.numel(); ++i) loss += y.get_double(i) * r.get_double(i);
    genv[v] = r;
  }
  if (loss_out) *loss_out = loss;
  Run run;
  if (!inputs_override) {
    Backprop bp(ex, b.diff_inputs);
    bp.run(env, genv);
    for (int v : b.diff_inputs) run.grads.push_back(genv[v]);
  }
  return run;
}

}  // namespace

Tensor random_tensor(DType dtype, const Shape& shape, uint32_t seed, double sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, sd);
  Tensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::f64)
      t.data<double>()[i] = g(rng);
    else
      t.data<float>()[i] = static_cast<float>(g(rng));
  }
  return t;
}

GradCheckResult grad_check(const OpSpec& spec, uint32_t seed) {
  Run a = analytic(spec, DType::f64, Impl::reference, seed);
  Built b = build(spec, DType::f64);
  std::vector<Tensor> base;
  for (size_t k = 0; k < b.diff_inputs.size(); ++k)
    base.push_back(convert(spec.inputs[b.diff_index[k]], DType::f64));
  GradCheckResult res;
  const double eps = 1e-6;
  for (size_t k = 0; k < base.size(); ++k) {
    check(a.grads[k].defined(), spec.op, "no gradient for input " + std::to_string(k));
    for (int64_t i = 0; i < base[k].numel(); ++i) {
      std::vector<Tensor> plus, minus;
      for (auto& t : base) plus.push_back(t.clone()), minus.push_back(t.clone());
      plus[k].data<double>()[i] += eps;
      minus[k].data<double>()[i] -= eps;
      double lp = 0, lm = 0;
      analytic(spec, DType::f64, Impl::reference, seed, &lp, &plus);
      analytic(spec, DType::f64, Impl::reference, seed, &lm, &minus);
      const double num = (lp - lm) / (2 * eps);
      const double ana = a.grads[k].get_double(i);
      const double rel = std::fabs(ana - num) / std::max({std::fabs(ana), std::fabs(num), 1e-4});
      if (rel > res.max_rel_error) {
        res.max_rel_error = rel;
        res.worst = "input " + std::to_string(b.diff_index[k]) + " element " + std::to_string(i) +
                    ": analytic " + std::to_string(ana) + ", numeric " + std::to_string(num);
      }
    }
  }
  return res;
}

double fast_vs_reference_backward(const OpSpec& spec, uint32_t seed) {
  Run f = analytic(spec, DType::f32, Impl::fast, seed);
  Run r = analytic(spec, DType::f32, Impl::reference, seed);
  double worst = 0;
  for (size_t k = 0; k < f.grads.size(); ++k) {
    check(f.grads[k].shape() == r.grads[k].shape(), spec.op, "gradient shapes differ");
    for (int64_t i = 0; i < f.grads[k].numel(); ++i) {
      const double a = f.grads[k].get_double(i), b = r.grads[k].get_double(i);
      worst = std::max(worst, std::fabs(a - b) / std::max(1.0, std::fabs(b)));
    }
  }
  return worst;
}

}  // namespace mixq::test
