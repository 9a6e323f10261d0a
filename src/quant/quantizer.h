// Weight quantization: per-row (output channel) or per-tensor, each row with its own scheme,
// bit-width and scale; scales by max-abs or by minimum squared error.
#pragma once
#include <vector>

#include "quant/scheme.h"
#include "tensor/tensor.h"

namespace mixq {

enum class ScaleMethod { maxabs, mse };

struct RowQuant {
  Scheme scheme = Scheme::fixed;
  int bits = 8;
  float scale = 1;  // alpha: the largest level's value
};

// Quantizes x (n values) with levels `ls` at scale alpha: writes dequantized values to out and,
// when codes is given, the signed integer numerators (value = code * alpha / denominator).
// Returns the sum of squared errors.
double quantize_values(const float* x, int64_t n, const LevelSet& ls, float alpha, float* out,
                       int64_t* codes = nullptr);

// The scale for one row of n values.
float choose_scale(const float* x, int64_t n, Scheme scheme, int bits, ScaleMethod method);

// Rows of a weight tensor: dim 0 is the output channel (Conv [Co,Ci/g,k..], Gemm with
// transB=1 [N,K]). Gemm/MatMul weights stored [K,N] are rows along dim 1: callers pass
// row_axis=1.
int64_t weight_rows(const Tensor& w, int row_axis = 0);

// One RowQuant per row with the given scheme/bits, scales chosen per row (per_row) or one
// shared scale for the whole tensor.
std::vector<RowQuant> choose_weight_quant(const Tensor& w, Scheme scheme, int bits,
                                          ScaleMethod method, bool per_row = true,
                                          int row_axis = 0);
// Fills scales for rows whose scheme/bits are already set (mixed schemes within a layer).
void choose_row_scales(const Tensor& w, std::vector<RowQuant>& rows, ScaleMethod method,
                       int row_axis = 0);

// The dequantized (fake-quantized) weight.
Tensor fake_quantize_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis = 0);

// The integer form of a quantized weight: every fixed, PoT and SP2 level is an integer times a
// per-row step (alpha / the level set's denominator), so value = codes * step[row].
struct IntegerWeight {
  Tensor codes;             // i32, the weight's shape
  std::vector<float> step;  // one per row
  int64_t max_abs_code = 0;
};
IntegerWeight integer_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis = 0);

}  // namespace mixq
