// Trilu, TopK, OneHot, ScatterND, CumSum, Mod and Einsum against hand-computed values and the
// ONNX specification's examples, with negative axes and indices, ties, empty tensors, and
// invalid nodes throwing one-line errors that name the node.
#include <gtest/gtest.h>

#include <random>

#include "base/error.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

namespace {

using Attrs = std::map<std::string, Attribute>;
using Ints = std::vector<int64_t>;

Tensor i64(Shape s, Ints v) {
  return Tensor::from<int64_t>(std::move(s), v);
}
Tensor i64v(Ints v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<int64_t>({n}, v);
}
Tensor fv(std::vector<float> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<float>({n}, v);
}
Tensor iota(const Shape& s, float from = 1) {
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = from + static_cast<float>(i);
  return t;
}
std::vector<float> floats(const Tensor& t) {
  return t.to_floats();
}
Tensor run1(const std::string& op, const std::vector<Tensor>& in, Attrs attrs = {},
            int64_t opset = 13) {
  return run(op, in, Impl::reference, std::move(attrs), opset);
}
std::vector<Tensor> run_n(const std::string& op, const std::vector<Tensor>& in, size_t outputs,
                          Attrs attrs = {}, int64_t opset = 13) {
  const std::vector<Arg> args(in.begin(), in.end());
  Executor ex(one_node(op, args, std::move(attrs), opset, outputs), Impl::reference);
  return ex.run(feeds_of(args));
}
// The error's message must name the node ("<Op> node 'n0'"), hold `what`, and be one line.
void expect_node_error(const std::string& op, const std::function<void()>& f,
                       const std::string& what) {
  const std::string msg = error_of(f);
  EXPECT_NE(msg.find(op + " node 'n0'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

}  // namespace

TEST(OpsIndex, Trilu) {
  const Tensor x = iota({3, 4});
  EXPECT_EQ(floats(run1("Trilu", {x})), (std::vector<float>{1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12}));
  EXPECT_EQ(floats(run1("Trilu", {x, i64({}, {1})})),
            (std::vector<float>{0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12}));
  EXPECT_EQ(floats(run1("Trilu", {x}, {{"upper", int64_t{0}}})),
            (std::vector<float>{1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0}));
  EXPECT_EQ(floats(run1("Trilu", {x, i64({}, {-1})}, {{"upper", int64_t{0}}})),
            (std::vector<float>{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0}));
  // k beyond the matrix keeps everything or nothing; batches of int64 matrices.
  EXPECT_EQ(floats(run1("Trilu", {x, i64({}, {-5})})), floats(x));
  const Tensor b = Tensor::from<int64_t>({2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_EQ(run1("Trilu", {b}, {{"upper", int64_t{0}}}).to_ints(), (Ints{1, 0, 3, 4, 5, 0, 7, 8}));
  EXPECT_EQ(run1("Trilu", {Tensor(DType::f32, {0, 3})}).shape(), (Shape{0, 3}));
  expect_node_error(
      "Trilu",
      [] {
        run1("Trilu", {fv({1, 2})});
      },
      "rank >= 2");
}

TEST(OpsIndex, TopKLargestSmallestAndTies) {
  const Tensor x = iota({3, 4}, 0);
  auto r = run_n("TopK", {x, i64v({3})}, 2);
  EXPECT_EQ(floats(r[0]), (std::vector<float>{3, 2, 1, 7, 6, 5, 11, 10, 9}));
  EXPECT_EQ(r[1].to_ints(), (Ints{3, 2, 1, 3, 2, 1, 3, 2, 1}));
  EXPECT_EQ(r[1].dtype(), DType::i64);
  // Equal values: the lower index first, for largest and smallest.
  r = run_n("TopK", {fv({1, 3, 3, 2, 3}), i64v({3})}, 2);
  EXPECT_EQ(floats(r[0]), (std::vector<float>{3, 3, 3}));
  EXPECT_EQ(r[1].to_ints(), (Ints{1, 2, 4}));
  r = run_n("TopK", {fv({2, 1, 1, 1}), i64v({2})}, 2, {{"largest", int64_t{0}}});
  EXPECT_EQ(r[1].to_ints(), (Ints{1, 2}));
  // Negative axis over the first of two axes.
  r = run_n("TopK", {Tensor::from<float>({3, 2}, {1, 6, 5, 2, 3, 4}), i64v({2})}, 2,
            {{"axis", int64_t{-2}}});
  EXPECT_EQ(floats(r[0]), (std::vector<float>{5, 6, 3, 4}));
  EXPECT_EQ(r[1].to_ints(), (Ints{1, 0, 2, 2}));
  // Opset 1: k as an attribute; int32 data; k = 0.
  r = run_n("TopK", {Tensor::from<int32_t>({4}, {4, 9, 1, 9})}, 2, {{"k", int64_t{2}}}, 9);
  EXPECT_EQ(r[0].to_ints(), (Ints{9, 9}));
  EXPECT_EQ(r[1].to_ints(), (Ints{1, 3}));
  EXPECT_EQ(run_n("TopK", {x, i64v({0})}, 2)[0].shape(), (Shape{3, 0}));
  expect_node_error(
      "TopK",
      [&] {
        run_n("TopK", {x, i64v({5})}, 2);
      },
      "K = 5 is not in [0, 4]");
  expect_node_error(
      "TopK",
      [&] {
        run_n("TopK", {x, i64v({1})}, 2, {{"axis", int64_t{2}}});
      },
      "axis 2");
}

TEST(OpsIndex, OneHot) {
  const Tensor on = fv({0, 1});
  EXPECT_EQ(floats(run1("OneHot", {i64v({0, 2, -1, 5}), i64({}, {4}), on})),
            (std::vector<float>{1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0}));
  // axis 0 transposes; float indices truncate; a float depth; other values.
  const Tensor y = run1("OneHot", {fv({1.7f, 0}), fv({3}), fv({-1, 5})}, {{"axis", int64_t{0}}});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(floats(y), (std::vector<float>{-1, 5, 5, -1, -1, -1}));
  // Negative axis on 2-D indices: depth goes second to last.
  const Tensor z =
      run1("OneHot", {i64({2, 2}, {0, 1, 1, 0}), i64({1}, {2}), Tensor::from<int64_t>({2}, {0, 7})},
           {{"axis", int64_t{-2}}});
  EXPECT_EQ(z.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(z.to_ints(), (Ints{7, 0, 0, 7, 0, 7, 7, 0}));
  expect_node_error(
      "OneHot",
      [&] {
        run1("OneHot", {i64v({0}), i64({}, {0}), on});
      },
      "depth must be positive");
  expect_node_error(
      "OneHot",
      [&] {
        run1("OneHot", {i64v({0}), i64({}, {2}), fv({1})});
      },
      "values must be");
  expect_node_error(
      "OneHot",
      [&] {
        run1("OneHot", {i64v({0}), i64({}, {2}), on}, {{"axis", int64_t{3}}});
      },
      "axis 3 out of range");
}

TEST(OpsIndex, ScatterND) {
  const Tensor data = iota({8});
  const Tensor idx = i64({4, 1}, {4, 3, 1, 7});
  const Tensor upd = fv({9, 10, 11, 12});
  EXPECT_EQ(floats(run1("ScatterND", {data, idx, upd}, {}, 16)),
            (std::vector<float>{1, 11, 3, 10, 9, 6, 7, 12}));
  EXPECT_EQ(floats(run1("ScatterND", {data, idx, upd}, {{"reduction", std::string("add")}}, 16)),
            (std::vector<float>{1, 13, 3, 14, 14, 6, 7, 20}));
  // Repeated indices multiply in turn; a negative index counts from the back.
  EXPECT_EQ(floats(run1("ScatterND", {fv({1, 1}), i64({3, 1}, {0, 0, -1}), fv({2, 3, 5})},
                        {{"reduction", std::string("mul")}}, 16)),
            (std::vector<float>{6, 5}));
  // Slices: one index into a [2, 2] replaces a row.
  EXPECT_EQ(floats(run1("ScatterND", {iota({2, 2}), i64({1, 1}, {1}), iota({1, 2}, 9)})),
            (std::vector<float>{1, 2, 9, 10}));
  expect_node_error(
      "ScatterND",
      [&] {
        run1("ScatterND", {data, idx, fv({1, 2})});
      },
      "updates [2] must have shape [4]");
  expect_node_error(
      "ScatterND",
      [&] {
        run1("ScatterND", {data, i64({1, 1}, {8}), fv({1})});
      },
      "index 8 out of range");
  expect_node_error(
      "ScatterND",
      [&] {
        run1("ScatterND", {data, idx, upd}, {{"reduction", std::string("max")}}, 18);
      },
      "unknown reduction 'max'");
}

TEST(OpsIndex, CumSum) {
  const Tensor x = fv({1, 2, 3, 4, 5});
  const Tensor axis = i64({}, {0});
  auto cs = [&](const Tensor& t, const Tensor& a, int64_t exclusive, int64_t reverse) {
    return run1("CumSum", {t, a}, {{"exclusive", exclusive}, {"reverse", reverse}});
  };
  EXPECT_EQ(floats(cs(x, axis, 0, 0)), (std::vector<float>{1, 3, 6, 10, 15}));
  EXPECT_EQ(floats(cs(x, axis, 1, 0)), (std::vector<float>{0, 1, 3, 6, 10}));
  EXPECT_EQ(floats(cs(x, axis, 0, 1)), (std::vector<float>{15, 14, 12, 9, 5}));
  EXPECT_EQ(floats(cs(x, axis, 1, 1)), (std::vector<float>{14, 12, 9, 5, 0}));
  const Tensor m = Tensor::from<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(cs(m, Tensor::from<int32_t>({1}, {-1}), 0, 0).to_ints(), (Ints{1, 3, 6, 4, 9, 15}));
  EXPECT_EQ(cs(m, i64({}, {0}), 0, 0).to_ints(), (Ints{1, 2, 3, 5, 7, 9}));
  EXPECT_EQ(cs(Tensor(DType::f32, {0, 2}), axis, 0, 0).shape(), (Shape{0, 2}));
  expect_node_error(
      "CumSum", [&] { cs(x, i64({}, {1}), 0, 0); }, "axis 1 out of range");
  expect_node_error(
      "CumSum", [&] { cs(x, fv({0}), 0, 0); }, "axis must be int32 or int64");
}

TEST(OpsIndex, ModSignRules) {
  const Tensor a = Tensor::from<int64_t>({6}, {-4, 7, 5, 4, -7, 8});
  const Tensor b = Tensor::from<int64_t>({6}, {2, -3, 8, -2, 3, 5});
  EXPECT_EQ(run1("Mod", {a, b}).to_ints(), (Ints{0, -2, 5, 0, 2, 3}));  // divisor's sign
  EXPECT_EQ(run1("Mod", {a, b}, {{"fmod", int64_t{1}}}).to_ints(),
            (Ints{0, 1, 5, 0, -1, 3}));  // dividend's sign
  const Tensor fa = fv({-4.3f, 7.2f, 5.0f, 4.3f, -7.2f, 8.0f});
  const Tensor fb = fv({2.1f, -3.4f, 8.0f, -2.1f, 3.4f, 5.0f});
  expect_close(run1("Mod", {fa, fb}, {{"fmod", int64_t{1}}}),
               fv({-0.1f, 0.4f, 5.0f, 0.1f, -0.4f, 3.0f}), 1e-5, 1e-5);
  // Broadcasting, int8 with the extreme value, uint8.
  const Tensor m = Tensor::from<int32_t>({2, 3}, {1, -2, 3, -4, 5, -6});
  EXPECT_EQ(run1("Mod", {m, Tensor::from<int32_t>({3}, {2, 3, -4})}).to_ints(),
            (Ints{1, 1, -1, 0, 2, -2}));
  EXPECT_EQ(
      run1("Mod", {Tensor::from<int8_t>({2}, {-128, -128}), Tensor::from<int8_t>({2}, {-1, 3})})
          .to_ints(),
      (Ints{0, 1}));
  EXPECT_EQ(
      run1("Mod", {Tensor::from<uint8_t>({1}, {250}), Tensor::from<uint8_t>({1}, {7})}).to_ints(),
      (Ints{5}));
  expect_node_error(
      "Mod",
      [&] {
        run1("Mod", {fa, fb});
      },
      "fmod must be 1");
  expect_node_error(
      "Mod",
      [&] {
        run1("Mod", {a, Tensor::from<int64_t>({1}, {0})});
      },
      "modulo by zero");
}

namespace {

// Batched matrix product of [B, M, K] and [B, K, N] (row-major), the check for Einsum.
std::vector<float> bmm(const Tensor& a, const Tensor& b, int64_t B, int64_t M, int64_t K, int64_t N,
                       bool b_transposed = false) {
  std::vector<float> y(static_cast<size_t>(B * M * N), 0.f);
  for (int64_t t = 0; t < B; ++t)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += a.data<float>()[(t * M + i) * K + k] *
               b.data<float>()[b_transposed ? (t * N + j) * K + k : (t * K + k) * N + j];
        y[(t * M + i) * N + j] = static_cast<float>(s);
      }
  return y;
}

Tensor einsum(const std::string& eq, const std::vector<Tensor>& in) {
  return run1("Einsum", in, {{"equation", eq}}, 12);
}

}  // namespace

TEST(OpsIndex, EinsumMatmulAttentionAndTranspose) {
  std::mt19937 rng(5);
  const Tensor a = random_f32({2, 3}, rng, -1, 1), b = random_f32({3, 4}, rng, -1, 1);
  expect_close(einsum("ij,jk->ik", {a, b}), f32({2, 4}, bmm(a, b, 1, 2, 3, 4)), 1e-5, 1e-6);
  expect_close(einsum("ij,jk", {a, b}), f32({2, 4}, bmm(a, b, 1, 2, 3, 4)), 1e-5, 1e-6);
  const Tensor t = einsum("ij->ji", {a});
  ASSERT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t.data<float>()[1], a.data<float>()[3]);
  // Attention: scores q k^T over [b, h, i, d], then weights times values.
  const Tensor q = random_f32({2, 3, 4, 5}, rng, -1, 1), k = random_f32({2, 3, 6, 5}, rng, -1, 1);
  expect_close(einsum("bhid,bhjd->bhij", {q, k}), f32({2, 3, 4, 6}, bmm(q, k, 6, 4, 5, 6, true)),
               1e-5, 1e-6);
  const Tensor w = random_f32({2, 3, 4, 6}, rng, -1, 1), v = random_f32({2, 3, 6, 5}, rng, -1, 1);
  expect_close(einsum("bhij,bhjd->bhid", {w, v}), f32({2, 3, 4, 5}, bmm(w, v, 6, 4, 6, 5)), 1e-5,
               1e-6);
  const Tensor x = random_f32({3, 2, 4}, rng, -1, 1), y = random_f32({3, 4, 2}, rng, -1, 1);
  expect_close(einsum("bij,bjk->bik", {x, y}), f32({3, 2, 2}, bmm(x, y, 3, 2, 4, 2)), 1e-5, 1e-6);
  // "..." broadcasts: [2, 1] batch against [3].
  const Tensor e1 = random_f32({2, 1, 2, 3}, rng, -1, 1), e2 = random_f32({3, 3, 2}, rng, -1, 1);
  const Tensor e = einsum("...ij,...jk->...ik", {e1, e2});
  ASSERT_EQ(e.shape(), (Shape{2, 3, 2, 2}));
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t s = 0; s < 3; ++s) {
      const Tensor l = f32(
          {1, 2, 3}, std::vector<float>(e1.data<float>() + p * 6, e1.data<float>() + p * 6 + 6));
      const Tensor r = f32(
          {1, 3, 2}, std::vector<float>(e2.data<float>() + s * 6, e2.data<float>() + s * 6 + 6));
      const std::vector<float> want = bmm(l, r, 1, 2, 3, 2);
      for (int64_t j = 0; j < 4; ++j)
        EXPECT_NEAR(e.data<float>()[(p * 3 + s) * 4 + j], want[j], 1e-5);
    }
}

TEST(OpsIndex, EinsumReductionsDiagonalsAndErrors) {
  const Tensor m = iota({3, 3});
  EXPECT_EQ(floats(einsum("ii->i", {m})), (std::vector<float>{1, 5, 9}));
  EXPECT_EQ(floats(einsum("ii", {m})), (std::vector<float>{15}));
  EXPECT_EQ(floats(einsum("ij->", {m})), (std::vector<float>{45}));
  EXPECT_EQ(floats(einsum("i,i", {fv({1, 2, 3}), fv({4, 5, 6})})), (std::vector<float>{32}));
  EXPECT_EQ(
      einsum("ij,jk->ik", {Tensor(DType::f32, {2, 0}), Tensor(DType::f32, {0, 3})}).to_floats(),
      (std::vector<float>(6, 0.f)));
  EXPECT_EQ(Tensor(einsum("ij,jk->ik", {Tensor::from<int64_t>({1, 2}, {2, 3}),
                                        Tensor::from<int64_t>({2, 1}, {4, 5})}))
                .to_ints(),
            (Ints{23}));
  expect_node_error(
      "Einsum",
      [&] {
        einsum("ij,jk->ik", {m, iota({2, 2})});
      },
      "letter 'j' has sizes 3 and 2");
  expect_node_error(
      "Einsum", [&] { einsum("i1->i", {fv({1})}); }, "invalid subscript '1'");
  expect_node_error(
      "Einsum", [&] { einsum("ij,jk->ik", {m}); }, "has 2 terms but the node 1");
  expect_node_error(
      "Einsum", [&] { einsum("ij->ik", {m}); }, "output letter 'k'");
  expect_node_error(
      "Einsum", [&] { einsum("ijk->i", {m}); }, "does not match input 0");
}
