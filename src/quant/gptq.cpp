#include "quant/gptq.h"

#include <Eigen/Dense>
#include <cmath>

#include "base/error.h"
#include "quant/weight_groups.h"

namespace mixq {
namespace {

using Matrix = Eigen::MatrixXd;

// H of one group, ready to invert: inputs that never fire get a unit diagonal (their weights
// round to nearest and push nothing), then the damping.
Matrix damped_gram(const InputGram& gram, int64_t grp, double damp) {
  const int64_t k = gram.k;
  Matrix h = Eigen::Map<const Matrix>(gram.group(grp), k, k);
  for (int64_t j = 0; j < k; ++j)
    if (!(h(j, j) > 0)) h.row(j).setZero(), h.col(j).setZero(), h(j, j) = 1;
  h.diagonal().array() += damp * h.diagonal().mean();
  return h;
}

Matrix inverse(const Matrix& h, const std::string& where) {
  Eigen::LLT<Matrix> llt(h);
  check(llt.info() == Eigen::Success, where, "input gram is not positive definite");
  return llt.solve(Matrix::Identity(h.rows(), h.cols()));
}

// Rounds column j of the group (one value per row) to each row's grid.
struct RowGrids {
  std::vector<const LevelSet*> levels;
  std::vector<float> scale;
  RowGrids(const std::vector<RowQuant>& rows, int64_t first, int64_t count) {
    for (int64_t r = first; r < first + count; ++r) {
      levels.push_back(&level_set(rows[r].scheme, rows[r].bits));
      scale.push_back(rows[r].scale);
    }
  }
  double round(size_t r, double v) const {
    const float x = static_cast<float>(v);
    float q = 0;
    quantize_values(&x, 1, *levels[r], scale[r], &q);
    return q;
  }
};

void check_args(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                const InputGram& gram) {
  const int64_t n = weight_rows(w, row_axis);
  check(static_cast<int64_t>(rows.size()) == n, "gptq", "row count mismatch");
  check(gram.k > 0 && gram.groups > 0 && n % gram.groups == 0 && w.numel() == n * gram.k &&
            gram.h.size() == static_cast<size_t>(gram.groups * gram.k * gram.k),
        "gptq", "input gram does not match the weight of shape " + shape_str(w.shape()));
}

}  // namespace

Tensor gptq_quantize_weight(const Tensor& w, const std::vector<RowQuant>& rows, int row_axis,
                            const InputGram& gram, const GptqOptions& o, Tensor* targets) {
  check_args(w, rows, row_axis, gram);
  Tensor out(DType::f32, w.shape());
  if (targets) *targets = Tensor(DType::f32, w.shape());
  const int64_t k = gram.k, per = w.dim(row_axis) / gram.groups, bs = std::max<int64_t>(1, o.block);
  for (int64_t grp = 0; grp < gram.groups; ++grp) {
    const RowGrids grids(rows, grp * per, per);
    Matrix W = group_rows<double>(w, row_axis, gram, grp);
    // Hinv = U^T U: row j of U holds how column j's error spreads over the later columns.
    const Matrix hinv = inverse(damped_gram(gram, grp, o.damp), "gptq");
    Eigen::LLT<Matrix> llt(hinv);
    check(llt.info() == Eigen::Success, "gptq", "inverse gram is not positive definite");
    const Matrix U = llt.matrixU();
    Matrix Q(per, k), T(targets ? per : 0, targets ? k : 0);
    for (int64_t b0 = 0; b0 < k; b0 += bs) {
      const int64_t b1 = std::min(k, b0 + bs);
      Matrix err(per, b1 - b0);
      for (int64_t j = b0; j < b1; ++j) {
        if (targets) T.col(j) = W.col(j);
        for (int64_t r = 0; r < per; ++r) Q(r, j) = grids.round(r, W(r, j));
        err.col(j - b0) = (W.col(j) - Q.col(j)) / U(j, j);
        // Within the block at once; the rest of the columns after the block.
        W.middleCols(j + 1, b1 - j - 1).noalias() -=
            err.col(j - b0) * U.row(j).segment(j + 1, b1 - j - 1);
      }
      if (b1 < k) W.rightCols(k - b1).noalias() -= err * U.block(b0, b1, b1 - b0, k - b1);
    }
    store_rows(Q, row_axis, gram, grp, out);
    if (targets) store_rows(T, row_axis, gram, grp, *targets);
  }
  return out;
}

Tensor gptq_quantize_weight_reference(const Tensor& w, const std::vector<RowQuant>& rows,
                                      int row_axis, const InputGram& gram, const GptqOptions& o) {
  check_args(w, rows, row_axis, gram);
  Tensor out(DType::f32, w.shape());
  const int64_t k = gram.k, per = w.dim(row_axis) / gram.groups;
  for (int64_t grp = 0; grp < gram.groups; ++grp) {
    const RowGrids grids(rows, grp * per, per);
    Matrix W = group_rows<double>(w, row_axis, gram, grp);
    Matrix hinv = inverse(damped_gram(gram, grp, o.damp), "gptq");
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t r = 0; r < per; ++r) {
        const double q = grids.round(r, W(r, j));
        const double e = (W(r, j) - q) / hinv(j, j);
        for (int64_t m = j + 1; m < k; ++m) W(r, m) -= e * hinv(j, m);
        W(r, j) = q;
      }
      // Remove column j from the inverse of the remaining columns' gram.
      const double d = hinv(j, j);
      for (int64_t a = j + 1; a < k; ++a)
        for (int64_t b = j + 1; b < k; ++b) hinv(a, b) -= hinv(a, j) * hinv(j, b) / d;
    }
    store_rows(W, row_axis, gram, grp, out);
  }
  return out;
}

double output_error(const Tensor& w, const Tensor& q, int row_axis, const InputGram& gram) {
  check(w.shape() == q.shape(), "gptq", "weights of different shapes");
  double total = 0;
  for (int64_t grp = 0; grp < gram.groups; ++grp) {
    const Matrix d =
        group_rows<double>(w, row_axis, gram, grp) - group_rows<double>(q, row_axis, gram, grp);
    const Eigen::Map<const Matrix> h(gram.group(grp), gram.k, gram.k);
    total += (d * h).cwiseProduct(d).sum();
  }
  return total;
}

}  // namespace mixq
