// Per-layer control (--keep-float, --pin) in the allocators: fixed layers keep what they are
// fixed to, every budget counts them, and each allocator is what it is among the assignments
// with those fixes (CLADO optimal, by brute force on a small measured network).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "quant/apply.h"
#include "search/allocate.h"
#include "search/layer_rules.h"
#include "support/measured_net.h"

using namespace mixq;
using namespace mixq::test;

namespace {

// conv0 and fc are the edges, conv1..conv4 searched; candidates w2, w4, w8.
LayerRules test_rules() {
  LayerRules r;
  r.pins = {"^conv0$=w2", "conv2=w8"};
  r.keep_float = {"^fc$", "conv4"};
  return r;
}

// x' Omega x over the layers that are not float (choice -1).
double restricted_objective(const SensitivityData& d, const std::vector<int>& choice) {
  const Eigen::MatrixXd om = omega_matrix(d);
  const size_t C = d.candidates;
  double sum = 0;
  for (size_t s = 0; s < choice.size(); ++s)
    for (size_t t = 0; t < choice.size(); ++t)
      if (choice[s] >= 0 && choice[t] >= 0) sum += om(s * C + choice[s], t * C + choice[t]);
  return sum;
}

// What a budget measures of a config, computed from the config alone.
double use_of(const MeasuredNet& f, const SearchSpace& space, const Budget& b,
              const QuantConfig& cfg) {
  if (b.kind == Budget::Kind::avg_bits) return average_weight_bits(f.g, cfg, space.free_layers());
  if (b.kind == Budget::Kind::bytes) return weight_bytes(f.g, cfg);
  double bops = 0;  // MACs x weight bits x input bits; float 32 x 32
  for (size_t i = 0; i < space.all.size(); ++i) {
    const LayerConfig* lc = cfg.find(space.all[i].name);
    const double w = lc->rows.empty() ? 32 : lc->rows[0].bits;
    const double a = lc->input ? lc->input->bits : 32;
    bops += static_cast<double>(space.macs[i]) * w * a;
  }
  return bops;
}

}  // namespace

TEST(LayerRules, AllocatorsHonourFixesAndCountThemInEveryBudget) {
  MeasuredNet f;
  SearchSpace space = f.space;
  set_layer_rules(space, test_rules());
  AllocInputs in{&f.g, &space, &f.sens, nullptr};
  ASSERT_EQ(space.num_searched(), 4u);  // conv1..conv4
  // Every assignment of the two free layers (conv1, conv3) with the fixes in place.
  std::vector<std::vector<int>> all;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) all.push_back({a, 2, b, -1});
  const InputQuants inputs = input_quants_from_json(f.sens.header.at("activations"), "t");
  std::vector<QuantConfig> configs;
  for (const auto& ch : all) configs.push_back(assignment_config(f.g, space, ch, &inputs));
  // Budgets that cut through those assignments: the median size, and bits.
  std::vector<double> bytes;
  for (const QuantConfig& cfg : configs) bytes.push_back(weight_bytes(f.g, cfg));
  std::sort(bytes.begin(), bytes.end());
  const std::vector<Budget> budgets = {
      {Budget::Kind::bytes, bytes[4], "median size", ""},
      parse_budget("5bits", "t"),
      parse_budget("3bits", "t"),
  };
  for (const Budget& b : budgets) {
    double best = 1e300;
    for (size_t k = 0; k < all.size(); ++k)
      if (use_of(f, space, b, configs[k]) <= b.value * (1 + 1e-12))
        best = std::min(best, restricted_objective(f.sens, all[k]));
    ASSERT_LT(best, 1e300) << b.text;
    for (AllocMethod m :
         {AllocMethod::clado, AllocMethod::diagonal, AllocMethod::greedy, AllocMethod::uniform}) {
      const std::string what = std::string(alloc_method_name(m)) + " under " + b.text;
      const Allocation a = allocate(in, m, {b});
      if (m == AllocMethod::uniform && !a.feasible) continue;  // a wider step than the others
      ASSERT_TRUE(a.feasible) << what;
      const QuantConfig cfg = allocation_config(in, a);
      // The fixes, whatever the allocator chose.
      EXPECT_EQ(cfg.find("conv0")->rows[0].bits, 2) << what;
      EXPECT_EQ(cfg.find("conv2")->rows[0].bits, 8) << what;
      for (const char* fl : {"conv4", "fc"}) {
        EXPECT_TRUE(cfg.find(fl)->rows.empty()) << what << " " << fl;
        EXPECT_FALSE(cfg.find(fl)->input.has_value()) << what << " " << fl;
      }
      // What the allocator says it uses is what the config holds, and within the budget.
      ASSERT_EQ(a.budget_use.size(), 1u);
      EXPECT_NEAR(a.budget_use[0].used, use_of(f, space, b, cfg), 1e-9 * b.value) << what;
      EXPECT_LE(a.budget_use[0].used, b.value * (1 + 1e-12)) << what;
      if (m == AllocMethod::uniform) continue;
      EXPECT_EQ(a.choice[1], 2) << what;
      EXPECT_EQ(a.choice[3], -1) << what;
      EXPECT_NEAR(a.predicted, restricted_objective(f.sens, a.choice), 1e-12) << what;
      if (m == AllocMethod::clado)
        EXPECT_NEAR(a.predicted, best, 1e-12) << what;  // optimal among the fixed assignments
      else
        EXPECT_GE(a.predicted, best - 1e-12) << what;
    }
  }
  // A BOPs budget counts float layers at 32 x 32 and the pinned edge at its input's 8 bits.
  const Allocation a = allocate(in, AllocMethod::clado, parse_budgets("1e15BOPs", "t"));
  ASSERT_TRUE(a.feasible);
  EXPECT_NEAR(a.budget_use[0].used,
              use_of(f, space, parse_budget("1BOPs", "t"), allocation_config(in, a)),
              1e-9 * a.budget_use[0].used);
}

TEST(LayerRules, RegexesAreSearchedAndBadRulesAreErrors) {
  MeasuredNet f;
  LayerRules r;
  r.keep_float = {"conv"};  // found in every conv, not in fc
  std::vector<LayerFix> fixes = resolve_layer_rules(f.space.all, r);
  ASSERT_EQ(fixes.size(), 6u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(fixes[i].kind, LayerFix::Kind::keep_float);
  EXPECT_EQ(fixes[5].kind, LayerFix::Kind::none);
  EXPECT_EQ(fixes[0].rule, "--keep-float 'conv'");
  auto error_of = [&](LayerRules rules) {
    try {
      SearchSpace s = f.space;
      set_layer_rules(s, rules);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of({{"nomatch"}, {}}),
            "--keep-float 'nomatch': matches no quantizable layer (conv0, conv1, conv2, conv3, "
            "conv4, fc)");
  EXPECT_EQ(error_of({{}, {"fc$=w4", "c=w8"}}),
            "--pin 'c=w8': layer 'fc' is also pinned to w4 by --pin 'fc$=w4'");
  EXPECT_EQ(error_of({{}, {"conv1=w4", "^conv1$=w4"}}), "no error");  // the same candidate
  EXPECT_EQ(error_of({{"conv1"}, {"1=w4"}}),
            "--pin '1=w4': layer 'conv1' is also kept float by --keep-float 'conv1'");
  EXPECT_EQ(error_of({{}, {"conv1=w6"}}),
            "--pin 'conv1=w6': w6 is not among the searched candidates w2,w4,w8 (add it to "
            "--candidates)");
  EXPECT_NE(error_of({{"conv["}, {}}).find("--keep-float 'conv[': bad regular expression"),
            std::string::npos);
  EXPECT_NE(error_of({{}, {"conv1"}}).find("must be REGEX=CANDIDATE"), std::string::npos);
  EXPECT_NE(error_of({{}, {"conv1=w4,w8"}}).find("one candidate"), std::string::npos);
  // A bits budget needs a free layer to average over.
  SearchSpace s = f.space;
  set_layer_rules(s, {{"conv[1-4]"}, {}});
  EXPECT_THROW(linearize(parse_budget("3bits", "t"), f.g, s), Error);
  EXPECT_NO_THROW(linearize(parse_budget("1MB", "t"), f.g, s));
}
