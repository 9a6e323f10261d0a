#include "quant/learned_rounding.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "quant/weight_groups.h"

namespace mixq {
namespace {

using Matrix = DenseMatrix<float>;
using Array = Eigen::ArrayXXf;

// AdaRound's rectified sigmoid: h = clip(sigmoid(v) (zeta - gamma) + gamma, 0, 1) reaches 0 and
// 1 exactly, so the regulariser can finish its work.
constexpr float kZeta = 1.1f, kGamma = -0.1f;

// The grid levels around each target: lo <= t <= hi on the row's grid (lo == hi beyond the
// grid's ends). Rows at min_bits or more are held at their GPTQ values.
void brackets(const Matrix& t, const Matrix& gptq, const std::vector<RowQuant>& rows, int64_t first,
              int min_bits, Array& lo, Array& hi) {
  lo.resize(t.rows(), t.cols());
  hi.resize(t.rows(), t.cols());
  for (int64_t r = 0; r < t.rows(); ++r) {
    const RowQuant& q = rows[first + r];
    const std::vector<float>& m = level_set(q.scheme, q.bits).magnitudes;
    for (int64_t j = 0; j < t.cols(); ++j) {
      if (q.bits >= min_bits || !(q.scale > 0)) {
        lo(r, j) = hi(r, j) = gptq(r, j);
        continue;
      }
      const float a = std::fabs(t(r, j)) / q.scale;
      const auto it = std::lower_bound(m.begin(), m.end(), a);
      const float up = it == m.end() ? m.back() : *it;
      const float down = it == m.end() ? m.back() : (*it == a || it == m.begin()) ? *it : *(it - 1);
      const float s = t(r, j) < 0 ? -q.scale : q.scale;
      lo(r, j) = std::min(down * s, up * s);
      hi(r, j) = std::max(down * s, up * s);
    }
  }
}

double output_error(const Matrix& d, const Matrix& h) {
  return static_cast<double>((d * h).cwiseProduct(d).sum());
}

// One group: returns the learned rounding, or GPTQ's when learning does not lower the error.
Matrix learn_group(const Matrix& w, const Matrix& target, const Matrix& gptq, const Matrix& h,
                   const std::vector<RowQuant>& rows, int64_t first,
                   const LearnedRoundingOptions& o) {
  Array lo, hi;
  brackets(target, gptq, rows, first, o.min_bits, lo, hi);
  const Array span = hi - lo;
  const Array free = (span > 0).cast<float>();
  const double n = free.sum(), err0 = output_error(w - gptq, h);
  if (n == 0 || !(err0 > 0)) return gptq;

  // Start where GPTQ's compensated values sit between their two levels.
  const Array frac = ((target.array() - lo) / span.max(1e-30f)).min(0.99f).max(0.01f);
  Array v =
      ((frac - kGamma) / (kZeta - kGamma)).unaryExpr([](float p) { return std::log(p / (1 - p)); });
  Array m1 = Array::Zero(v.rows(), v.cols()), m2 = m1;
  const float b1 = 0.9f, b2 = 0.999f, lr = static_cast<float>(o.learning_rate);
  const int warm = static_cast<int>(o.warmup * o.iterations);
  const float rec_scale = static_cast<float>(2 / err0);
  const float reg_scale = static_cast<float>(o.regularisation / n);
  Array soft(v.rows(), v.cols());
  for (int it = 0; it < o.iterations; ++it) {
    const Array sig = 1 / (1 + (-v).exp());
    soft = (sig * (kZeta - kGamma) + kGamma).min(1.0f).max(0.0f);
    const Matrix e = w - (lo + span * soft).matrix();
    Array grad = -(e * h).array() * rec_scale * span;  // d(error / err0) / d soft
    if (it >= warm) {
      const float beta =
          static_cast<float>(o.beta_start + (o.beta_end - o.beta_start) * (it - warm) /
                                                std::max(1, o.iterations - warm));
      const Array u = 2 * soft - 1;
      // d/dsoft of (1 - |2 soft - 1|^beta): pushes every soft value to its nearer end.
      grad -= reg_scale * 2 * beta * u.abs().pow(beta - 1) * u.sign();
    }
    const Array inside = ((soft > 0) && (soft < 1)).cast<float>();
    grad *= (kZeta - kGamma) * sig * (1 - sig) * inside * free;
    m1 = b1 * m1 + (1 - b1) * grad;
    m2 = b2 * m2 + (1 - b2) * grad.square();
    const float c1 = 1 - std::pow(b1, it + 1.0f), c2 = 1 - std::pow(b2, it + 1.0f);
    v -= lr * (m1 / c1) / ((m2 / c2).sqrt() + 1e-8f);
  }
  const Matrix hard = (lo + span * (soft >= 0.5f).cast<float>()).matrix();
  return output_error(w - hard, h) < err0 ? hard : gptq;
}

}  // namespace

Tensor learned_quantize_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                               const InputGram& gram, const GptqOptions& gptq_options,
                               const LearnedRoundingOptions& o) {
  Tensor targets;
  const Tensor gptq = gptq_quantize_weight(w, rows, row_axis, gram, gptq_options, &targets);
  Tensor out = gptq.clone();
  const int64_t per = w.dim(row_axis) / gram.groups;
  const float norm = gram.rows > 0 ? static_cast<float>(1 / gram.rows) : 1.0f;
  for (int64_t grp = 0; grp < gram.groups; ++grp) {
    const Matrix h =
        Eigen::Map<const DenseMatrix<double>>(gram.group(grp), gram.k, gram.k).cast<float>() * norm;
    const Matrix q = learn_group(
        group_rows<float>(w, row_axis, gram, grp), group_rows<float>(targets, row_axis, gram, grp),
        group_rows<float>(gptq, row_axis, gram, grp), h, rows, grp * per, o);
    store_rows(q, row_axis, gram, grp, out);
  }
  return out;
}

}  // namespace mixq
