#include "quant/input_gram.h"

#include <Eigen/Dense>
#include <algorithm>

#include "base/error.h"
#include "ops/window.h"

namespace mixq {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Adds X^T X of `n` rows of k floats at x into group `grp` of the gram (lower triangle; the
// upper is mirrored by finish()). Float products over a block, summed in double across blocks.
void add_rows(const float* x, int64_t n, InputGram& gram, int64_t grp) {
  const int64_t k = gram.k;
  Eigen::Map<const RowMatrix> X(x, n, k);
  Eigen::MatrixXf block = Eigen::MatrixXf::Zero(k, k);
  block.selfadjointView<Eigen::Lower>().rankUpdate(X.transpose());
  double* h = gram.h.data() + grp * k * k;
  for (int64_t j = 0; j < k; ++j)
    for (int64_t i = j; i < k; ++i) h[i * k + j] += block(i, j);
  gram.rows += static_cast<double>(n);
}

void mirror(InputGram& gram) {
  const int64_t k = gram.k;
  for (int64_t grp = 0; grp < gram.groups; ++grp) {
    double* h = gram.h.data() + grp * k * k;
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = i + 1; j < k; ++j) h[i * k + j] = h[j * k + i];
  }
}

// Conv windows: for every output position and kernel tap, the input's spatial offset (-1 in
// the padding), so each window is a gather.
struct ConvWindows {
  int64_t positions = 0, taps = 0, in_spatial = 0;
  std::vector<int64_t> offset;  // positions x taps
};

ConvWindows conv_windows(const Node& node, const Shape& xs, const Shape& ws) {
  const size_t sp = xs.size() - 2;
  check(ws.size() == xs.size(), node.label(), "weight and input ranks differ");
  WindowAttrs a(node);
  a.check_pads(sp, node);
  const auto strides = per_axis(a.strides, sp, 1, "strides", node);
  const auto dils = per_axis(a.dilations, sp, 1, "dilations", node);
  std::vector<int64_t> in(sp), k(sp), out(sp), pad(sp);
  ConvWindows cw;
  cw.positions = cw.taps = cw.in_spatial = 1;
  for (size_t i = 0; i < sp; ++i) {
    in[i] = xs[2 + i];
    k[i] = ws[2 + i];
    const AxisWindow aw = forward_window(a, i, sp, in[i], k[i], strides[i], dils[i]);
    check(aw.fits && aw.out > 0, node.label(), "kernel larger than the padded input");
    out[i] = aw.out;
    pad[i] = aw.pad_b;
    cw.positions *= out[i];
    cw.taps *= k[i];
    cw.in_spatial *= in[i];
  }
  cw.offset.assign(cw.positions * cw.taps, -1);
  std::vector<int64_t> o(sp, 0), t(sp, 0);
  for (int64_t p = 0; p < cw.positions; ++p) {
    std::fill(t.begin(), t.end(), 0);
    for (int64_t tap = 0; tap < cw.taps; ++tap) {
      int64_t off = 0;
      bool inside = true;
      for (size_t i = 0; i < sp; ++i) {
        const int64_t c = o[i] * strides[i] - pad[i] + t[i] * dils[i];
        inside = inside && c >= 0 && c < in[i];
        off = off * in[i] + c;
      }
      cw.offset[p * cw.taps + tap] = inside ? off : -1;
      for (size_t i = sp; i-- > 0;)  // next tap, last axis fastest
        if (++t[i] < k[i])
          break;
        else
          t[i] = 0;
    }
    for (size_t i = sp; i-- > 0;)  // next position
      if (++o[i] < out[i])
        break;
      else
        o[i] = 0;
  }
  return cw;
}

// Calls fn(grp, a, b, n) for consecutive blocks of n input rows of k values, per group: one row
// per Conv window (im2col) or Gemm/MatMul input row. `b` holds the same rows of x2 (the same
// layer's input in another model) when x2 is given, else nullptr.
template <class Fn>
void for_each_row_block(const Graph& g, const QuantLayer& l, const Tensor& x, const Tensor* x2,
                        const InputGram& gram, Fn&& fn) {
  const Node& node = g.nodes[l.node];
  check(x.dtype() == DType::f32, node.label(), "input is not float");
  check(x2 == nullptr || x2->shape() == x.shape(), node.label(), "inputs of different shapes");
  if (l.op_type != "Conv") {
    check(x.rank() >= 1 && x.dim(x.rank() - 1) == gram.k, node.label(),
          "input of shape " + shape_str(x.shape()) + " does not match the weight");
    const int64_t rows = x.numel() / gram.k;
    constexpr int64_t kBlockRows = 4096;
    for (int64_t r = 0; r < rows; r += kBlockRows)
      fn(0, x.data<float>() + r * gram.k, x2 ? x2->data<float>() + r * gram.k : nullptr,
         std::min(kBlockRows, rows - r));
    return;
  }
  check(x.rank() >= 3, node.label(), "Conv input of shape " + shape_str(x.shape()));
  const ConvWindows cw = conv_windows(node, x.shape(), g.constant(l.weight).shape());
  const int64_t batch = x.dim(0), channels = x.dim(1), per_group = channels / gram.groups;
  check(per_group * cw.taps == gram.k, node.label(),
        "input channels " + std::to_string(channels) + " do not match the weight");
  constexpr int64_t kBlockRows = 2048;
  RowMatrix buf(kBlockRows, gram.k), buf2(x2 ? kBlockRows : 0, gram.k);
  auto gather = [&](const Tensor& t, RowMatrix& b, int64_t filled, int64_t grp, int64_t n,
                    int64_t p) {
    float* row = b.data() + filled * gram.k;
    const int64_t* off = cw.offset.data() + p * cw.taps;
    for (int64_t c = 0; c < per_group; ++c) {
      const float* plane = t.data<float>() + (n * channels + grp * per_group + c) * cw.in_spatial;
      for (int64_t tap = 0; tap < cw.taps; ++tap)
        row[c * cw.taps + tap] = off[tap] < 0 ? 0 : plane[off[tap]];
    }
  };
  for (int64_t grp = 0; grp < gram.groups; ++grp) {
    int64_t filled = 0;
    auto flush = [&] {
      fn(grp, buf.data(), x2 ? buf2.data() : nullptr, filled);
      filled = 0;
    };
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t p = 0; p < cw.positions; ++p) {
        gather(x, buf, filled, grp, n, p);
        if (x2) gather(*x2, buf2, filled, grp, n, p);
        if (++filled == kBlockRows) flush();
      }
    if (filled > 0) flush();
  }
}

}  // namespace

InputGram make_input_gram(const Graph& g, const QuantLayer& l) {
  const Tensor& w = g.constant(l.weight);
  InputGram gram;
  if (l.op_type == "Conv") {
    gram.groups = g.nodes[l.node].get_int("group", 1);
    check(gram.groups >= 1 && l.rows % gram.groups == 0, g.nodes[l.node].label(),
          "group must divide the output channels");
    gram.k = w.numel() / l.rows;
  } else {
    gram.k = w.dim(l.row_axis == 0 ? 1 : 0);
  }
  gram.h.assign(static_cast<size_t>(gram.groups * gram.k * gram.k), 0.0);
  return gram;
}

void accumulate_input_gram(const Graph& g, const QuantLayer& l, const Tensor& x, InputGram& gram) {
  const double before = gram.rows;
  for_each_row_block(
      g, l, x, nullptr, gram,
      [&](int64_t grp, const float* a, const float*, int64_t n) { add_rows(a, n, gram, grp); });
  // Per group the rows are the same windows: count them once.
  gram.rows = before + (gram.rows - before) / static_cast<double>(gram.groups);
  mirror(gram);
}

void accumulate_cross_gram(const Graph& g, const QuantLayer& l, const Tensor& x, const Tensor& y,
                           InputGram& xx, InputGram& xy) {
  const double before = xx.rows;
  const int64_t k = xx.k;
  for_each_row_block(g, l, x, &y, xx, [&](int64_t grp, const float* a, const float* b, int64_t n) {
    add_rows(a, n, xx, grp);
    Eigen::Map<const RowMatrix> A(a, n, k), B(b, n, k);
    const Eigen::MatrixXf block = A.transpose() * B;
    double* h = xy.h.data() + grp * k * k;
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) h[i * k + j] += block(i, j);
  });
  xx.rows = before + (xx.rows - before) / static_cast<double>(xx.groups);
  xy.rows = xx.rows;
  mirror(xx);
}

}  // namespace mixq
