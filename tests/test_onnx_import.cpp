// The ONNX importer on models built here: every dtype through raw and typed tensor fields,
// initializers and Constant nodes as constant values, node naming, and refusals that name the
// model or node.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "base/error.h"
#include "ir/graph.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "runtime/executor.h"
#include "support/onnx_builder.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

namespace {

// A TensorProto of dtype t holding 0, 1, 2 either as raw bytes or in its typed field.
onnx::TensorProto proto_of(const DTypeTraits& t, bool raw) {
  onnx::TensorProto p;
  p.set_name("t");
  p.set_data_type(t.onnx);
  p.add_dims(3);
  Tensor v(t.dtype, {3});
  visit_dtype(t.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int i = 0; i < 3; ++i) {
      const T x = static_cast<T>(i);
      v.data<T>()[i] = x;
      if (raw) continue;
      if constexpr (std::is_same_v<T, float>)
        p.add_float_data(x);
      else if constexpr (std::is_same_v<T, double>)
        p.add_double_data(x);
      else if constexpr (std::is_same_v<T, int64_t>)
        p.add_int64_data(x);
      else
        p.add_int32_data(static_cast<int32_t>(x));
    }
  });
  if (raw) p.set_raw_data(std::string(static_cast<const char*>(v.raw()), v.nbytes()));
  return p;
}

// The graph's first output for these inputs, on the reference kernels.
Tensor run_graph_once(const Graph& g, const std::vector<Tensor>& inputs) {
  Executor ex(g, Impl::reference);
  return ex.run(inputs).at(0);
}

}  // namespace

TEST(OnnxImport, EveryDTypeReadsFromRawAndTypedFields) {
  for (const DTypeTraits& t : kDTypeTraits)
    for (bool raw : {true, false}) {
      const Tensor x = tensor_from_proto(proto_of(t, raw), "t");
      EXPECT_EQ(x.dtype(), t.dtype) << t.name;
      ASSERT_EQ(x.numel(), 3);
      for (int i = 0; i < 3; ++i)
        EXPECT_EQ(x.get_double(i), t.dtype == DType::boolean ? (i ? 1 : 0) : i)
            << t.name << (raw ? " raw" : " typed");
    }
  onnx::TensorProto half = proto_of(kDTypeTraits[0], true);
  half.set_data_type(onnx::TensorProto::FLOAT16);
  const std::string e = error_of([&] { tensor_from_proto(half, "weights.w"); });
  EXPECT_NE(e.find("weights.w"), std::string::npos) << e;
  EXPECT_NE(e.find("FLOAT16"), std::string::npos) << e;
  onnx::TensorProto short_raw = proto_of(kDTypeTraits[0], true);
  short_raw.set_raw_data("abc");
  EXPECT_NE(error_of([&] { tensor_from_proto(short_raw, "w"); }), "no error");
}

TEST(OnnxImport, InitializersAndConstantNodesBecomeConstantValues) {
  OnnxBuilder b;
  b.input("x", {2, 3}).output("y", {2, 3});
  b.initializer("w", f32({2, 3}, {1, 2, 3, 4, 5, 6}));
  auto& c = b.node("Constant", {}, {"k"});
  auto* a = c.add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = proto_of(kDTypeTraits[0], false);
  a->mutable_t()->clear_dims();
  a->mutable_t()->add_dims(1);
  a->mutable_t()->clear_float_data();
  a->mutable_t()->add_float_data(10);
  b.node("Mul", {"x", "w"}, {"m"});
  b.node("Add", {"m", "k"}, {"y"});
  ImportOptions keep;
  keep.run_passes = false;
  const Graph g = load_onnx_bytes(b.bytes(), "model.onnx", keep);
  int constants = 0;
  for (const Value& v : g.values)
    if (v.constant) ++constants;
  EXPECT_EQ(constants, 2);  // w and k; no Constant node is left to run
  for (const Node& n : g.nodes) EXPECT_NE(n.op_type, "Constant");
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_FALSE(g.nodes[0].name.empty());  // unnamed nodes get names, for configs and messages
  EXPECT_NE(g.nodes[0].name, g.nodes[1].name);
  // The graph computes what its source says: x * w + 10.
  Tensor x = f32({2, 3}, {1, 1, 1, 2, 2, 2});
  const Tensor y = run_graph_once(g, {x});
  expect_close(y, f32({2, 3}, {11, 12, 13, 18, 20, 22}));
}

TEST(OnnxImport, RefusalsNameTheModelOrNode) {
  const std::string junk = error_of([] { load_onnx_bytes("not a model", "junk.onnx"); });
  EXPECT_NE(junk.find("junk.onnx"), std::string::npos) << junk;
  OnnxBuilder b;
  b.input("x", {1, 4}).output("y", {1, 4});
  b.node("NoSuchOp", {"x"}, {"y"}, "weird");
  const std::string e = error_of([&] { load_onnx_bytes(b.bytes(), "m.onnx"); });
  EXPECT_NE(e.find("m.onnx"), std::string::npos) << e;
  EXPECT_NE(e.find("NoSuchOp"), std::string::npos) << e;
  OnnxBuilder old(40);  // newer than any opset mixq knows
  old.input("x", {1, 4}).output("y", {1, 4});
  old.node("Relu", {"x"}, {"y"});
  const std::string o = error_of([&] { load_onnx_bytes(old.bytes(), "old.onnx"); });
  EXPECT_NE(o.find("old.onnx"), std::string::npos) << o;
}

TEST(OnnxImport, ExportedGraphsImportToTheSameValues) {
  OnnxBuilder b;
  b.input("x", {1, 3}).output("y", {1, 2});
  b.initializer("w", f32({3, 2}, {1, -1, 0.5f, 2, -3, 0.25f}));
  b.node("MatMul", {"x", "w"}, {"y"}, "mm");
  const Graph g = load_onnx_bytes(b.bytes(), "m.onnx");
  TempDir d;
  save_onnx(g, d.file("again.onnx"));
  const Graph again = load_onnx(d.file("again.onnx"));
  const Tensor x = f32({1, 3}, {0.5f, -2, 4});
  expect_close(run_graph_once(again, {x}), run_graph_once(g, {x}), 0, 0);
}
