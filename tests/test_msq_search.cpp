// CLADO over mixed-scheme candidates: MSQ/RMSMP candidate syntax, their rows and costs, and FPGA
// latency budgets whose linear costs agree with the hardware model's latency of the allocation.
#include <gtest/gtest.h>

#include "base/error.h"
#include "hw/fpga.h"
#include "hw/shapes.h"
#include "onnx/import.h"
#include "quant/calibrate.h"
#include "search/allocate.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"
#include "support/synthetic_data.h"

using namespace mixq;
using namespace mixq::test;

namespace {

// x[N,3,8,8] -> conv0 (3->16) -> relu -> conv1 (16->20) -> relu -> conv2 (20->16) -> GAP -> fc.
Graph net() {
  OnnxBuilder b;
  b.input("x", {-1, 3, 8, 8}).output("y", {-1, 4});
  const int64_t ch[] = {3, 16, 20, 16};
  std::string in = "x";
  for (int i = 0; i < 3; ++i) {
    const std::string n = "conv" + std::to_string(i);
    b.initializer(n + "_w", random_tensor(DType::f32, {ch[i + 1], ch[i], 3, 3}, 30 + i, 0.3));
    OnnxBuilder::attr(b.node("Conv", {in, n + "_w"}, {n + "_out"}, n), "pads",
                      std::vector<int64_t>{1, 1, 1, 1});
    b.node("Relu", {n + "_out"}, {n + "_r"}, n + "_relu");
    in = n + "_r";
  }
  b.node("GlobalAveragePool", {in}, {"p"}, "gap");
  b.node("Flatten", {"p"}, {"f"}, "flatten");
  b.initializer("fc_w", random_tensor(DType::f32, {4, 16}, 40, 0.5));
  OnnxBuilder::attr(b.node("Gemm", {"f", "fc_w"}, {"y"}, "fc"), "transB", int64_t{1});
  return load_onnx_bytes(b.bytes(), "msq_net");
}

}  // namespace

TEST(MsqSearch, CandidateSyntax) {
  const auto c = parse_candidates("w4-msq,w4-msq2,w4-msqpot1.5,w4-rmsmp,w2", "t");
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[0].ratio, 1.5);
  EXPECT_EQ(c[0].scheme, Scheme::sp2);
  EXPECT_EQ(c[1].ratio, 2.0);
  EXPECT_EQ(c[2].scheme, Scheme::pot);
  EXPECT_EQ(c[3].high_share, 0.05);
  EXPECT_FALSE(c[4].mixed());
  for (const char* bad : {"w4-msqx", "w4-msq0", "w4-msq-1", "w4-rmsmp1e9"})
    EXPECT_THROW(parse_candidates(bad, "t"), Error) << bad;
  // 20 rows: RMSMP puts round(1) row at 8 bits, then 1:1.5 of the other 19 on SP2 (round(11.4)).
  EXPECT_DOUBLE_EQ(candidate_bits(c[3], 20), (19 * 4 + 8) / 20.0);
  EXPECT_DOUBLE_EQ(candidate_shift_share(c[3], 20), 11 / 20.0);
  EXPECT_DOUBLE_EQ(candidate_high_share(c[3], 20), 1 / 20.0);
  EXPECT_DOUBLE_EQ(candidate_shift_share(c[0], 20), 12 / 20.0);
  EXPECT_DOUBLE_EQ(candidate_shift_share(parse_candidates("w4-sp2", "t")[0], 20), 1.0);
}

TEST(MsqSearch, AssignmentsCarryTheRowMix) {
  const Graph g = net();
  const SearchSpace space = make_search_space(g, parse_candidates("w4,w4-rmsmp", "t"), false, 8);
  ASSERT_EQ(space.num_searched(), 2u);  // conv1, conv2
  const QuantConfig cfg = assignment_config(g, space, {1, 0}, nullptr);
  const LayerConfig* conv1 = cfg.find("conv1");
  ASSERT_NE(conv1, nullptr);
  int sp2 = 0, b8 = 0;
  for (const RowQuant& r : conv1->rows) sp2 += r.scheme == Scheme::sp2, b8 += r.bits == 8;
  EXPECT_EQ(sp2, 11);
  EXPECT_EQ(b8, 1);
  for (const RowQuant& r : cfg.find("conv2")->rows) EXPECT_EQ(r.scheme, Scheme::fixed);
  EXPECT_NEAR(space.size_bits(0, 1), 20 * 16 * 9 * (19 * 4 + 8) / 20.0, 1e-9);
}

TEST(MsqSearch, LatencyBudgetsParse) {
  const Budget b = parse_budget("0.5ms@xc7z020", "t");
  EXPECT_EQ(b.kind, Budget::Kind::latency_ms);
  EXPECT_EQ(b.device, "XC7Z020");
  EXPECT_DOUBLE_EQ(b.value, 0.5);
  for (const char* bad : {"5ms", "5ms@", "5ms@nosuch", "xms@XC7Z020", "-1ms@XC7Z020", "5s@XC7Z020"})
    EXPECT_THROW(parse_budget(bad, "t"), Error) << bad;
}

// The IQP's latency under a budget equals what the FPGA model computes for the allocation.
TEST(MsqSearch, LatencyCostsAgreeWithTheHardwareModel) {
  const Graph g = net();
  const SearchSpace space =
      make_search_space(g, parse_candidates("w2,w4,w4-msq1.5,w4-rmsmp1.5,w8", "t"), false, 8);
  const Budget b = parse_budget("1ms@XC7Z020", "t");
  const LinearBudget lb = linearize(b, g, space);
  const hw::Design design = hw::balanced_design(*hw::find_device("XC7Z020"), 4);
  const auto layers = hw::layers_from_graph(g);
  // MSQ's SP2 rows run beside the fixed rows: faster than all-fixed at the same bits.
  EXPECT_LT(lb.costs[0 * 5 + 2], lb.costs[0 * 5 + 1]);
  EXPECT_LT(lb.costs[0 * 5 + 1], lb.costs[0 * 5 + 4]);
  for (const std::vector<int>& choice : {std::vector<int>{0, 4}, {2, 3}, {3, 1}, {4, 2}, {1, 1}}) {
    double predicted = b.value - lb.bound;  // the layers outside the search
    for (size_t s = 0; s < choice.size(); ++s) predicted += lb.costs[s * 5 + choice[s]];
    const QuantConfig cfg = assignment_config(g, space, choice, nullptr);
    const double model =
        hw::network_cost(design, layers, hw::splits_from_config(layers, cfg, "t")).ms;
    EXPECT_NEAR(predicted, model, 1e-9 * model) << choice[0] << "," << choice[1];
  }
}
