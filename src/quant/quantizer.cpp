#include "quant/quantizer.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace mixq {
namespace {

// Copies row r (along row_axis) of w into buf; rows along axis 1 are strided.
void gather_row(const Tensor& w, int row_axis, int64_t r, std::vector<float>& buf) {
  const float* p = w.data<float>();
  if (row_axis == 0) {
    const int64_t n = w.numel() / w.dim(0);
    buf.assign(p + r * n, p + (r + 1) * n);
    return;
  }
  const int64_t rows = w.dim(1), k = w.numel() / rows;
  buf.resize(k);
  for (int64_t i = 0; i < k; ++i) buf[i] = p[i * rows + r];
}

template <typename T>
void scatter_row(Tensor& w, int row_axis, int64_t r, const std::vector<T>& buf) {
  T* p = w.data<T>();
  if (row_axis == 0) {
    std::copy(buf.begin(), buf.end(), p + r * static_cast<int64_t>(buf.size()));
    return;
  }
  const int64_t rows = w.dim(1);
  for (size_t i = 0; i < buf.size(); ++i) p[i * rows + r] = buf[i];
}

}  // namespace

double quantize_values(const float* x, int64_t n, const LevelSet& ls, float alpha, float* out,
                       int64_t* codes) {
  double sse = 0;
  const float inv = alpha > 0 ? 1.0f / alpha : 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]) * inv;
    const size_t k = ls.nearest(a);
    const float q = std::copysign(ls.magnitudes[k] * alpha, x[i]);
    if (out) out[i] = q;
    if (codes) codes[i] = x[i] < 0 ? -ls.integers[k] : ls.integers[k];
    const double d = static_cast<double>(x[i]) - q;
    sse += d * d;
  }
  return sse;
}

float choose_scale(const float* x, int64_t n, Scheme scheme, int bits, ScaleMethod method) {
  float maxabs = 0;
  for (int64_t i = 0; i < n; ++i) maxabs = std::max(maxabs, std::fabs(x[i]));
  if (maxabs == 0 || method == ScaleMethod::maxabs) return maxabs > 0 ? maxabs : 1.0f;
  const LevelSet& ls = level_set(scheme, bits);
  // Grid search over the clipping ratio, then least-squares refits alpha = <x,q>/<q,q> with the
  // level assignment held, kept only while they lower the error.
  constexpr int kSteps = 100;
  float best = maxabs;
  double best_err = quantize_values(x, n, ls, maxabs, nullptr);
  for (int s = 1; s < kSteps; ++s) {
    const float alpha = maxabs * static_cast<float>(s) / kSteps;
    const double err = quantize_values(x, n, ls, alpha, nullptr);
    if (err < best_err) best_err = err, best = alpha;
  }
  std::vector<float> q(n);
  for (int it = 0; it < 10; ++it) {
    quantize_values(x, n, ls, best, q.data());
    double xq = 0, qq = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double unit = q[i] / best;  // the level, without the scale
      xq += x[i] * unit;
      qq += unit * unit;
    }
    if (qq == 0) break;
    const float refit = static_cast<float>(xq / qq);
    const double err = refit > 0 ? quantize_values(x, n, ls, refit, nullptr) : best_err;
    if (!(err < best_err)) break;
    best_err = err, best = refit;
  }
  return best;
}

int64_t weight_rows(const Tensor& w, int row_axis) {
  check(static_cast<int64_t>(w.rank()) > row_axis, "quantizer",
        "weight of shape " + shape_str(w.shape()) + " has no axis " + std::to_string(row_axis));
  return w.dim(row_axis);
}

std::vector<RowQuant> choose_weight_quant(const Tensor& w, Scheme scheme, int bits,
                                          ScaleMethod method, bool per_row, int row_axis) {
  const int64_t rows = weight_rows(w, row_axis);
  std::vector<RowQuant> out(rows, RowQuant{scheme, bits, 1});
  if (!per_row) {
    const float s = choose_scale(w.data<float>(), w.numel(), scheme, bits, method);
    for (auto& r : out) r.scale = s;
    return out;
  }
  choose_row_scales(w, out, method, row_axis);
  return out;
}

void choose_row_scales(const Tensor& w, std::vector<RowQuant>& rows, ScaleMethod method,
                       int row_axis) {
  const int64_t n = weight_rows(w, row_axis);
  check(static_cast<int64_t>(rows.size()) == n, "quantizer", "row count mismatch");
#pragma omp parallel
  {
    std::vector<float> buf;
#pragma omp for schedule(dynamic)
    for (int64_t r = 0; r < n; ++r) {
      gather_row(w, row_axis, r, buf);
      rows[r].scale = choose_scale(buf.data(), static_cast<int64_t>(buf.size()), rows[r].scheme,
                                   rows[r].bits, method);
    }
  }
}

Tensor fake_quantize_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis) {
  const int64_t n = weight_rows(w, row_axis);
  check(static_cast<int64_t>(rows.size()) == n, "quantizer", "row count mismatch");
  Tensor out(DType::f32, w.shape());
  std::vector<float> buf, q;
  for (int64_t r = 0; r < n; ++r) {
    gather_row(w, row_axis, r, buf);
    q.resize(buf.size());
    quantize_values(buf.data(), static_cast<int64_t>(buf.size()),
                    level_set(rows[r].scheme, rows[r].bits), rows[r].scale, q.data());
    scatter_row(out, row_axis, r, q);
  }
  return out;
}

IntegerWeight integer_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis) {
  const int64_t n = weight_rows(w, row_axis);
  check(static_cast<int64_t>(rows.size()) == n, "quantizer", "row count mismatch");
  IntegerWeight iw;
  iw.codes = Tensor(DType::i64, w.shape());
  std::vector<float> buf, q;
  std::vector<int64_t> codes;
  for (int64_t r = 0; r < n; ++r) {
    const LevelSet& ls = level_set(rows[r].scheme, rows[r].bits);
    gather_row(w, row_axis, r, buf);
    q.resize(buf.size());
    codes.resize(buf.size());
    quantize_values(buf.data(), static_cast<int64_t>(buf.size()), ls, rows[r].scale, q.data(),
                    codes.data());
    for (int64_t c : codes) iw.max_abs_code = std::max(iw.max_abs_code, c < 0 ? -c : c);
    scatter_row(iw.codes, row_axis, r, codes);
    iw.step.push_back(static_cast<float>(static_cast<double>(rows[r].scale) /
                                         static_cast<double>(ls.denominator)));
  }
  return iw;
}

}  // namespace mixq
