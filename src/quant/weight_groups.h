// A weight's rows as the dense matrices the compensating quantizers work on: the rows of one
// Conv group (all rows for Gemm/MatMul) by the inputs they multiply, whatever the weight's layout.
#pragma once
#include <Eigen/Dense>

#include "quant/input_gram.h"
#include "tensor/tensor.h"

namespace mixq {

template <typename Scalar>
using DenseMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

// Group grp's rows of w as a [rows x k] matrix (row_axis 1: the weight is [k, rows]).
template <typename Scalar>
DenseMatrix<Scalar> group_rows(const Tensor& w, int row_axis, const InputGram& gram, int64_t grp) {
  const int64_t rows = w.dim(row_axis), per = rows / gram.groups, k = gram.k;
  const float* p = w.data<float>();
  DenseMatrix<Scalar> m(per, k);
  for (int64_t r = 0; r < per; ++r)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t row = grp * per + r;
      m(r, j) = row_axis == 0 ? p[row * k + j] : p[j * rows + row];
    }
  return m;
}

template <typename Scalar>
void store_rows(const DenseMatrix<Scalar>& m, int row_axis, const InputGram& gram, int64_t grp,
                Tensor& w) {
  const int64_t rows = w.dim(row_axis), per = rows / gram.groups, k = gram.k;
  float* p = w.data<float>();
  for (int64_t r = 0; r < per; ++r)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t row = grp * per + r;
      (row_axis == 0 ? p[row * k + j] : p[j * rows + row]) = static_cast<float>(m(r, j));
    }
}

}  // namespace mixq
