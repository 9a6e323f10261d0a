// Gemm and MatMul: reference against hand results and a brute-force definition, the oneDNN path
// against the reference on random shapes (transpositions, alpha/beta, every C broadcast, numpy
// batch broadcasting, 1-D operands), batch changes, and errors naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "base/error.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

using namespace mixq;
using mixq::test::Arg;
using mixq::test::f32;
using mixq::test::feeds_of;
using mixq::test::one_node;

namespace {

// Uniform in [-1, 1).
Tensor random_f32(const Shape& s, std::mt19937& rng) {
  return mixq::test::random_f32(s, rng, -1.f, 1.f);
}

Tensor run(const std::string& op, const std::vector<Arg>& args,
           std::map<std::string, Attribute> attrs = {}, Impl impl = Impl::reference,
           std::string* chosen = nullptr) {
  Executor ex(one_node(op, args, std::move(attrs)), impl);
  if (chosen) *chosen = ex.impl_name(0);
  return ex.run(feeds_of(args))[0];
}

void expect_near(const Tensor& got, const Tensor& want, double rtol = 1e-4, double atol = 1e-4) {
  test::expect_close(got, want, rtol, atol);
}

using Attrs = std::map<std::string, Attribute>;

// Gemm by its definition, element by element.
Tensor gemm_brute(const Tensor& a, const Tensor& b, const Tensor* c, float alpha, float beta,
                  bool ta, bool tb) {
  const int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const int64_t n = tb ? b.dim(0) : b.dim(1);
  Tensor y(DType::f32, {m, n});
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t q = 0; q < k; ++q)
        s += a.get_double(ta ? q * m + i : i * k + q) * b.get_double(tb ? j * k + q : q * n + j);
      double v = alpha * s;
      if (c) {
        // C broadcast from the right, numpy style.
        const Shape& cs = c->shape();
        const int64_t ci = cs.size() == 2 && cs[0] != 1 ? i : 0;
        const int64_t cj = !cs.empty() && cs.back() != 1 ? j : 0;
        v += beta * c->get_double(ci * (cs.empty() ? 1 : cs.back()) + cj);
      }
      y.data<float>()[i * n + j] = static_cast<float>(v);
    }
  return y;
}

TEST(OpsGemm, ReferenceMatchesHandComputed) {
  Tensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = f32({3, 2}, {1, 0, 0, 1, 1, 1});
  Tensor c = f32({2}, {10, 20});
  // A*B = [[4, 5], [10, 11]]
  expect_near(run("Gemm", {{a}, {b}, {c}}), f32({2, 2}, {14, 25, 20, 31}), 0, 1e-6);
  expect_near(run("Gemm", {{a}, {b}, {c}}, {{"alpha", 2.f}, {"beta", 0.5f}}),
              f32({2, 2}, {13, 20, 25, 32}), 0, 1e-6);
  // Transposed operands give the same product.
  Tensor at = f32({3, 2}, {1, 4, 2, 5, 3, 6});
  Tensor bt = f32({2, 3}, {1, 0, 1, 0, 1, 1});
  expect_near(run("Gemm", {{at}, {bt}}, {{"transA", int64_t{1}}, {"transB", int64_t{1}}}),
              f32({2, 2}, {4, 5, 10, 11}), 0, 1e-6);
}

TEST(OpsGemm, FastMatchesReferenceOnRandomShapes) {
  std::mt19937 rng(17);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < 40; ++i) {
    const int64_t m = pick(1, 40), n = pick(1, 40), k = pick(1, 70);
    const bool ta = pick(0, 1), tb = pick(0, 1);
    Tensor a = random_f32(ta ? Shape{k, m} : Shape{m, k}, rng);
    Tensor b = random_f32(tb ? Shape{n, k} : Shape{k, n}, rng);
    const std::vector<Shape> c_shapes{{}, {n}, {1, n}, {m, 1}, {m, n}, {1}, {1, 1}};
    Tensor c;
    const int cs = pick(-1, static_cast<int>(c_shapes.size()) - 1);
    if (cs >= 0) c = random_f32(c_shapes[cs], rng);
    Attrs attrs{{"transA", int64_t{ta}}, {"transB", int64_t{tb}}};
    float alpha = 1.f, beta = 1.f;
    if (pick(0, 2) == 0) alpha = 0.5f + pick(0, 3);
    if (pick(0, 2) == 0) beta = -0.25f * pick(0, 4);
    attrs["alpha"] = alpha;
    attrs["beta"] = beta;
    SCOPED_TRACE("case " + std::to_string(i));
    std::vector<Arg> args{{a}, {b, i % 2 == 0}, {c, i % 2 == 0}};
    Tensor want = run("Gemm", args, attrs);
    expect_near(want, gemm_brute(a, b, c.defined() ? &c : nullptr, alpha, beta, ta, tb));
    std::string chosen;
    expect_near(run("Gemm", args, attrs, Impl::fast, &chosen), want);
    EXPECT_EQ(chosen, "dnnl");
  }
}

TEST(OpsGemm, BatchSizeChangesReuseTheKernel) {
  std::mt19937 rng(4);
  Tensor w = random_f32({10, 64}, rng);
  Tensor bias = random_f32({10}, rng);
  Attrs a{{"transB", int64_t{1}}};
  std::vector<Arg> args{{random_f32({3, 64}, rng)}, {w, true}, {bias, true}};
  Executor fast(one_node("Gemm", args, a), Impl::fast);
  Executor ref(one_node("Gemm", args, a), Impl::reference);
  for (int64_t n : {3, 256, 1, 256, 7}) {
    Tensor x = random_f32({n, 64}, rng);
    expect_near(fast.run({x})[0], ref.run({x})[0]);
  }
}

TEST(OpsGemm, DoubleAndIntegerReference) {
  Tensor a = Tensor::from<int64_t>({2, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::from<int64_t>({2, 2}, {5, 6, 7, 8});
  Tensor y = run("Gemm", {{a}, {b}}, {}, Impl::fast);
  EXPECT_EQ(y.dtype(), DType::i64);
  EXPECT_EQ(y.to_ints(), (std::vector<int64_t>{19, 22, 43, 50}));
  Tensor ad = Tensor::from<double>({1, 2}, {0.5, 0.25});
  Tensor bd = Tensor::from<double>({2, 1}, {4, 8});
  EXPECT_DOUBLE_EQ(run("Gemm", {{ad}, {bd}}).data<double>()[0], 4.0);
}

TEST(OpsGemm, BadInputThrowsNamingTheNode) {
  std::mt19937 rng(1);
  auto expect_error = [&](const std::vector<Arg>& args, Attrs attrs, const std::string& cause) {
    for (Impl impl : {Impl::reference, Impl::fast}) {
      try {
        run("Gemm", args, attrs, impl);
        ADD_FAILURE() << "no error for " << cause;
      } catch (const Error& e) {
        EXPECT_EQ(e.where(), "Gemm node 'n0'");
        EXPECT_NE(std::string(e.what()).find(cause), std::string::npos) << e.what();
      }
    }
  };
  expect_error({{random_f32({2, 3}, rng)}, {random_f32({4, 2}, rng)}}, {}, "inner dimensions");
  expect_error({{random_f32({2, 3}, rng)}, {random_f32({3, 2}, rng)}}, {{"transA", int64_t{1}}},
               "inner dimensions");
  expect_error({{random_f32({2, 3, 1}, rng)}, {random_f32({3, 2}, rng)}}, {}, "matrices");
  expect_error({{random_f32({2, 3}, rng)}, {random_f32({3, 2}, rng)}, {random_f32({3}, rng)}}, {},
               "broadcast");
}

// MatMul by its numpy definition for operands of rank >= 2 with the same rank.
Tensor matmul_brute(const Tensor& a, const Tensor& b) {
  const size_t r = a.rank();
  Shape out(r);
  for (size_t d = 0; d + 2 < r; ++d) out[d] = std::max(a.dim(d), b.dim(d));
  const int64_t m = a.dim(r - 2), k = a.dim(r - 1), n = b.dim(r - 1);
  out[r - 2] = m;
  out[r - 1] = n;
  Tensor y(DType::f32, out);
  const int64_t batches = shape_numel(Shape(out.begin(), out.end() - 2));
  for (int64_t bi = 0; bi < batches; ++bi) {
    // Batch index -> offsets with broadcasting.
    int64_t rest = bi, ao = 0, bo = 0, as = 1, bs = 1;
    for (int d = static_cast<int>(r) - 3; d >= 0; --d) {
      const int64_t idx = rest % out[d];
      rest /= out[d];
      ao += (a.dim(d) == 1 ? 0 : idx) * as;
      bo += (b.dim(d) == 1 ? 0 : idx) * bs;
      as *= a.dim(d);
      bs *= b.dim(d);
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t q = 0; q < k; ++q)
          s += a.get_double(ao * m * k + i * k + q) * b.get_double(bo * k * n + q * n + j);
        y.data<float>()[(bi * m + i) * n + j] = static_cast<float>(s);
      }
  }
  return y;
}

TEST(OpsMatMul, ReferenceMatchesHandComputedAndPromotesVectors) {
  Tensor a = f32({2, 2}, {1, 2, 3, 4});
  Tensor b = f32({2, 2}, {5, 6, 7, 8});
  expect_near(run("MatMul", {{a}, {b}}), f32({2, 2}, {19, 22, 43, 50}), 0, 1e-6);
  Tensor v = f32({2}, {1, 1});
  for (Impl impl : {Impl::reference, Impl::fast}) {
    expect_near(run("MatMul", {{v}, {b}}, {}, impl), f32({2}, {12, 14}), 0, 1e-6);
    expect_near(run("MatMul", {{a}, {v}}, {}, impl), f32({2}, {3, 7}), 0, 1e-6);
    expect_near(run("MatMul", {{v}, {v}}, {}, impl), f32({}, {2}), 0, 1e-6);
    // A vector against a batch of matrices: [2] x [3, 2, 2] -> [3, 2].
    Tensor bb = f32({3, 2, 2}, {1, 0, 0, 1, 2, 0, 0, 2, 1, 1, 1, 1});
    expect_near(run("MatMul", {{v}, {bb}}, {}, impl), f32({3, 2}, {1, 1, 2, 2, 2, 2}), 0, 1e-6);
  }
  Tensor ia = Tensor::from<int64_t>({1, 2}, {2, 3});
  Tensor ib = Tensor::from<int64_t>({2, 1}, {4, 5});
  EXPECT_EQ(run("MatMul", {{ia}, {ib}}).to_ints(), std::vector<int64_t>{23});
}

TEST(OpsMatMul, FastMatchesReferenceWithBatchBroadcasting) {
  std::mt19937 rng(23);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < 30; ++i) {
    const int rank = pick(2, 5);
    const int64_t m = pick(1, 20), k = pick(1, 30), n = pick(1, 20);
    Shape as, bs;
    for (int d = 0; d + 2 < rank; ++d) {
      const int64_t full = pick(1, 3);
      as.push_back(pick(0, 2) == 0 ? 1 : full);
      bs.push_back(pick(0, 2) == 0 ? 1 : full);
    }
    as.insert(as.end(), {m, k});
    bs.insert(bs.end(), {k, n});
    Tensor a = random_f32(as, rng), b = random_f32(bs, rng);
    SCOPED_TRACE(shape_str(as) + " x " + shape_str(bs));
    Tensor want = run("MatMul", {{a}, {b}});
    expect_near(want, matmul_brute(a, b));
    // Dropping B's leading batch axes (numpy aligns from the right) must not change anything.
    size_t lead = 0;
    while (lead + 2 < bs.size() && bs[lead] == 1) ++lead;
    Tensor b_short = b.reshaped(Shape(bs.begin() + lead, bs.end()));
    std::string chosen;
    expect_near(run("MatMul", {{a}, {b_short, i % 2 == 0}}, {}, Impl::fast, &chosen), want);
    EXPECT_EQ(chosen, "dnnl");
  }
}

TEST(OpsMatMul, BadInputThrowsNamingTheNode) {
  std::mt19937 rng(1);
  for (Impl impl : {Impl::reference, Impl::fast}) {
    try {
      run("MatMul", {{random_f32({2, 3}, rng)}, {random_f32({4, 2}, rng)}}, {}, impl);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.where(), "MatMul node 'n0'");
    }
    try {
      run("MatMul", {{random_f32({2, 2, 3}, rng)}, {random_f32({3, 3, 2}, rng)}}, {}, impl);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("broadcast"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
