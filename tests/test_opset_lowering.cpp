// Opsets 18-21 on import: each changed operator version gives the outputs of its opset-17 form
// (or of the operator's defining formula), a model mixing them agrees with ONNX Runtime, and what
// has no exact opset-17 form is refused naming the node and the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "support/gradcheck.h"
#include "support/onnx_builder.h"
#include "support/op_runner.h"
#include "support/peer.h"

using namespace mixq;
using namespace mixq::test;

namespace {

Tensor i64s(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from<int64_t>({n}, v);
}

void string_attr(onnx::NodeProto& n, const std::string& key, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(key);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

Tensor run_reference(const OnnxBuilder& b, const std::string& name, const Tensor& x) {
  const Graph g = load_onnx_bytes(b.bytes(), name);
  Executor ex(g, Impl::reference);
  return ex.run({x}).at(0);
}

// A model at `opset` (IR 9 from 18 on) of x[2,3,4] -> op -> y.
OnnxBuilder unary_model(int64_t opset, const Shape& out_shape) {
  OnnxBuilder b(opset);
  if (opset >= 18) b.model().set_ir_version(opset >= 21 ? 10 : 9);
  b.input("x", {2, 3, 4}).output("y", out_shape);
  return b;
}

std::string error_of_load(const OnnxBuilder& b) {
  try {
    load_onnx_bytes(b.bytes(), "m.onnx");
  } catch (const Error& e) {
    return e.what();
  }
  return "loaded";
}

}  // namespace

// Every reduction whose axes became an input at opset 18, with axes from an initializer and
// from a Constant node, equals the opset-17 attribute form exactly.
TEST(OpsetLowering, ReductionAxesAsInputEqualTheAttributeForm) {
  std::mt19937 rng(3);
  const Tensor x = random_f32({2, 3, 4}, rng, 0.1f, 2.f);
  for (const char* op : {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                         "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"}) {
    for (const bool from_constant_node : {false, true}) {
      OnnxBuilder b18 = unary_model(18, {2, 4});
      if (from_constant_node) {
        auto& c = b18.node("Constant", {}, {"axes"}, "axes_const");
        auto* a = c.add_attribute();
        a->set_name("value");
        a->set_type(onnx::AttributeProto::TENSOR);
        a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
        a->mutable_t()->add_dims(1);
        a->mutable_t()->add_int64_data(1);
      } else {
        b18.initializer("axes", i64s({1}));
      }
      OnnxBuilder::attr(b18.node(op, {"x", "axes"}, {"y"}, "r"), "keepdims", int64_t{0});
      OnnxBuilder b17 = unary_model(17, {2, 4});
      auto& n17 = b17.node(op, {"x"}, {"y"}, "r");
      OnnxBuilder::attr(n17, "axes", std::vector<int64_t>{1});
      OnnxBuilder::attr(n17, "keepdims", int64_t{0});
      expect_close(run_reference(b18, "r18.onnx", x), run_reference(b17, "r17.onnx", x), 0, 0);
    }
  }
  // No axes: every axis; with noop_with_empty_axes the input itself.
  OnnxBuilder all = unary_model(18, {1, 1, 1});
  all.node("ReduceMean", {"x"}, {"y"}, "r");
  const Tensor mean = run_reference(all, "all.onnx", x);
  double sum = 0;
  for (int64_t i = 0; i < x.numel(); ++i) sum += x.data<float>()[i];
  EXPECT_NEAR(mean.data<float>()[0], sum / 24, 1e-6);
  OnnxBuilder noop = unary_model(18, {2, 3, 4});
  OnnxBuilder::attr(noop.node("ReduceMax", {"x"}, {"y"}, "r"), "noop_with_empty_axes", int64_t{1});
  expect_close(run_reference(noop, "noop.onnx", x), x, 0, 0);
}

TEST(OpsetLowering, SplitWithNumOutputsEqualsEqualParts) {
  OnnxBuilder b(18);
  b.model().set_ir_version(9);
  b.input("x", {2, 6}).output("a", {2, 2}).output("b", {2, 2}).output("c", {2, 2});
  auto& n = b.node("Split", {"x"}, {"a", "b", "c"}, "split");
  OnnxBuilder::attr(n, "axis", int64_t{1});
  OnnxBuilder::attr(n, "num_outputs", int64_t{3});
  const Graph g = load_onnx_bytes(b.bytes(), "split.onnx");
  std::mt19937 rng(4);
  const Tensor x = random_f32({2, 6}, rng, -1.f, 1.f);
  Executor ex(g, Impl::reference);
  const std::vector<Tensor> parts = ex.run({x});
  ASSERT_EQ(parts.size(), 3u);
  for (int p = 0; p < 3; ++p)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 2; ++c)
        EXPECT_EQ(parts[p].data<float>()[r * 2 + c], x.data<float>()[r * 6 + p * 2 + c]);
}

// Gelu (opset 20) and Mish (18) against their defining formulas, in double.
TEST(OpsetLowering, GeluAndMishFollowTheirFormulas) {
  std::mt19937 rng(5);
  const Tensor x = random_f32({2, 3, 4}, rng, -4.f, 4.f);
  for (const char* approx : {"none", "tanh"}) {
    OnnxBuilder b = unary_model(20, {2, 3, 4});
    string_attr(b.node("Gelu", {"x"}, {"y"}, "gelu"), "approximate", approx);
    const Tensor y = run_reference(b, "gelu.onnx", x);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double v = x.data<float>()[i];
      const double want =
          std::string(approx) == "none"
              ? 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))
              : 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
      EXPECT_NEAR(y.data<float>()[i], want, 2e-6) << approx << " at " << v;
    }
  }
  OnnxBuilder b = unary_model(18, {2, 3, 4});
  b.node("Mish", {"x"}, {"y"}, "mish");
  const Tensor y = run_reference(b, "mish.onnx", x);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.data<float>()[i];
    EXPECT_NEAR(y.data<float>()[i], v * std::tanh(std::log1p(std::exp(v))), 2e-6) << v;
  }
}

// A small network at opset 20 (IR 9) using the changed forms: mixq's fast and reference engines
// and ONNX Runtime agree.
TEST(OpsetLowering, ModelAtOpset20AgreesWithOnnxRuntime) {
  OnnxBuilder b(20);
  b.model().set_ir_version(9);
  b.input("x", {-1, 4, 8}).output("y", {-1, 4});
  b.initializer("w", random_tensor(DType::f32, {8, 8}, 11, 0.4));
  b.initializer("axes", i64s({2}));
  b.node("MatMul", {"x", "w"}, {"h"}, "fc");
  string_attr(b.node("Gelu", {"h"}, {"g"}, "gelu"), "approximate", "none");
  auto& split = b.node("Split", {"g"}, {"g1", "g2"}, "split");
  OnnxBuilder::attr(split, "axis", int64_t{2});
  OnnxBuilder::attr(split, "num_outputs", int64_t{2});
  b.node("Mul", {"g1", "g2"}, {"m"}, "mul");
  OnnxBuilder::attr(b.node("ReduceMean", {"m", "axes"}, {"y"}, "mean"), "keepdims", int64_t{0});
  TempDir dir;
  const std::string path = b.save(dir.file("opset20.onnx"));
  const Graph g = load_onnx(path);
  std::mt19937 rng(6);
  const Tensor x = random_f32({3, 4, 8}, rng, -2.f, 2.f);
  const Tensor ref = Executor(g, Impl::reference).run({x}).at(0);
  expect_close(Executor(g, Impl::fast, true).run({x}).at(0), ref, 1e-5, 1e-6);
  std::map<std::string, Tensor> peer;
  try {
    peer = run_peer_outputs(path, x);
  } catch (const std::exception& e) {
    GTEST_SKIP() << "ONNX Runtime peer unavailable (bash scripts/install-peer.sh): " << e.what();
  }
  ASSERT_TRUE(peer.count("y"));
  expect_close(peer.at("y"), ref, 1e-4, 1e-6);
}

TEST(OpsetLowering, WhatHasNoOpset17FormIsRefusedNamingTheNode) {
  {  // axes computed at run time
    OnnxBuilder b(18);
    b.model().set_ir_version(9);
    b.input("x", {2, 3}).output("y", {2});
    b.node("Shape", {"x"}, {"s"}, "shape");
    b.node("Size", {"s"}, {"n"}, "size");
    b.node("Sub", {"n", "n"}, {"zero"}, "sub");
    b.node("Unsqueeze", {"zero", "one"}, {"axes"}, "unsq");
    b.initializer("one", i64s({0}));
    OnnxBuilder::attr(b.node("ReduceMean", {"x", "axes"}, {"y"}, "mean"), "keepdims", int64_t{0});
    const std::string msg = error_of_load(b);
    EXPECT_NE(msg.find("m.onnx: ReduceMean node 'mean': axes computed at run time"),
              std::string::npos)
        << msg;
  }
  {  // an operator added after opset 17
    OnnxBuilder b = unary_model(18, {2, 3, 4});
    b.node("BitwiseNot", {"x"}, {"y"}, "bn");
    const std::string msg = error_of_load(b);
    EXPECT_NE(msg.find("BitwiseNot node 'bn': is an operator of opsets 18-21"), std::string::npos)
        << msg;
  }
  {  // Pad over some axes only
    OnnxBuilder b = unary_model(18, {2, 3, 6});
    b.initializer("pads", i64s({1, 1})).initializer("pad_axes", i64s({2}));
    b.node("Pad", {"x", "pads", "", "pad_axes"}, {"y"}, "pad");
    EXPECT_NE(error_of_load(b).find("Pad node 'pad': pads only some axes"), std::string::npos);
  }
  {  // float8 data (IR 9)
    OnnxBuilder b = unary_model(19, {2, 3, 4});
    auto* t = b.model().mutable_graph()->add_initializer();
    t->set_name("f8");
    t->set_data_type(17);
    t->add_dims(1);
    t->set_raw_data(std::string(1, '\0'));
    b.node("Identity", {"x"}, {"y"}, "id");
    EXPECT_NE(error_of_load(b).find("initializer 'f8': has a float8 or 4-bit element type"),
              std::string::npos);
  }
  {  // newer than 21
    OnnxBuilder b = unary_model(22, {2, 3, 4});
    b.node("Relu", {"x"}, {"y"}, "relu");
    EXPECT_NE(error_of_load(b).find("opset 22 is newer than supported (21)"), std::string::npos);
  }
}

// The command line on an opset-18 CNN (IR 9): evaluate and quantize, the export at opset 17.
TEST(OpsetLowering, QuantizeAnOpset18Model) {
  const std::string fmnist = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(fmnist))
    GTEST_SKIP() << fmnist << " missing (dataset-fashion-mnist)";
  OnnxBuilder b(18);
  b.model().set_ir_version(9);
  b.input("x", {-1, 1, 28, 28}).output("y", {-1, 10});
  b.initializer("w", random_tensor(DType::f32, {4, 1, 3, 3}, 21, 0.5));
  b.initializer("axes", i64s({2, 3}));
  b.initializer("fc_w", random_tensor(DType::f32, {10, 4}, 22, 0.5));
  b.initializer("fc_b", random_tensor(DType::f32, {10}, 23, 0.1));
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  b.node("Relu", {"c"}, {"r"}, "relu");
  OnnxBuilder::attr(b.node("ReduceMean", {"r", "axes"}, {"p"}, "pool"), "keepdims", int64_t{0});
  OnnxBuilder::attr(b.node("Gemm", {"p", "fc_w", "fc_b"}, {"y"}, "fc"), "transB", int64_t{1});
  TempDir dir;
  const std::string model = b.save(dir.file("m18.onnx"));
  const std::string bin = MIXQ_BINARY;
  CommandResult r = run_command(bin + " eval " + model + " --data fmnist:test --limit 200");
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_command(bin + " quantize " + model +
                  " --calib-data fmnist:train --data fmnist:test --limit 200 --wbits 4 -o " +
                  dir.file("q"));
  ASSERT_EQ(r.status, 0) << r.err;
  const Graph qdq = load_onnx(dir.file("q/model_qdq.onnx"));
  EXPECT_EQ(qdq.opset, 17);
}

namespace {

// local.Scale(x; alpha) = LeakyRelu(x + x, alpha=@alpha), with alpha defaulting to 0.5 (an IR 9
// attribute default); local.Twice(x; alpha) = Scale(Scale(x)) passing alpha on.
onnx::ModelProto model_with_functions(bool pass_alpha, bool recursive) {
  OnnxBuilder b(18);
  b.input("x", {2, 3}).output("y", {2, 3});
  auto& call = b.node("Twice", {"x"}, {"y"}, "twice");
  call.set_domain("local");
  if (pass_alpha) OnnxBuilder::attr(call, "alpha", 0.2f);
  onnx::ModelProto m = b.model();
  m.set_ir_version(9);
  auto* op = m.add_opset_import();
  op->set_domain("local");
  op->set_version(1);
  auto* scale = m.add_functions();
  scale->set_name("Scale");
  scale->set_domain("local");
  scale->add_input("x");
  scale->add_output("y");
  scale->add_attribute("alpha");
  scale->add_opset_import()->set_version(18);
  auto* add = scale->add_node();
  add->set_op_type(recursive ? "Twice" : "Add");
  if (recursive) add->set_domain("local");
  add->add_input("x");
  if (!recursive) add->add_input("x");
  add->add_output("t");
  auto* leaky = scale->add_node();
  leaky->set_op_type("LeakyRelu");
  leaky->add_input("t");
  leaky->add_output("y");
  auto* ref = leaky->add_attribute();
  ref->set_name("alpha");
  ref->set_type(onnx::AttributeProto::FLOAT);
  ref->set_ref_attr_name("alpha");
  onnx::AttributeProto dflt;  // FunctionProto.attribute_proto (field 11), unknown to libonnx 1.12
  dflt.set_name("alpha");
  dflt.set_type(onnx::AttributeProto::FLOAT);
  dflt.set_f(0.5f);
  scale->mutable_unknown_fields()->AddLengthDelimited(11, dflt.SerializeAsString());
  auto* twice = m.add_functions();
  twice->set_name("Twice");
  twice->set_domain("local");
  twice->add_input("x");
  twice->add_output("y");
  twice->add_attribute("alpha");
  twice->add_opset_import()->set_version(18);
  for (int i = 0; i < 2; ++i) {
    auto* c = twice->add_node();
    c->set_op_type("Scale");
    c->set_domain("local");
    c->set_name("s");  // the same node name in both: the inliner keeps values apart
    c->add_input(i == 0 ? "x" : "h");
    c->add_output(i == 0 ? "h" : "y");
    if (pass_alpha) {
      auto* a = c->add_attribute();
      a->set_name("alpha");
      a->set_type(onnx::AttributeProto::FLOAT);
      a->set_ref_attr_name("alpha");
    }
  }
  return m;
}

float scale(float x, float alpha) {
  const float t = x + x;
  return t < 0 ? alpha * t : t;
}

}  // namespace

TEST(OpsetLowering, LocalFunctionsAreInlinedWithTheirAttributes) {
  const Tensor x = Tensor::from<float>({2, 3}, {-1.5f, -0.25f, 0, 0.5f, 1, -3});
  for (bool pass_alpha : {true, false}) {
    const Graph g = load_onnx_bytes(model_with_functions(pass_alpha, false).SerializeAsString(),
                                    "functions.onnx");
    const float alpha = pass_alpha ? 0.2f : 0.5f;  // else the function's default
    for (Impl impl : {Impl::reference, Impl::fast}) {
      Executor ex(g, impl);
      const Tensor y = ex.run({x}).at(0);
      for (int i = 0; i < 6; ++i)
        EXPECT_FLOAT_EQ(y.data<float>()[i], scale(scale(x.data<float>()[i], alpha), alpha))
            << "alpha " << alpha << " element " << i;
    }
  }
  try {
    load_onnx_bytes(model_with_functions(true, true).SerializeAsString(), "recursive.onnx");
    ADD_FAILURE() << "a recursive function was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("recursively"), std::string::npos) << e.what();
  }
}
