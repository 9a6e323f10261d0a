// Allocators on real measurements of a small network: every method meets its budget, CLADO's
// exact IQP predicts no more loss than any other assignment, and budgets parse.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "eval/correlation.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "search/allocate.h"
#include "support/gradcheck.h"
#include "support/measured_net.h"
#include "support/onnx_builder.h"

using namespace mixq;
using namespace mixq::test;

namespace {

using Fixture = MeasuredNet;

double avg_bits(const Fixture& f, const std::vector<int>& choice) {
  double bits = 0, n = 0;
  for (size_t s = 0; s < choice.size(); ++s) {
    bits += f.space.size_bits(s, choice[s]);
    n += f.space.all[f.space.searched[s]].weight_count;
  }
  return bits / n;
}

}  // namespace

TEST(Allocate, EveryMethodMeetsTheBudgetAndCladoIsOptimal) {
  Fixture f;
  ASSERT_EQ(f.space.num_searched(), 4u);  // conv1..conv4 (first conv and fc excluded)
  AllocInputs in{&f.g, &f.space, &f.sens, nullptr};
  for (const char* b : {"3bits", "4bits", "5bits", "7bits"}) {
    auto budget = parse_budgets(b, "t");
    Allocation clado = allocate(in, AllocMethod::clado, budget);
    ASSERT_TRUE(clado.feasible);
    EXPECT_EQ(clado.solver.status, IqpResult::Status::optimal);
    EXPECT_LE(avg_bits(f, clado.choice), budget[0].value + 1e-9);
    // Brute force over all 3^4 assignments within the budget.
    double best = 1e300;
    for (int code = 0; code < 81; ++code) {
      std::vector<int> ch = {code % 3, code / 3 % 3, code / 9 % 3, code / 27};
      if (avg_bits(f, ch) > budget[0].value + 1e-9) continue;
      IqpProblem p;
      p.candidates.assign(4, 3);
      p.omega = omega_matrix(f.sens);
      best = std::min(best, objective(p, ch));
    }
    EXPECT_NEAR(clado.predicted, best, 1e-12) << b;
    for (AllocMethod m : {AllocMethod::greedy, AllocMethod::diagonal, AllocMethod::clado_psd}) {
      Allocation a = allocate(in, m, budget);
      ASSERT_TRUE(a.feasible) << alloc_method_name(m);
      EXPECT_LE(avg_bits(f, a.choice), budget[0].value + 1e-9) << alloc_method_name(m);
      EXPECT_GE(a.predicted, clado.predicted - 1e-12) << alloc_method_name(m);
    }
    Allocation u = allocate(in, AllocMethod::uniform, budget);
    EXPECT_EQ(u.uniform_bits, static_cast<int>(std::floor(budget[0].value)));
    QuantConfig cfg = allocation_config(in, u);
    EXPECT_EQ(cfg.layers[1].rows[0].bits, u.uniform_bits);
    EXPECT_EQ(cfg.layers[0].rows[0].bits, 8);  // edges stay at 8 bits
  }
  // Below the cheapest assignment nothing fits.
  EXPECT_FALSE(allocate(in, AllocMethod::clado, parse_budgets("1.5bits", "t")).feasible);
  EXPECT_FALSE(allocate(in, AllocMethod::greedy, parse_budgets("1.5bits", "t")).feasible);
}

TEST(Allocate, ConfigMatchesChoiceAndActivations) {
  Fixture f;
  AllocInputs in{&f.g, &f.space, &f.sens, nullptr};
  Allocation a = allocate(in, AllocMethod::clado, parse_budgets("4bits", "t"));
  QuantConfig cfg = allocation_config(in, a);
  ASSERT_EQ(cfg.layers.size(), 6u);  // five convs and the fc
  for (size_t s = 0; s < a.choice.size(); ++s)
    EXPECT_EQ(cfg.layers[f.space.searched[s]].rows[0].bits, f.space.candidates[a.choice[s]].bits);
  for (const auto& l : cfg.layers) EXPECT_TRUE(l.input.has_value());
  EXPECT_NO_THROW(apply_quant(f.g, cfg));
}

TEST(Allocate, BudgetsParseAndLinearize) {
  EXPECT_EQ(parse_budget("3.0bits", "b").kind, Budget::Kind::avg_bits);
  EXPECT_DOUBLE_EQ(parse_budget("2MB", "b").value, 2.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(parse_budget("512KB", "b").value, 512.0 * 1024);
  EXPECT_DOUBLE_EQ(parse_budget("1.2GBOPs", "b").value, 1.2e9);
  EXPECT_THROW(parse_budget("3", "b"), Error);
  EXPECT_THROW(parse_budget("-1bits", "b"), Error);
  EXPECT_THROW(parse_budget("abcMB", "b"), Error);
  EXPECT_THROW(parse_budget("40bits", "b"), Error);
  Fixture f;
  // A byte budget equal to the all-8-bit model admits exactly the all-w8 assignment.
  QuantConfig all8 = assignment_config(f.g, f.space, {2, 2, 2, 2}, nullptr);
  Budget bytes{Budget::Kind::bytes, weight_bytes(f.g, all8), "exact", ""};
  LinearBudget lb = linearize(bytes, f.g, f.space);
  double used = 0;
  for (size_t s = 0; s < 4; ++s) used += lb.costs[s * 3 + 2];
  EXPECT_NEAR(used, lb.bound, 1e-6);
}

TEST(Allocate, SpearmanOfKnownOrders) {
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {2, 1, 4, 3, 5}), 0.8, 1e-12);
  EXPECT_TRUE(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
  auto r = ranks({3, 1, 3, 2});
  EXPECT_EQ(r, (std::vector<double>{3.5, 1, 3.5, 2}));
}
