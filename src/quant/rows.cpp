#include "quant/rows.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"

namespace mixq {
namespace {

// Calls f(row, offset) for the storage offset of every element of w, row by row; rows along
// axis 1 are strided.
template <class F>
void for_each_row_element(const Tensor& w, int row_axis, F f) {
  const int64_t rows = weight_rows(w, row_axis);
  if (rows == 0) return;
  const int64_t k = w.numel() / rows;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < k; ++i) f(r, row_axis == 0 ? r * k + i : i * rows + r);
}

// Row indices sorted by key (ascending, or descending with descending=true), ties by index.
std::vector<int64_t> ranked(const std::vector<double>& key, bool descending) {
  std::vector<int64_t> idx(key.size());
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    return descending ? key[a] > key[b] : key[a] < key[b];
  });
  return idx;
}

}  // namespace

int64_t shift_row_count(int64_t rows, double ratio) {
  check(ratio >= 0 && std::isfinite(ratio), "msq", "the fixed:shift ratio must be >= 0");
  if (ratio == 0 || rows <= 0) return 0;
  return std::llround(static_cast<double>(rows) * ratio / (1 + ratio));
}

int64_t high_row_count(int64_t rows, double share) {
  check(share >= 0 && share <= 1, "msq", "the high-precision share must be in [0, 1]");
  if (rows <= 0) return 0;
  return std::llround(static_cast<double>(rows) * share);
}

std::vector<double> row_variances(const Tensor& w, int row_axis) {
  const int64_t rows = weight_rows(w, row_axis);
  std::vector<double> sum(rows, 0), sq(rows, 0);
  const float* p = w.data<float>();
  for_each_row_element(w, row_axis, [&](int64_t r, int64_t at) {
    const double v = p[at];
    sum[r] += v;
    sq[r] += v * v;
  });
  const double k = rows > 0 ? static_cast<double>(w.numel() / rows) : 1;
  std::vector<double> var(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const double mean = sum[r] / k;
    var[r] = std::max(0.0, sq[r] / k - mean * mean);
  }
  return var;
}

std::vector<double> row_error_energy(const Tensor& w, int bits, ScaleMethod method, int row_axis) {
  const Tensor q = fake_quantize_weight(
      w, choose_weight_quant(w, Scheme::fixed, bits, method, true, row_axis), row_axis);
  const int64_t rows = weight_rows(w, row_axis);
  std::vector<double> err(rows, 0);
  const float *p = w.data<float>(), *pq = q.data<float>();
  for_each_row_element(w, row_axis, [&](int64_t r, int64_t at) {
    const double d = static_cast<double>(p[at]) - pq[at];
    err[r] += d * d;
  });
  return err;
}

std::vector<RowQuant> msq_rows(const Tensor& w, int bits, const MsqOptions& o, ScaleMethod method,
                               int row_axis) {
  check(scheme_traits(o.shift).multiplier_free, "msq",
        std::string("the shift scheme must be sp2 or pot, not ") + scheme_name(o.shift));
  check(o.high_bits >= kMinBits && o.high_bits <= kMaxBits, "msq",
        "high-precision bits must be 2..8");
  const int64_t rows = weight_rows(w, row_axis);
  std::vector<RowQuant> out(rows, RowQuant{Scheme::fixed, bits, 1});
  std::vector<bool> high(rows, false);
  const int64_t n_high = o.high_share > 0 ? high_row_count(rows, o.high_share) : 0;
  if (n_high > 0) {
    const auto order = ranked(row_error_energy(w, bits, method, row_axis), true);
    for (int64_t i = 0; i < n_high; ++i) {
      high[order[i]] = true;
      out[order[i]].bits = o.high_bits;
    }
  }
  int64_t n_shift = shift_row_count(rows - n_high, o.ratio);
  if (n_shift > 0) {
    for (int64_t r : ranked(row_variances(w, row_axis), false)) {
      if (n_shift == 0) break;
      if (high[r]) continue;
      out[r].scheme = o.shift;
      --n_shift;
    }
  }
  choose_row_scales(w, out, method, row_axis);
  return out;
}

}  // namespace mixq
