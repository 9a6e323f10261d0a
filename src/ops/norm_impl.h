// Internal to the normalization kernels (norm_ref.cpp, the double-precision references, and
// norm_dnnl.cpp, BatchNormalization's f32 fast path): how X splits into channels and positions,
// BatchNormalization's attributes and running-variance rule, which both paths must share.
//
// Internal attribute: mixq_layout = "NHWC" makes BatchNormalization's X and Y channels-last.
#pragma once
#include <memory>

#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq::norm_impl {

// X as [n, c, positions] (or [n, positions, c] channels-last).
struct Planes {
  int64_t n = 0, c = 0, pos = 1;
};

Planes planes_of(const Shape& x, bool nhwc, const Node& node);
// The mixq_layout attribute: true for channels-last.
bool read_nhwc(const Node& node);

// ---------------------------------------------------------------------------------------------
// BatchNormalization
//
// Training mode (the node's training_mode = 1 from opset 14, or its statistics outputs before
// that, or set_training(true)) normalises with the batch statistics and writes the updated
// running ones to outputs 1 and 2: running = running * momentum + batch * (1 - momentum). The
// batch variance is the biased one, as the ONNX reference computes it, except that a kernel put
// into training by mixq's trainer (set_training) updates the running variance with the unbiased
// one, as PyTorch does, so models trained here match PyTorch's.

struct BnAttrs {
  double eps, momentum;
  bool training, nhwc;
  explicit BnAttrs(const Node& node, const Graph& graph)
      : eps(node.get_float("epsilon", 1e-5f)),
        momentum(node.get_float("momentum", 0.9f)),
        nhwc(read_nhwc(node)) {
    // Opset 14 has an explicit flag; earlier opsets train when the statistics outputs are used.
    bool wants_stats = false;
    for (size_t i = 1; i < node.outputs.size(); ++i) wants_stats |= node.outputs[i] >= 0;
    training = graph.opset >= 14 ? node.get_int("training_mode", 0) != 0 : wants_stats;
  }
};

// Factor from the biased batch variance to the one the running variance is updated with.
double running_var_factor(bool unbiased, const Planes& p);

// BatchNormalization's reference kernel (also the fast path's fallback) and its fast kernel
// (nullptr when the node is not one it covers).
std::unique_ptr<Kernel> make_bn_ref(const Node& node, const Graph& graph);
std::unique_ptr<Kernel> make_bn_fast(const Node& node, const Graph& graph);

}  // namespace mixq::norm_impl
