// Sweeps of allocators across budgets (search/sweep.h) on a small measured network, what an
// allocation reports it uses of every budget (Allocation::budget_use) against the same figures
// computed from its config, and the CLI's scheme choices taken from the scheme table.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "cli/validators.h"
#include "data/batch_iterator.h"
#include "eval/evaluate.h"
#include "hw/fpga.h"
#include "hw/shapes.h"
#include "quant/apply.h"
#include "quant/scheme.h"
#include "runtime/executor.h"
#include "search/allocate.h"
#include "search/sweep.h"
#include "support/measured_net.h"
#include "support/onnx_builder.h"
#include "support/synthetic_data.h"

using namespace mixq;
using namespace mixq::test;

namespace {

struct Measured : MeasuredNet {
  SyntheticDataset test{48, {2, 6, 6}, 3, 9};
  AllocInputs inputs() const { return {&g, &space, &sens, nullptr}; }
  std::vector<QuantLayer> searched() const {
    std::vector<QuantLayer> out;
    for (int i : space.searched) out.push_back(space.all[i]);
    return out;
  }
};

const Measured& measured() {
  static const Measured m;
  return m;
}

}  // namespace

TEST(Sweep, EveryAllocatorAtEveryBudgetInOrderWithItsMeasurements) {
  const Measured& f = measured();
  const AllocInputs in = f.inputs();
  const std::vector<Budget> budgets = parse_budgets("3bits,5bits,1.5bits", "t");
  const std::vector<AllocMethod> methods = {AllocMethod::uniform, AllocMethod::greedy,
                                            AllocMethod::clado};
  SweepData sd{&f.data, random_subset(f.data.size(), 32, 0), &f.test, 16, 0, {}};
  std::vector<std::string> seen;
  const std::vector<SweepRow> rows =
      sweep(in, budgets, methods, IqpOptions{}, sd,
            [&](const SweepRow& r) { seen.push_back(r.allocation.method + "@" + r.budget.text); });
  ASSERT_EQ(rows.size(), budgets.size() * methods.size());
  ASSERT_EQ(seen.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const SweepRow& r = rows[i];
    const Budget& b = budgets[i / methods.size()];
    const AllocMethod m = methods[i % methods.size()];
    SCOPED_TRACE(std::string(alloc_method_name(m)) + " " + b.text);
    // Budgets outer, methods inner; the callback saw each row as it was done.
    EXPECT_EQ(r.budget.text, b.text);
    EXPECT_EQ(r.method, m);
    EXPECT_EQ(r.allocation.method, alloc_method_name(m));
    EXPECT_EQ(seen[i], r.allocation.method + "@" + b.text);
    if (b.value < 2) {  // below the cheapest candidate everywhere
      EXPECT_FALSE(r.feasible());
      continue;
    }
    ASSERT_TRUE(r.feasible());
    EXPECT_EQ(r.solver_status(), m == AllocMethod::clado ? "optimal" : "-");
    // The row's figures are those of the allocation's config, computed here again.
    const QuantConfig cfg = allocation_config(in, r.allocation);
    EXPECT_DOUBLE_EQ(r.avg_bits, average_weight_bits(f.g, cfg, f.searched()));
    EXPECT_LE(r.avg_bits, b.value + 1e-9);
    EXPECT_DOUBLE_EQ(r.weight_kb, weight_bytes(f.g, cfg) / 1024);
    EXPECT_DOUBLE_EQ(r.measured,
                     measured_increase(f.g, cfg, f.data, sd.subset, f.sens.L0(), sd.batch));
    Executor ex(apply_quant(f.g, cfg), Impl::fast, true);
    EvalOptions eo;
    eo.batch_size = sd.batch;
    EXPECT_DOUBLE_EQ(r.test_top1, evaluate(ex, f.test, eo).top1 * 100);
    if (m == AllocMethod::uniform) {
      EXPECT_EQ(r.allocation.uniform_bits, std::floor(b.value));
    }
  }
  // More bits never measure a larger loss for CLADO here (w2 -> w4/w8 is a large step).
  EXPECT_LE(rows[5].measured, rows[2].measured + 1e-9);

  const nlohmann::json j = sweep_json(rows);
  ASSERT_EQ(j.size(), rows.size());
  EXPECT_EQ(j[0].at("method"), "uniform");
  EXPECT_EQ(j[0].at("budget"), "3bits");
  EXPECT_TRUE(j[0].at("predicted").is_null() || j[0].at("predicted").is_number());
  EXPECT_EQ(j[2].at("solver"), "optimal");
  EXPECT_EQ(j[2].at("choice").size(), f.space.num_searched());
  EXPECT_DOUBLE_EQ(j[4].at("test_top1").get<double>(), rows[4].test_top1);
  EXPECT_EQ(j[8].at("feasible"), false);
  EXPECT_FALSE(j[8].contains("avg_bits"));
}

// What an allocation uses of each budget is within the budget, and equals the same quantity
// computed from the allocation's config by other code: average bits, whole-model bytes, BOPs
// from the MACs, and the FPGA cost model's latency.
TEST(Sweep, BudgetUseIsWithinTheLimitAndMatchesTheConfig) {
  const Measured& f = measured();
  const AllocInputs in = f.inputs();
  const hw::Device& dev = *hw::find_device("XC7Z020");
  const auto shapes = hw::layers_from_graph(f.g);
  // The figures of a config, computed without the budgets' linear costs.
  auto direct = [&](const Budget& b, const QuantConfig& cfg) {
    switch (b.kind) {
      case Budget::Kind::avg_bits:
        return average_weight_bits(f.g, cfg, f.searched());
      case Budget::Kind::bytes:
        return weight_bytes(f.g, cfg);
      case Budget::Kind::bops: {
        double bops = 0;
        for (size_t i = 0; i < f.space.all.size(); ++i) {
          const LayerConfig* lc = cfg.find(f.space.all[i].name);
          const int w = lc->rows[0].bits, a = lc->input->bits;
          bops += double(f.space.macs[i]) * w * a;
        }
        return bops;
      }
      case Budget::Kind::latency_ms:
        break;
    }
    const auto splits = hw::splits_from_config(shapes, cfg, "t");
    return hw::network_cost(latency_design(dev), shapes, splits).ms;
  };
  // Budgets between the cheapest and the dearest assignment of each kind.
  const QuantConfig all2 = assignment_config(f.g, f.space, {0, 0, 0, 0}, nullptr);
  const QuantConfig all8 = assignment_config(f.g, f.space, {2, 2, 2, 2}, nullptr);
  const double kb = (weight_bytes(f.g, all2) + weight_bytes(f.g, all8)) / 2 / 1024;
  std::vector<std::vector<Budget>> cases = {
      parse_budgets("3.5bits", "t"),
      parse_budgets(fmt::format("{:.3f}KB", kb), "t"),
      parse_budgets("5bits,0.5GBOPs", "t"),
  };
  {
    const Budget ms{Budget::Kind::latency_ms, 0, "", dev.name};
    const double lo = direct(ms, all2), hi = direct(ms, all8);
    ASSERT_LT(lo, hi);
    cases.push_back(parse_budgets(fmt::format("{:.6f}ms@{}", (lo + hi) / 2, dev.name), "t"));
  }
  size_t checked = 0;
  for (const auto& budgets : cases)
    for (AllocMethod m :
         {AllocMethod::uniform, AllocMethod::greedy, AllocMethod::diagonal, AllocMethod::clado}) {
      const Allocation a = allocate(in, m, budgets);
      SCOPED_TRACE(std::string(alloc_method_name(m)) + " " + budgets_text(budgets));
      if (!a.feasible) {
        EXPECT_TRUE(a.budget_use.empty());
        continue;
      }
      ASSERT_EQ(a.budget_use.size(), budgets.size());
      const QuantConfig cfg = allocation_config(in, a);
      for (size_t k = 0; k < budgets.size(); ++k) {
        const BudgetUse& u = a.budget_use[k];
        EXPECT_EQ(u.budget.text, budgets[k].text);
        EXPECT_DOUBLE_EQ(u.limit, budgets[k].value);
        EXPECT_LE(u.used, u.limit * (1 + 1e-9));
        EXPECT_GT(u.used, 0);
        EXPECT_NEAR(u.used, direct(budgets[k], cfg), 1e-9 * std::max(1.0, u.used));
        ++checked;
      }
    }
  EXPECT_GE(checked, 16u);
}

TEST(Sweep, BudgetsTextIsWhatWasGiven) {
  EXPECT_EQ(budgets_text(parse_budgets("3bits,2MB,5ms@XC7Z020", "t")), "3bits,2MB,5ms@XC7Z020");
  EXPECT_EQ(candidate_names(parse_candidates("w2,w4-sp2,w8", "t")), "w2,w4-sp2,w8");
}

// The CLI offers the schemes and bit-widths of the library's table, in its help and checks.
TEST(CliChoices, SchemesAndBitsComeFromTheSchemeTable) {
  std::vector<std::string> table, shift;
  for (Scheme s : all_schemes()) {
    table.push_back(scheme_name(s));
    if (scheme_traits(s).multiplier_free) shift.push_back(scheme_name(s));
  }
  ASSERT_EQ(table.size(), size_t(kSchemeCount));
  EXPECT_EQ(table.front(), "fixed");
  // Every scheme, the default first, each once.
  for (const std::string& first : table) {
    std::vector<std::string> c = cli::scheme_choices(first);
    EXPECT_EQ(c.front(), first);
    std::sort(c.begin(), c.end());
    std::vector<std::string> sorted = table;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(c, sorted);
  }
  // MSQ's shift rows: the multiplier-free schemes only.
  std::vector<std::string> s = cli::scheme_choices("sp2", true);
  EXPECT_EQ(s.front(), "sp2");
  std::sort(s.begin(), s.end());
  std::sort(shift.begin(), shift.end());
  EXPECT_EQ(s, shift);
  EXPECT_EQ(std::count(s.begin(), s.end(), "fixed"), 0);

  std::vector<int> bits = {0};
  for (int b = kMinBits; b <= kMaxBits; ++b) bits.push_back(b);
  EXPECT_EQ(cli::weight_bits_choices(true), bits);
  bits.erase(bits.begin());
  EXPECT_EQ(cli::weight_bits_choices(false), bits);
  EXPECT_EQ(cli::bits_range(), std::to_string(kMinBits) + ".." + std::to_string(kMaxBits));

  // What `mixq calibrate --help` shows is built from the same table.
  const CommandResult r = run_command(std::string(MIXQ_BINARY) + " calibrate --help");
  ASSERT_EQ(r.status, 0) << r.err;
  std::string set = "{";
  for (const std::string& n : table) set += (set.size() > 1 ? "," : "") + n;
  set += "}";
  EXPECT_NE(r.out.find(set), std::string::npos) << set << "\n" << r.out;
  EXPECT_NE(r.out.find("Weight scheme: " + cli::join(cli::scheme_choices("fixed"), ", ")),
            std::string::npos)
      << r.out;
  std::string wbits = "{0";
  for (int b = kMinBits; b <= kMaxBits; ++b) wbits += "," + std::to_string(b);
  EXPECT_NE(r.out.find(wbits + "}"), std::string::npos) << r.out;
}

// Rows of a multiplier-free scheme run on the FPGA's shift array, the others on the DSPs.
TEST(CliChoices, HardwareSplitsFollowTheMultiplierFreeTrait) {
  const Measured& f = measured();
  const auto shapes = hw::layers_from_graph(f.g);
  for (Scheme s : all_schemes()) {
    QuantConfig cfg = assignment_config(f.g, f.space, {1, 1, 1, 1}, nullptr);
    for (LayerConfig& lc : cfg.layers)
      for (RowQuant& r : lc.rows) r.scheme = s, r.bits = 4;
    const auto splits = hw::splits_from_config(shapes, cfg, "t");
    for (const hw::RowSplit& sp : splits) {
      SCOPED_TRACE(scheme_name(s));
      EXPECT_EQ(sp.sp2 > 0, scheme_traits(s).multiplier_free);
      EXPECT_EQ(sp.fixed > 0, !scheme_traits(s).multiplier_free);
    }
  }
}

// Re-ranking: each method's allocation once, measured as measured_increase measures it, lowest
// first; budgets no allocation meets leave nothing.
TEST(Sweep, RankedAllocationsAreMeasuredAndSortedByMeasuredLoss) {
  const Measured& f = measured();
  const AllocInputs in = f.inputs();
  const SweepData sd{&f.data, random_subset(f.data.size(), 32, 0), nullptr, 16, 0, {}};
  const std::vector<AllocMethod> methods = {AllocMethod::clado, AllocMethod::diagonal,
                                            AllocMethod::greedy, AllocMethod::uniform};
  for (const char* budget : {"2.5bits", "3.5bits", "6bits"}) {
    SCOPED_TRACE(budget);
    const auto budgets = parse_budgets(budget, "t");
    const auto ranked = rank_allocations(in, budgets, methods, IqpOptions{}, sd);
    ASSERT_FALSE(ranked.empty());
    for (size_t i = 0; i < ranked.size(); ++i) {
      const RankedAllocation& r = ranked[i];
      EXPECT_TRUE(r.allocation.feasible);
      EXPECT_NEAR(r.measured,
                  measured_increase(f.g, allocation_config(in, r.allocation), f.data, sd.subset,
                                    f.sens.L0(), sd.batch),
                  1e-9);
      if (i > 0) {
        EXPECT_LE(ranked[i - 1].measured, r.measured);
      }
      for (size_t j = 0; j < i; ++j) EXPECT_NE(ranked[j].allocation.choice, r.allocation.choice);
    }
    // Every method's allocation is there, or one with the same choice.
    for (AllocMethod m : methods) {
      const Allocation a = allocate(in, m, budgets);
      EXPECT_TRUE(std::any_of(ranked.begin(), ranked.end(), [&](const RankedAllocation& r) {
        return r.allocation.choice == a.choice;
      })) << alloc_method_name(m);
    }
  }
  EXPECT_TRUE(
      rank_allocations(in, parse_budgets("1.5bits", "t"), methods, IqpOptions{}, sd).empty());
}
