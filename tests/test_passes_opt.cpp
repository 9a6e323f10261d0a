// The inference optimiser (shape probe, conv fusion, channels-last layout) and the optimising
// executor (in-place residual sums): optimised, unoptimised and reference executors agree on
// small graphs built here and on ResNet-20; no value a caller or a later node needs is
// overwritten; node ranges of the optimised graph run from cached activations.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <map>
#include <random>

#include "onnx/import.h"
#include "passes/batch_rows.h"
#include "passes/fuse.h"
#include "passes/layout.h"
#include "passes/optimize.h"
#include "passes/shape_info.h"
#include "runtime/executor.h"
#include "support/paths.h"
#include "support/op_runner.h"

using namespace mixq;
using namespace mixq::test;

namespace {

using Ints = std::vector<int64_t>;

// Builds graphs node by node. Intermediate shapes are left unknown, as ONNX shape inference
// often leaves them, so the optimiser has to find them out.
struct Builder {
  Graph g;
  explicit Builder(int64_t opset = 13) {
    g.opset = opset;
    g.source = "test";
  }
  int input(const std::string& name, const Shape& shape) {
    int v = g.add_value(name);
    g.values[v].shape = shape;
    g.values[v].shape_known = true;
    g.inputs.push_back(v);
    return v;
  }
  int weight(const std::string& name, const Shape& shape, uint32_t seed, float sd = 0.3f) {
    return g.add_constant(name, normal_f32(shape, seed, sd));
  }
  int ints(const std::string& name, const Ints& v) {
    return g.add_constant(name, Tensor::from<int64_t>({static_cast<int64_t>(v.size())}, v));
  }
  int node(const std::string& op, const std::vector<int>& in, const std::string& out,
           std::map<std::string, Attribute> attrs = {}) {
    Node n;
    n.name = out;
    n.op_type = op;
    n.inputs = in;
    n.attrs = std::move(attrs);
    n.outputs = {g.add_value(out)};
    g.nodes.push_back(std::move(n));
    return g.nodes.back().outputs[0];
  }
  // 3x3 (or 3-tap for rank-3 input) convolution with bias, same padding.
  int conv(int x, int64_t cin, int64_t cout, const std::string& name, int64_t stride = 1,
           int spatial = 2) {
    const uint32_t seed = static_cast<uint32_t>(std::hash<std::string>{}(name));
    Shape ws{cout, cin};
    for (int i = 0; i < spatial; ++i) ws.push_back(3);
    int w = weight(name + ".w", ws, seed, 0.3f);
    int b = weight(name + ".b", {cout}, seed + 1, 0.1f);
    return node("Conv", {x, w, b}, name,
                {{"kernel_shape", Ints(spatial, 3)},
                 {"pads", Ints(2 * spatial, 1)},
                 {"strides", Ints(spatial, stride)}});
  }
  int relu(int x, const std::string& name) { return node("Relu", {x}, name); }
  Graph done(const std::vector<int>& outputs) {
    g.outputs = outputs;
    g.sort();
    return g;
  }
};

// x + conv(relu(conv(x))), then relu: a ResNet basic block with an identity shortcut.
int identity_block(Builder& b, int x, int64_t c, const std::string& name) {
  int r = b.relu(b.conv(x, c, c, name + ".conv1"), name + ".relu1");
  int s = b.node("Add", {b.conv(r, c, c, name + ".conv2"), x}, name + ".add");
  return b.relu(s, name + ".out");
}

// The CIFAR ResNet shortcut that halves H and W and zero-pads channels c -> 2c, written the
// way PyTorch exports it (Slice with steps, Pad with constant pads).
int downsample_block(Builder& b, int x, int64_t c, const std::string& name) {
  int r = b.relu(b.conv(x, c, 2 * c, name + ".conv1", 2), name + ".relu1");
  int y = b.conv(r, 2 * c, 2 * c, name + ".conv2");
  const int64_t big = 1 << 30;
  int s1 = b.node("Slice",
                  {x, b.ints(name + ".s0", {0}), b.ints(name + ".e0", {big}),
                   b.ints(name + ".a0", {2}), b.ints(name + ".t0", {2})},
                  name + ".slice_h");
  int s2 = b.node("Slice",
                  {s1, b.ints(name + ".s1", {0}), b.ints(name + ".e1", {big}),
                   b.ints(name + ".a1", {3}), b.ints(name + ".t1", {2})},
                  name + ".slice_w");
  int p =
      b.node("Pad", {s2, b.ints(name + ".pads", {0, c / 2, 0, 0, 0, c / 2, 0, 0})}, name + ".pad");
  return b.relu(b.node("Add", {y, p}, name + ".add"), name + ".out");
}

std::vector<Tensor> run(const Graph& g, Impl impl, bool optimize, const std::vector<Tensor>& in) {
  Executor ex(g, impl, optimize);
  std::vector<Tensor> out;
  for (const Tensor& t : ex.run(in)) out.push_back(t.clone());
  return out;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what,
                  double tol = 1e-4) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  double worst = 0;
  int64_t at = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double w = want.data<float>()[i], d = std::fabs(got.data<float>()[i] - w);
    const double err = d / std::max(1.0, std::fabs(w));
    if (!(err <= worst)) worst = err, at = i;
  }
  EXPECT_LE(worst, tol) << what << ": element " << at;
}

// Optimised fast, unoptimised fast and reference executors agree on every output.
void expect_all_agree(const Graph& g, const std::vector<Tensor>& in, const std::string& what) {
  auto opt = run(g, Impl::fast, true, in);
  auto plain = run(g, Impl::fast, false, in);
  auto ref = run(g, Impl::reference, false, in);
  ASSERT_EQ(opt.size(), ref.size());
  for (size_t i = 0; i < opt.size(); ++i) {
    expect_close(opt[i], ref[i], what + ", optimised vs reference, output " + std::to_string(i));
    expect_close(plain[i], ref[i], what + ", plain vs reference, output " + std::to_string(i));
  }
}

int count_ops(const Graph& g, const std::string& op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op_type == op;
  return n;
}

const Node* producer_of(const Graph& g, const std::string& value) {
  for (const Node& n : g.nodes)
    for (int o : n.outputs)
      if (o >= 0 && g.values[o].name == value) return &n;
  return nullptr;
}

// stem conv -> identity block -> downsampling block -> global pool -> flatten.
Graph small_resnet(int64_t c = 4, int64_t hw = 8) {
  Builder b;
  int x = b.input("x", {-1, 3, hw, hw});
  int r0 = b.relu(b.conv(x, 3, c, "stem"), "stem.relu");
  int r1 = identity_block(b, r0, c, "b1");
  int r2 = downsample_block(b, r1, c, "b2");
  int gp = b.node("GlobalAveragePool", {r2}, "gap");
  int f = b.node("Flatten", {gp}, "flat");
  return b.done({f});
}

// Sets the OpenMP thread count for one scope.
class OmpThreads {
 public:
  explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreads() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Shape facts

TEST(PassesShapeInfo, ProbeTellsBatchFollowingDimsFromStaticOnes) {
  Builder b;
  int x = b.input("x", {-1, 4, 8, 8});
  int c = b.conv(x, 4, 4, "conv");
  int m = b.node("ReduceMean", {c}, "mean", {{"axes", Ints{0}}, {"keepdims", int64_t{1}}});
  int p = b.node("Pad", {m, b.ints("pads", {0, 0, 0, 0, 0, 0, 0, 0})}, "pad");
  Graph g = b.done({p});
  ShapeInfo s(g);
  ASSERT_TRUE(s.probed());
  EXPECT_TRUE(s.same_shape(x, c));
  // [1,4,8,8] equals [N,4,8,8] at batch 1 only.
  EXPECT_FALSE(s.same_shape(c, m));
  EXPECT_TRUE(s.same_shape(m, p));
  EXPECT_EQ(s.rank(p), 4);
  EXPECT_EQ(s.rank(g.find_value("pads")), 1);
  EXPECT_EQ(s.rank(12345), -1);
}

TEST(PassesShapeInfo, WithoutProbeOnlyFullyStaticShapesCompare) {
  Builder b;
  int x = b.input("x", {-1, 4, -1, -1});  // dynamic spatial dims: not probed
  int y = b.input("y", {-1, 4, -1, -1});
  int z = b.input("z", {2, 4, 5, 5});
  int w = b.input("w", {2, 4, 5, 5});
  int a = b.node("Add", {x, y}, "a");
  Graph g = b.done({a});
  ShapeInfo s(g);
  EXPECT_FALSE(s.probed());
  EXPECT_FALSE(s.same_shape(x, y));  // the -1s may differ
  EXPECT_TRUE(s.same_shape(z, w));
  EXPECT_EQ(s.rank(x), 4);
  EXPECT_EQ(s.rank(a), -1);
}

// ---------------------------------------------------------------------------------------------
// Fusion

TEST(PassesFuse, ResidualBlocksBecomeConvsWithSumAndRelu) {
  Graph g = small_resnet();
  const size_t values = g.values.size();
  const int stem_relu = g.find_value("stem.relu");
  Graph f = g;
  const int removed = fuse_conv_activations(f, ShapeInfo(f));
  // stem relu, and per block relu1, add, out relu: 7 nodes.
  EXPECT_EQ(removed, 7);
  EXPECT_EQ(count_ops(f, "Relu"), 0);
  EXPECT_EQ(count_ops(f, "Add"), 0);
  // Value ids keep their meaning: nothing renumbered.
  EXPECT_EQ(f.values.size(), values);
  EXPECT_EQ(f.find_value("stem.relu"), stem_relu);
  const Node* conv2 = producer_of(f, "b2.out");
  ASSERT_NE(conv2, nullptr);
  EXPECT_EQ(conv2->op_type, "Conv");
  EXPECT_EQ(conv2->get_string("mixq_activation", ""), "Relu");
  EXPECT_EQ(conv2->get_int("mixq_sum", 0), 1);
  EXPECT_EQ(f.values[conv2->inputs[3]].name, "b2.pad");  // the downsampling shortcut
  // The caller's graph is untouched.
  EXPECT_EQ(count_ops(g, "Add"), 2);
}

TEST(PassesFuse, LeavesWhatCannotBeFused) {
  Builder b;
  int x = b.input("x", {-1, 4, 6, 6});
  int bias = b.input("bias", {-1, 4, 1, 1});
  int c1 = b.conv(x, 4, 4, "c1");
  int a1 = b.node("Add", {c1, bias}, "broadcast_add");  // broadcasting: no
  int c2 = b.conv(a1, 4, 4, "c2");
  int r2 = b.relu(c2, "r2");
  int a2 = b.node("Add", {r2, x}, "add_after_relu");  // relu came first: no
  int c3 = b.conv(a2, 4, 4, "c3");
  int r3 = b.relu(c3, "r3");  // c3 is also a graph output: no
  int c4 = b.conv(r3, 4, 4, "c4");
  int r4 = b.relu(c4, "r4");
  int n4 = b.node("Neg", {c4}, "neg4");  // c4 has two readers: no
  int c5 = b.conv(r4, 4, 4, "c5");
  int a5 = b.node("Add", {c5, b.weight("k", {1, 4, 6, 6}, 9)}, "const_add");  // constant: no
  Graph g = b.done({c3, a5, n4});
  Graph f = g;
  EXPECT_EQ(fuse_conv_activations(f, ShapeInfo(f)), 1);  // only c2 + r2
  EXPECT_EQ(count_ops(f, "Add"), 3);
  EXPECT_EQ(count_ops(f, "Relu"), 2);
  EXPECT_EQ(producer_of(f, "r2")->op_type, "Conv");
  std::vector<Tensor> in{normal_f32({2, 4, 6, 6}, 1), normal_f32({2, 4, 1, 1}, 2)};
  expect_all_agree(g, in, "unfusable graph");
}

// ---------------------------------------------------------------------------------------------
// Channels-last layout

TEST(PassesLayout, ChainRunsChannelsLastWithTransposesOnlyAtItsEnds) {
  Builder b;
  int x = b.input("x", {-1, 3, 8, 8});
  int r = b.relu(b.conv(x, 3, 4, "c1"), "r1");
  int p = b.node("MaxPool", {r}, "pool", {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}});
  int bn = b.node("BatchNormalization",
                  {p, b.weight("s", {4}, 3), b.weight("sh", {4}, 4), b.weight("m", {4}, 5),
                   b.g.add_constant("v", Tensor::from<float>({4}, {1, 2, 3, 4}))},
                  "bn");
  int c2 = b.conv(bn, 4, 4, "c2");
  int gp = b.node("GlobalAveragePool", {c2}, "gap");
  int f = b.node("Flatten", {gp}, "flat");
  Graph g = b.done({f});
  Graph o = g;
  ShapeInfo shapes(o);
  LayoutResult res = to_channels_last(o, shapes);
  EXPECT_EQ(res.transposes, 2);  // x in, gap out
  EXPECT_EQ(count_ops(o, "Transpose"), 2);
  for (const char* name : {"c1", "pool", "bn", "c2", "gap"})
    EXPECT_EQ(producer_of(o, name)->get_string("mixq_layout", ""), "NHWC") << name;
  EXPECT_TRUE(res.channels_last[o.find_value("r1")]);
  EXPECT_FALSE(res.channels_last[o.find_value("flat")]);
  // The value keeps its name and its static shape follows the data.
  EXPECT_EQ(o.values[o.find_value("x_nhwc")].shape, (Shape{-1, 8, 8, 3}));
  expect_all_agree(g, {normal_f32({2, 3, 8, 8}, 7)}, "NHWC chain");
}

TEST(PassesLayout, EveryChannelsLastOpAgreesWithTheReference) {
  Builder b;
  int x = b.input("x", {-1, 4, 9, 9});
  int shift = b.input("shift", {1, 4, 1, 1});
  int dw = b.node("Conv", {x, b.weight("dw.w", {4, 1, 3, 3}, 70)}, "depthwise",
                  {{"group", int64_t{4}}, {"pads", Ints{2, 2, 2, 2}}, {"dilations", Ints{2, 2}}});
  int lr = b.node("LeakyRelu", {dw}, "leaky", {{"alpha", 0.1f}});
  int cl = b.node("Clip",
                  {lr, b.g.add_constant("lo", Tensor::scalar_f32(-0.5f)),
                   b.g.add_constant("hi", Tensor::scalar_f32(0.8f))},
                  "clip");
  int fq = b.node("FakeQuant", {cl}, "fq",
                  {{"scale", 0.01f},
                   {"zero_point", int64_t{50}},
                   {"qmin", int64_t{0}},
                   {"qmax", int64_t{255}}});
  b.g.nodes.back().domain = "mixq";
  int sub = b.node("Sub", {fq, shift}, "sub");  // [1,C,1,1] graph input: transposed in
  int ap = b.node("AveragePool", {sub}, "avg",
                  {{"kernel_shape", Ints{3, 3}},
                   {"strides", Ints{2, 2}},
                   {"pads", Ints{1, 1, 1, 1}},
                   {"count_include_pad", int64_t{1}},
                   {"ceil_mode", int64_t{1}}});
  int c = b.conv(ap, 4, 6, "conv");
  int gm = b.node("GlobalMaxPool", {c}, "gmax");
  Graph g = b.done({gm, ap});
  Executor ex(g, Impl::fast, true);
  const Graph& o = ex.graph();
  for (const char* name : {"depthwise", "leaky", "clip", "fq", "sub", "avg_nhwc", "conv"})
    EXPECT_TRUE(ex.channels_last(o.find_value(name))) << name;
  EXPECT_FALSE(ex.channels_last(o.find_value("avg")));  // a graph output
  // In: x and shift; out: avg (a graph output read on by the conv) and gmax.
  EXPECT_EQ(count_ops(o, "Transpose"), 4);
  expect_all_agree(g, {normal_f32({2, 4, 9, 9}, 71), normal_f32({1, 4, 1, 1}, 72)},
                   "channels-last ops");
}

TEST(PassesLayout, NonLayoutOpInterruptsTheChain) {
  Builder b;
  int x = b.input("x", {-1, 3, 6, 6});
  int c1 = b.conv(x, 3, 4, "c1");
  int sm = b.node("Softmax", {c1}, "softmax", {{"axis", int64_t{1}}});  // channel axis
  int c2 = b.conv(sm, 4, 4, "c2");
  int r2 = b.relu(c2, "r2");
  Graph g = b.done({r2});
  Executor ex(g, Impl::fast, true);
  const Graph& o = ex.graph();
  // x -> NHWC, c1 -> NCHW for Softmax, softmax -> NHWC, r2 -> NCHW output.
  EXPECT_EQ(count_ops(o, "Transpose"), 4);
  EXPECT_EQ(producer_of(o, "softmax")->get_string("mixq_layout", ""), "");
  EXPECT_TRUE(ex.channels_last(o.find_value("c1")));
  EXPECT_FALSE(ex.channels_last(o.find_value("softmax")));
  expect_all_agree(g, {normal_f32({2, 3, 6, 6}, 8)}, "interrupted chain");
}

TEST(PassesLayout, GraphOutputsKeepNameAndLayoutWhileTheChainGoesOn) {
  Builder b;
  int x = b.input("x", {-1, 3, 6, 6});
  int c1 = b.conv(x, 3, 4, "c1");  // output and conv input at once
  int c2 = b.conv(c1, 4, 5, "c2");
  int s = b.node("Mul", {c2, b.weight("scale", {1, 5, 1, 1}, 11)}, "scaled");
  int t = b.node("Transpose", {s}, "to_nhwc", {{"perm", Ints{0, 2, 3, 1}}});
  Graph g = b.done({c1, t});
  Executor ex(g, Impl::fast, true);
  const Graph& o = ex.graph();
  ASSERT_EQ(o.outputs.size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_EQ(o.values[o.outputs[i]].name, g.values[g.outputs[i]].name);
  for (int v : o.outputs) EXPECT_FALSE(ex.channels_last(v));
  EXPECT_TRUE(ex.channels_last(o.find_value("scaled")));
  // The per-channel Mul runs NHWC (its [1,C,1,1] operand transposed) and the user's Transpose
  // reads the NHWC data with the composed (here identity) permutation.
  EXPECT_EQ(producer_of(o, "to_nhwc")->get_ints("perm"), (Ints{0, 1, 2, 3}));
  expect_all_agree(g, {normal_f32({2, 3, 6, 6}, 12)}, "outputs in the chain");
}

TEST(PassesLayout, SliceAndPadInBothOpsetForms) {
  for (int64_t opset : {9, 13}) {
    Builder b(opset);
    int x = b.input("x", {-1, 4, 7, 9});
    int c = b.conv(x, 4, 4, "c");
    int s;
    if (opset < 10)
      s = b.node("Slice", {c}, "slice",
                 {{"starts", Ints{1, -5}}, {"ends", Ints{3, 100}}, {"axes", Ints{1, -1}}});
    else  // no axes: they default to 0..2
      s = b.node("Slice", {c, b.ints("st", {0, 1, 2}), b.ints("en", {100, 3, -1})}, "slice");
    int p;
    if (opset < 11)
      p = b.node("Pad", {s}, "pad",
                 {{"pads", Ints{0, 1, 2, 0, 0, 3, 0, 1}}, {"mode", std::string("edge")}});
    else
      p = b.node("Pad", {s, b.ints("pads", {0, 1, 2, 0, 0, 3, 0, 1})}, "pad");
    int y = b.conv(p, 6, 2, "c2");
    Graph g = b.done({y});
    Executor ex(g, Impl::fast, true);
    EXPECT_EQ(count_ops(ex.graph(), "Transpose"), 2) << "opset " << opset;
    EXPECT_TRUE(ex.channels_last(ex.graph().find_value("pad"))) << "opset " << opset;
    expect_all_agree(g, {normal_f32({3, 4, 7, 9}, 13)}, "opset " + std::to_string(opset));
  }
}

// ---------------------------------------------------------------------------------------------
// Batch rows

TEST(PassesBatchRows, ResidualNetworkKeepsRowsApart) {
  Graph g = small_resnet();
  // The widest row: 4 channels x 8 x 8 floats.
  EXPECT_EQ(batch_row_bytes(g, ShapeInfo(g)), 4 * 8 * 8 * 4);
}

TEST(PassesBatchRows, OpsThatMixRowsStopSlicing) {
  // Each case keeps the batch leading in every shape, so only the op rules can refuse it.
  const int64_t big = 1 << 30;
  struct Case {
    const char* what;
    std::function<int(Builder&, int)> tail;  // x [N,4,6,6] -> output
  };
  const std::vector<Case> cases = {
      {"Slice reversing the batch",
       [&](Builder& b, int x) {
         return b.node(
             "Slice",
             {x, b.ints("s", {-1}), b.ints("e", {-big}), b.ints("a", {0}), b.ints("t", {-1})},
             "rev");
       }},
      {"Softmax over the batch",
       [](Builder& b, int x) {
         return b.node("Softmax", {x}, "sm", {{"axis", int64_t{0}}});
       }},
      {"LayerNormalization over everything",
       [](Builder& b, int x) {
         return b.node("LayerNormalization",
                       {x, b.g.add_constant("one", Tensor::from<float>({4, 6, 6}, {}))}, "ln",
                       {{"axis", int64_t{0}}});
       }},
      {"Batch mean added back",
       [](Builder& b, int x) {
         int m = b.node("ReduceMean", {x}, "mean", {{"axes", Ints{0}}, {"keepdims", int64_t{1}}});
         return b.node("Add", {x, m}, "centred");
       }},
      {"Reshape to a shape read from the batch",
       [](Builder& b, int x) {
         return b.node("Reshape", {x, b.node("Shape", {x}, "shape")}, "reshaped");
       }},
      {"BatchNormalization in training mode",
       [](Builder& b, int x) {
         Tensor one = Tensor::from<float>({4}, {1, 1, 1, 1});
         auto& n = b.g;
         return b.node("BatchNormalization",
                       {x, n.add_constant("s", one), n.add_constant("b", Tensor(DType::f32, {4})),
                        n.add_constant("m", Tensor(DType::f32, {4})), n.add_constant("v", one)},
                       "bn", {{"training_mode", int64_t{1}}});
       }},
  };
  for (const Case& c : cases) {
    Builder b(15);
    int x = b.input("x", {-1, 4, 6, 6});
    int y = c.tail(b, b.relu(x, "r"));
    Graph g = b.done({y});
    ShapeInfo shapes(g);
    ASSERT_TRUE(shapes.probed()) << c.what;
    EXPECT_EQ(shapes.batch_use(y), ShapeInfo::BatchUse::leading) << c.what;
    EXPECT_EQ(batch_row_bytes(g, shapes), 0) << c.what;
    // Still right, run whole.
    Executor ex(g, Impl::fast, true);
    EXPECT_EQ(ex.batch_slice_rows(), 0) << c.what;
    if (std::string(c.what).find("Slice") != std::string::npos ||
        std::string(c.what).find("Softmax") != std::string::npos)
      expect_all_agree(g, {normal_f32({5, 4, 6, 6}, 80)}, c.what);
  }
}

TEST(ExecutorOpt, BatchSlicesAgreeWithTheWholeBatch) {
  Graph g = small_resnet();
  Tensor x = normal_f32({200, 3, 8, 8}, 90);
  Tensor whole;
  {
    OmpThreads one(1);  // one thread: no slices
    Executor ex(g, Impl::fast, true);
    whole = ex.run({x})[0].clone();
  }
  OmpThreads two(2);
  Executor ex(g, Impl::fast, true);
  EXPECT_EQ(ex.batch_slice_rows(), 64);  // 1 MiB / 1 KiB rows, at most 64
  expect_close(ex.run({x})[0], whole, "4 slices of 64, 64, 64, 8 rows", 1e-5);
  expect_close(whole, run(g, Impl::reference, false, {x})[0], "whole vs reference");
  // Slices of other sizes, twice (buffers reused), and a batch of two: one row per thread.
  for (int64_t n : {130, 130, 2}) {
    Tensor xn = normal_f32({n, 3, 8, 8}, 91 + static_cast<uint32_t>(n));
    expect_close(ex.run({xn})[0], run(g, Impl::fast, false, {xn})[0], "batch " + std::to_string(n));
  }
}

// ---------------------------------------------------------------------------------------------
// Executor

TEST(ExecutorOpt, ResidualBlocksAgreeAtEveryBatchSize) {
  Graph g = small_resnet();
  Executor ex(g, Impl::fast, true);
  EXPECT_TRUE(ex.optimized());
  EXPECT_EQ(count_ops(ex.graph(), "Transpose"), 2);
  EXPECT_EQ(count_ops(ex.graph(), "Add"), 0);
  for (int64_t n : {1, 2, 5})
    expect_all_agree(g, {normal_f32({n, 3, 8, 8}, 20 + n)}, "batch " + std::to_string(n));
}

TEST(ExecutorOpt, ReferenceNeverOptimisesAndTheInputGraphIsUntouched) {
  Graph g = small_resnet();
  const Graph before = g;
  Executor ref(g, Impl::reference, true);
  EXPECT_FALSE(ref.optimized());
  EXPECT_EQ(ref.graph().nodes.size(), g.nodes.size());
  Executor opt(g, Impl::fast, true);
  EXPECT_LT(opt.graph().nodes.size(), g.nodes.size());
  ASSERT_EQ(g.nodes.size(), before.nodes.size());
  for (const Node& n : g.nodes)
    for (const auto& [key, value] : n.attrs) EXPECT_NE(key.rfind("mixq_", 0), 0u) << n.label();
  EXPECT_EQ(g.values.size(), before.values.size());
}

// run() with one thread runs the whole batch; with two it runs batch slices on both threads:
// the in-place rules must hold either way.
TEST(ExecutorOpt, InPlaceSumOnlyWhenNothingElseNeedsTheValue) {
  Builder b;
  int x = b.input("x", {-1, 4, 6, 6});
  int r0 = b.relu(b.conv(x, 4, 4, "stem"), "r0");
  int r1 = identity_block(b, r0, 4, "b1");  // r0 dead after b1.conv2: in place
  int r2 = identity_block(b, r1, 4, "b2");  // r1 read again below: not in place
  // r2 is a graph output, but b3 sums r2's NHWC copy, free once the output is written.
  int r3 = identity_block(b, r2, 4, "b3");
  int c4 = b.conv(r3, 4, 4, "c4");
  int a4 = b.node("Add", {c4, r3}, "self_sum");  // r3 also the conv's own input: not in place
  int late = b.node("Mul", {r1, a4}, "late_reader");
  Graph g = b.done({late, r2});
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    OmpThreads scope(threads);
    Executor ex(g, Impl::fast, true);
    const Graph& o = ex.graph();
    std::map<std::string, bool> in_place;  // by node name: the fused convs keep the conv's
    for (size_t i = 0; i < o.nodes.size(); ++i)
      if (o.nodes[i].get_int("mixq_sum", 0)) in_place[o.nodes[i].name] = ex.sums_in_place(i);
    EXPECT_EQ(in_place,
              (std::map<std::string, bool>{
                  {"b1.conv2", true}, {"b2.conv2", false}, {"b3.conv2", true}, {"c4", false}}));
    // Outputs returned by one run survive the next run.
    Tensor x1 = normal_f32({5, 4, 6, 6}, 30), x2 = normal_f32({5, 4, 6, 6}, 31);
    auto first = ex.run({x1});
    const std::vector<Tensor> first_copy{first[0].clone(), first[1].clone()};
    for (int k = 0; k < 2; ++k) {
      auto second = ex.run({x2});
      auto want2 = run(g, Impl::reference, false, {x2});
      for (size_t i = 0; i < 2; ++i) expect_close(second[i], want2[i], "second run");
    }
    auto want1 = run(g, Impl::reference, false, {x1});
    for (size_t i = 0; i < 2; ++i) {
      expect_close(first[i], first_copy[i], "held output", 0);
      expect_close(first[i], want1[i], "first run");
    }
  }
}

TEST(ExecutorOpt, InPlaceSumLeavesAViewedBufferAlone) {
  // 1-D convs stay channels-first, so the sum reads a Reshape view of r0 that a later node
  // still reads: the conv must not accumulate into the shared buffer.
  Builder b;
  int x = b.input("x", {-1, 4, 16});
  int r0 = b.relu(b.conv(x, 4, 4, "stem", 1, 1), "r0");
  int view = b.node("Reshape", {r0, b.ints("same", {0, 4, 16})}, "view");
  int c1 = b.conv(r0, 4, 4, "c1", 1, 1);
  int a1 = b.node("Add", {c1, view}, "sum");
  int late = b.node("Neg", {r0}, "late");
  Graph g = b.done({a1, late});
  {
    // Precondition of the test: the fast Reshape returns a view.
    Executor plain(g, Impl::fast);
    auto env = plain.environment();
    env[g.inputs[0]] = normal_f32({2, 4, 16}, 40);
    plain.run_range(env);
    ASSERT_EQ(env[view].raw(), env[r0].raw());
  }
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    OmpThreads scope(threads);
    Executor ex(g, Impl::fast, true);
    const Graph& o = ex.graph();
    const Node* fused = producer_of(o, "sum");
    ASSERT_EQ(fused->op_type, "Conv");
    EXPECT_TRUE(ex.sums_in_place(fused - o.nodes.data()));  // statically allowed...
    for (int k = 0; k < 2; ++k) {                           // ...but refused at run time
      Tensor in = normal_f32({4, 4, 16}, 41 + k);
      auto got = ex.run({in});
      auto want = run(g, Impl::reference, false, {in});
      for (size_t i = 0; i < 2; ++i) expect_close(got[i], want[i], "output " + std::to_string(i));
    }
  }
}

TEST(ExecutorOpt, InPlaceSumNeverWritesIntoGraphInputsOrOutputs) {
  // Channels-first (1-D) convs sum a graph input and a graph output directly.
  Builder b;
  int x = b.input("x", {-1, 4, 16});
  int r0 = b.relu(b.conv(x, 4, 4, "stem", 1, 1), "r0");
  int a1 = b.node("Add", {b.conv(r0, 4, 4, "c1", 1, 1), r0}, "sums_output");
  int a2 = b.node("Add", {b.conv(a1, 4, 4, "c2", 1, 1), x}, "sums_input");
  Graph g = b.done({a2, r0});
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    OmpThreads scope(threads);
    Executor ex(g, Impl::fast, true);
    const Graph& o = ex.graph();
    for (const char* name : {"sums_output", "sums_input"}) {
      const Node* n = producer_of(o, name);
      ASSERT_EQ(n->get_int("mixq_sum", 0), 1) << name;
      EXPECT_FALSE(ex.sums_in_place(n - o.nodes.data())) << name;
    }
    Tensor in = normal_f32({3, 4, 16}, 44);
    const Tensor in_copy = in.clone();
    auto got = ex.run({in});
    auto want = run(g, Impl::reference, false, {in_copy});
    expect_close(in, in_copy, "graph input", 0);
    for (size_t i = 0; i < 2; ++i) expect_close(got[i], want[i], "output " + std::to_string(i));
  }
}

TEST(ExecutorOpt, InPlaceSumIntoAConvThatFusesAfterThePrimitive) {
  // A 1x1 conv padded by 1 has output rows whose window lies wholly in the padding, so the conv
  // adds its fused sum after the primitive ran: the sum must be read before the conv writes
  // the buffer it was handed.
  Builder b;
  int x = b.input("x", {-1, 4, 6, 6});
  int padded = b.node("Pad", {x, b.ints("pads", {0, 0, 1, 1, 0, 0, 1, 1})}, "padded");
  int shortcut = b.node("Neg", {padded}, "shortcut");
  int w = b.weight("wide.w", {4, 4, 1, 1}, 70), bias = b.weight("wide.b", {4}, 71, 0.1f);
  int wide = b.node("Conv", {x, w, bias}, "wide",
                    {{"kernel_shape", Ints{1, 1}}, {"pads", Ints{1, 1, 1, 1}}});
  int out = b.relu(b.node("Add", {wide, shortcut}, "sum"), "out");
  Graph g = b.done({out});
  for (int threads : {1, 2}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    OmpThreads scope(threads);
    Executor ex(g, Impl::fast, true);
    const Graph& o = ex.graph();
    int fused = 0;
    for (size_t i = 0; i < o.nodes.size(); ++i)
      if (o.nodes[i].get_int("mixq_sum", 0)) {
        ++fused;
        EXPECT_EQ(o.nodes[i].op_type, "Conv");
        EXPECT_TRUE(ex.sums_in_place(i));
      }
    ASSERT_EQ(fused, 1);
    for (int k = 0; k < 2; ++k) {
      Tensor in = normal_f32({3, 4, 6, 6}, 72 + k);
      expect_close(ex.run({in})[0], run(g, Impl::reference, false, {in})[0],
                   "run " + std::to_string(k));
    }
  }
}

TEST(ExecutorOpt, NodeRangesRunFromCachedActivations) {
  Graph g = small_resnet();
  Executor ex(g, Impl::fast, true);
  const Graph& o = ex.graph();
  Tensor x = normal_f32({3, 3, 8, 8}, 50);
  auto env = ex.environment();
  env[o.inputs[0]] = x;
  ex.run_range(env);
  const Tensor full = env[o.outputs[0]].clone();
  expect_close(full, run(g, Impl::reference, false, {x})[0], "full range");
  // Re-running any suffix from the cache gives the same result (nothing was overwritten)...
  for (size_t k = 0; k < o.nodes.size(); ++k) {
    ex.run_range(env, k);
    expect_close(env[o.outputs[0]], full, "suffix from node " + std::to_string(k), 1e-6);
  }
  // ...and so does a split run.
  for (size_t k = 0; k <= o.nodes.size(); ++k) {
    auto split = ex.environment();
    split[o.inputs[0]] = x;
    ex.run_range(split, 0, k);
    ex.run_range(split, k);
    expect_close(split[o.outputs[0]], full, "split at node " + std::to_string(k), 1e-6);
  }
  // Weights swapped by name in the environment are what the optimised graph uses.
  const std::string w = "b2.conv2.w";
  Tensor nw = normal_f32(g.constant(g.find_value(w)).shape(), 51, 0.3f);
  env[o.find_value(w)] = nw;
  ex.run_range(env);
  Graph changed = g;
  changed.values[changed.find_value(w)].constant = nw;
  expect_close(env[o.outputs[0]], run(changed, Impl::reference, false, {x})[0], "swapped weight");
}

TEST(ExecutorOpt, ResNet20AgreesWithUnoptimisedAndReference) {
  const std::string path = shared_path("models/cifar10_resnet20.onnx");
  MIXQ_SKIP_UNLESS_EXISTS(path);
  Graph g = load_onnx(path);
  Executor ex(g, Impl::fast, true);
  const Graph& o = ex.graph();
  // Every Relu and Add fused (the downsampling shortcuts too); NHWC from input to pooling.
  EXPECT_EQ(count_ops(o, "Relu"), 0);
  EXPECT_EQ(count_ops(o, "Add"), 0);
  EXPECT_EQ(count_ops(o, "Transpose"), 2);
  int in_place = 0;
  for (size_t i = 0; i < o.nodes.size(); ++i) in_place += ex.sums_in_place(i);
  EXPECT_EQ(in_place, 9);
  EXPECT_EQ(o.values[o.outputs[0]].name, "logits");
  EXPECT_EQ(ex.batch_slice_rows(), 16);  // 1 MiB / (16 x 32 x 32 floats)
  Tensor x = normal_f32({2, 3, 32, 32}, 60);
  auto got = ex.run({x});
  auto plain = run(g, Impl::fast, false, {x});
  auto ref = run(g, Impl::reference, false, {x});
  expect_close(got[0], ref[0], "optimised vs reference");
  expect_close(plain[0], ref[0], "plain vs reference");
  // Twice more, at another batch size, through the in-place buffers.
  Tensor x5 = normal_f32({5, 3, 32, 32}, 61);
  for (int k = 0; k < 2; ++k)
    expect_close(ex.run({x5})[0], run(g, Impl::fast, false, {x5})[0], "batch 5");
}
