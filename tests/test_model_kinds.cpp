// Models beyond image classifiers, end to end: a ViT-style classifier, a BERT-style encoder (int64
// token ids and an attention mask) and a U-Net (Resize, Concat skips, GroupNormalization) run as
// ONNX Runtime runs them, and `mixq quantize` allocates bits over their layers from unlabelled npz
// data and exports a QDQ model ONNX Runtime runs with the outputs mixq predicts.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <regex>

#include "data/npy.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "quant/apply.h"
#include "quant/layers.h"
#include "runtime/differential.h"
#include "runtime/executor.h"
#include "support/onnx_builder.h"
#include "support/peer.h"
#include "support/random_graph.h"

namespace mixq {
namespace {

using test::run_command;
using test::TempDir;

const std::string kMixq = MIXQ_BINARY;

// Samples for a model's inputs: token ids within the vocabulary and masks of random lengths for
// int64 inputs [N, T], normal values for float inputs.
std::map<std::string, Tensor> make_inputs(const Graph& g, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::map<std::string, Tensor> out;
  std::vector<int64_t> lengths(n);
  for (auto& l : lengths) l = std::uniform_int_distribution<int64_t>(2, 8)(rng);
  for (int v : g.inputs) {
    const Value& in = g.values[v];
    Shape s = in.shape;
    s[0] = n;
    Tensor t(in.dtype, s);
    const int64_t per = t.numel() / n;
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (in.dtype == DType::f32) {
        t.data<float>()[i] = std::normal_distribution<float>(0, 1)(rng);
      } else {
        const bool inside = i % per < lengths[i / per];
        t.data<int64_t>()[i] =
            in.name == "attention_mask"
                ? inside
                : (inside ? std::uniform_int_distribution<int64_t>(1, 39)(rng) : 0);
      }
    }
    out.emplace(in.name, std::move(t));
  }
  return out;
}

std::vector<Tensor> in_model_order(const Graph& g, const std::map<std::string, Tensor>& m) {
  std::vector<Tensor> v;
  for (int i : g.inputs) v.push_back(m.at(g.values[i].name));
  return v;
}

void write_npz(const std::string& path, const std::map<std::string, Tensor>& arrays) {
  std::ofstream(path, std::ios::binary)
      << npz_bytes(std::vector<std::pair<std::string, Tensor>>(arrays.begin(), arrays.end()), true);
}

// Every output of the graph on these inputs agrees with ONNX Runtime's.
void expect_outputs_agree(const std::map<std::string, Tensor>& ort, const Graph& g,
                          const std::vector<Tensor>& mine, double rel, const std::string& what) {
  DifferentialOptions o;
  o.abs_tol = rel / 10;
  o.rel_tol = rel;
  ASSERT_EQ(mine.size(), g.outputs.size());
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const std::string& name = g.values[g.outputs[k]].name;
    ASSERT_EQ(ort.count(name), 1u) << name;
    double worst = 0;
    EXPECT_TRUE(tensors_agree(ort.at(name), mine[k], o, &worst))
        << what << ": output '" << name << "' differs by " << worst;
  }
}

// A QDQ model in ONNX Runtime against mixq's fake-quantized prediction. The two sum products in
// different orders, so a value landing on an activation quantizer's rounding boundary can round
// one step apart and carry that step to the outputs (measured on the U-Net: 1.2 % of the output
// elements, by at most 0.4 % of the output's range; the transformers agree everywhere): at most
// 2 % of the elements differ beyond 1e-3 relative, by at most 2 % of the output's range.
void expect_qdq_agrees(const std::map<std::string, Tensor>& ort, const Graph& g,
                       const std::vector<Tensor>& mine) {
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const std::string& name = g.values[g.outputs[k]].name;
    ASSERT_EQ(ort.count(name), 1u) << name;
    const Tensor &a = ort.at(name), &b = mine[k];
    ASSERT_EQ(a.shape(), b.shape()) << name;
    double range = 0, worst = 0;
    int64_t off = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      const double x = a.get_double(i), y = b.get_double(i), d = std::abs(x - y);
      range = std::max(range, std::abs(x));
      worst = std::max(worst, d);
      off += d > 1e-4 + 1e-3 * std::abs(x);
    }
    EXPECT_LE(static_cast<double>(off), 0.02 * static_cast<double>(a.numel()))
        << "output '" << name << "': " << off << " of " << a.numel() << " elements differ";
    EXPECT_LE(worst, 0.02 * range) << "output '" << name << "'";
    std::cout << "QDQ in ONNX Runtime vs mixq, output '" << name << "': " << off << " of "
              << a.numel() << " elements beyond 1e-3, largest difference " << worst
              << " (output range " << range << ")\n";
  }
}

struct Case {
  const char* name;
  test::RandomGraph (*make)(uint64_t, int);
  int min_matmuls;  // linear layers the allocation must cover
  bool classifier;  // output 0 is class scores: top-1 agreement is meaningful
};

class ModelKinds : public ::testing::TestWithParam<Case> {};

TEST_P(ModelKinds, RunAsOnnxRuntimeAndQuantizeFromUnlabelledNpz) {
  const std::string missing = test::peer_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;
  TempDir dir;
  const std::string model = dir.file("model.onnx");
  std::ofstream(model, std::ios::binary) << GetParam().make(21, 2).onnx;
  const Graph g = load_onnx(model);

  // Float: fast and reference paths against ONNX Runtime on every output, 1e-4 relative.
  const auto test_in = make_inputs(g, 64, 2);
  const auto ort = test::run_peer_outputs(model, test_in);
  for (Impl impl : {Impl::fast, Impl::reference}) {
    Executor ex(g, impl, impl == Impl::fast);
    expect_outputs_agree(ort, g, ex.run(in_model_order(g, test_in)), 1e-4,
                         impl == Impl::fast ? "float, fast" : "float, reference");
  }

  // mixq's own export of the float graph (internal operators in their ONNX forms) runs the same.
  save_onnx(g, dir.file("float_export.onnx"));
  expect_outputs_agree(test::run_peer_outputs(dir.file("float_export.onnx"), test_in), g,
                       Executor(g, Impl::fast, true).run(in_model_order(g, test_in)), 1e-4,
                       "float export");

  // Quantize under 4 bits on unlabelled npz data: sensitivities are KL to the float model.
  write_npz(dir.file("calib.npz"), make_inputs(g, 128, 1));
  write_npz(dir.file("test.npz"), test_in);
  const auto r = run_command(
      kMixq + " quantize " + model + " --calib-data npz:" + dir.file("calib.npz") +
      " --data npz:" + dir.file("test.npz") +
      " --budget 4bits --candidates w2,w4,w4-msq1.5,w8 --samples 64 -o " + dir.file("out") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  // Class scores are compared by KL, other outputs by mean squared error.
  EXPECT_NE(r.out.find(GetParam().classifier ? "predicted KL to the float model increase"
                                             : "predicted MSE to the float model increase"),
            std::string::npos)
      << r.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m,
                                std::regex("agreement with the float model: top-1 "
                                           "([0-9.]+) %, KL ([0-9.e-]+), SQNR ([^\\n]*)")))
      << r.out;
  if (GetParam().classifier) {  // 4-bit weights keep most decisions of the float model
    EXPECT_GT(std::stod(m[1]), 50.0) << r.out;
  }
  EXPECT_GT(std::stod(m[3]), 10.0) << r.out;  // SQNR of the first output, dB

  // The allocation covers the linear layers (projections, MLPs, classifier), within budget.
  const QuantConfig cfg = load_quant_config(dir.file("out/quant.json"));
  const auto layers = find_quant_layers(g);
  int matmuls = 0;
  std::string bits;
  for (const QuantLayer& l : layers) {
    const LayerConfig* lc = cfg.find(l.name);
    ASSERT_NE(lc, nullptr) << l.name;
    ASSERT_FALSE(lc->rows.empty()) << l.name << " left in float";
    matmuls += l.op_type == "MatMul";
    if (!bits.empty()) bits += ' ';
    bits += std::to_string(lc->rows[0].bits);
    // MSQ: some rows in another scheme (SP2) than the first.
    for (const RowQuant& q : lc->rows)
      if (q.scheme != lc->rows[0].scheme) {
        bits += "m";
        break;
      }
  }
  EXPECT_GE(matmuls, GetParam().min_matmuls);  // two blocks: qkv, output, two MLP projections
  // The budget holds over the searched layers; the first and last stay at --edge-bits (8).
  const std::vector<QuantLayer> searched(layers.begin() + 1, layers.end() - 1);
  EXPECT_LE(average_weight_bits(g, cfg, searched), 4.0 + 1e-9);

  // ONNX Runtime runs the QDQ export with the outputs mixq predicts from quant.json.
  const std::string qdq = dir.file("out/model_qdq.onnx");
  const auto ort_q = test::run_peer_outputs(qdq, test_in, true);
  // The weights as compensated rounding left them (quantize's default): out/model.onnx.
  const Graph rounded = load_onnx(dir.file("out/model.onnx"));
  Executor predicted(apply_quant(rounded, cfg), Impl::fast, true);
  expect_qdq_agrees(ort_q, g, predicted.run(in_model_order(g, test_in)));
  std::cout << "| " << GetParam().name << " | " << layers.size() << " (" << matmuls << " MatMul) | "
            << m[1] << " % | " << m[2] << " | " << m[3] << " | " << bits << " |\n";
}

INSTANTIATE_TEST_SUITE_P(Models, ModelKinds,
                         ::testing::Values(Case{"ViT", test::vit_like_graph, 8, true},
                                           Case{"BERT", test::bert_like_graph, 8, true},
                                           Case{"UNet", test::unet_like_graph, 0, false}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mixq
