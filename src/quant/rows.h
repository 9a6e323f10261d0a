// MSQ and RMSMP row-wise scheme assignment (docs/msq.md, ALGORITHMS.md section 2).
//
// MSQ: in every layer, the rows (output channels) with the lowest variance get a shift scheme
// (SP2 or PoT), the rest fixed-point, all at the layer's bit-width, with the same fixed:shift
// ratio 1:r in every layer: round(rows x r / (1 + r)) shift rows.
// RMSMP: first the share p of rows with the largest quantization-error energy (sum of squared
// errors at the layer's bit-width, fixed-point, the row's own scale) go to high_bits fixed-point;
// the remaining rows are split as in MSQ: round((rows - high) x r / (1 + r)) shift rows.
// Ties are broken by row index (the lower index first), so the assignment is deterministic.
#pragma once
#include <cstdint>
#include <vector>

#include "quant/quantizer.h"

namespace mixq {

struct MsqOptions {
  double ratio = 0;            // fixed:shift rows = 1:ratio (0: no shift rows)
  Scheme shift = Scheme::sp2;  // the shift scheme: sp2 or pot
  double high_share = 0;       // RMSMP: share of rows at high_bits fixed-point (0: none)
  int high_bits = 8;
  bool active() const { return ratio > 0 || high_share > 0; }
};

// round(rows x ratio / (1 + ratio)), 0 for ratio 0.
int64_t shift_row_count(int64_t rows, double ratio);
// round(rows x share).
int64_t high_row_count(int64_t rows, double share);

// Population variance of every row (rows along row_axis, as in quant/quantizer.h).
std::vector<double> row_variances(const Tensor& w, int row_axis = 0);
// Sum of squared quantization errors of every row at `bits` fixed-point, each row at its own
// scale chosen by `method`: RMSMP's sensitivity score.
std::vector<double> row_error_energy(const Tensor& w, int bits, ScaleMethod method,
                                     int row_axis = 0);

// Scheme and bits of every row of w with `bits` as the layer's base bit-width, scales filled by
// `method` (choose_row_scales).
std::vector<RowQuant> msq_rows(const Tensor& w, int bits, const MsqOptions& o, ScaleMethod method,
                               int row_axis = 0);

}  // namespace mixq
