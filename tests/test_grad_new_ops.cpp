// Backward passes of Resize / Upsample (nearest, linear, cubic; every coordinate transform that
// training meets, with scales and with sizes), GroupNormalization in both affine forms (X,
// scale, bias), Einsum (every operand, with broadcasting and a diagonal) and CumSum (every
// direction), against central differences in double precision.
#include <gtest/gtest.h>

#include <iostream>
#include <map>

#include "support/gradcheck.h"

using namespace mixq;
using namespace mixq::test;

namespace {

using Attrs = std::map<std::string, Attribute>;

Tensor rnd(const Shape& s, uint32_t seed) {
  return random_tensor(DType::f64, s, seed, 1.0);
}
Tensor fv(std::vector<float> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<float>({n}, v);
}
Tensor i64(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<int64_t>({n}, v);
}

OpSpec spec(const std::string& op, std::vector<Tensor> inputs, Attrs attrs = {}, int64_t opset = 13,
            std::vector<size_t> held = {}) {
  OpSpec s;
  s.op = op;
  s.inputs = std::move(inputs);
  s.attrs = std::move(attrs);
  s.opset = opset;
  s.constant_inputs = std::move(held);
  return s;
}

void expect_grad(const OpSpec& s, const std::string& variant) {
  const GradCheckResult r = grad_check(s);
  std::cout << "max rel error " << s.op << " " << variant << ": " << r.max_rel_error << "\n";
  EXPECT_LT(r.max_rel_error, 1e-3) << s.op << " " << variant << ": " << r.worst;
}

}  // namespace

TEST(GradNewOps, ResizeAndUpsample) {
  uint32_t seed = 3000;
  const Tensor x = rnd({1, 2, 4, 5}, seed);
  for (const char* mode : {"nearest", "linear", "cubic"})
    for (const char* coord : {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"}) {
      const Attrs a = {{"mode", std::string(mode)},
                       {"coordinate_transformation_mode", std::string(coord)}};
      const std::string v = std::string(mode) + " " + coord;
      // Up by scales (held constant), down by sizes.
      expect_grad(spec("Resize", {x, Tensor(), fv({1, 1, 2, 1.5f})}, a, 13, {2}), v + " up");
      expect_grad(
          spec("Resize", {rnd({1, 2, 5, 7}, ++seed), Tensor(), Tensor(), i64({1, 2, 3, 4})}, a),
          v + " down");
    }
  Attrs crop = {{"mode", std::string("linear")},
                {"coordinate_transformation_mode", std::string("tf_crop_and_resize")},
                {"extrapolation_value", 2.f}};
  expect_grad(
      spec("Resize", {x, fv({0, 0, 0.2f, -0.3f, 1, 1, 0.9f, 1.2f}), Tensor(), i64({1, 2, 3, 6})},
           crop, 13, {1}),
      "tf_crop_and_resize");
  expect_grad(spec("Upsample", {x, fv({1, 1, 2, 2})}, {{"mode", std::string("linear")}}, 9, {1}),
              "Upsample-9 linear");
  expect_grad(spec("Upsample", {x}, {{"scales", std::vector<float>{1, 1, 3, 2}}}, 7),
              "Upsample-7 nearest");
}

TEST(GradNewOps, GroupNormalizationBothAffineForms) {
  for (int64_t channel_affine : {0, 1}) {
    const int64_t n = channel_affine ? 6 : 3;
    OpSpec s =
        spec("GroupNormalization", {rnd({2, 6, 2, 3}, 3100), rnd({n}, 3101), rnd({n}, 3102)},
             {{"num_groups", int64_t{3}}, {"epsilon", 1e-4f}, {"channel_affine", channel_affine}});
    s.domain = "mixq";
    expect_grad(s, channel_affine ? "scale [C]" : "scale [G]");
  }
}

TEST(GradNewOps, EinsumEveryOperand) {
  const std::vector<std::pair<std::string, std::vector<Shape>>> cases = {
      {"ij,jk->ik", {{3, 4}, {4, 2}}},
      {"bhid,bhjd->bhij", {{2, 2, 3, 4}, {2, 2, 5, 4}}},
      {"bhij,bhjd->bhid", {{2, 2, 3, 5}, {2, 2, 5, 4}}},
      {"...ij,...jk->...ik", {{2, 1, 2, 3}, {3, 3, 2}}},
      {"ij->ji", {{3, 4}}},
      {"ii->i", {{3, 3}}},
      {"i,i", {{5}, {5}}}};
  uint32_t seed = 3200;
  for (const auto& [eq, shapes] : cases) {
    std::vector<Tensor> in;
    for (const Shape& s : shapes) in.push_back(rnd(s, seed++));
    expect_grad(spec("Einsum", in, {{"equation", eq}}, 12), eq);
  }
}

TEST(GradNewOps, CumSumEveryDirection) {
  for (int64_t exclusive : {0, 1})
    for (int64_t reverse : {0, 1})
      for (int64_t axis : {0, -1})
        expect_grad(spec("CumSum", {rnd({3, 4}, 3300), Tensor::from<int64_t>({}, {axis})},
                         {{"exclusive", exclusive}, {"reverse", reverse}}),
                    "exclusive " + std::to_string(exclusive) + " reverse " +
                        std::to_string(reverse) + " axis " + std::to_string(axis));
}
