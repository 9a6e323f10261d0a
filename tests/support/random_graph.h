// Random valid ONNX graphs for differential testing: the fast executor (fusion, channels-last
// chains, in-place sums, batch slices) must compute what the reference computes on any of them.
// A seed picks a stem of convolution blocks (residual chains, pools, pads, slices, transposes,
// values read by several later nodes), then optionally turns the feature map into tokens as a
// PyTorch export does (Shape/Gather/Concat/Reshape, a class token through
// ConstantOfShape/Where/Expand), runs attention and MLP blocks on them (LayerNormalization,
// MatMul, Softmax, Erf-GELU, residual adds), and ends in a classifier head.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mixq::test {

struct RandomGraph {
  std::string onnx;            // the serialized model (opset 17)
  std::vector<Tensor> inputs;  // a batch to feed it
  std::string summary;         // the blocks drawn, for failure messages
};

// The same seed gives the same graph and inputs. Every draw stays small enough that running
// both executors takes milliseconds.
RandomGraph random_graph(uint64_t seed);
// The structural choices read from bytes (a fuzzer's input), one byte a choice, then seeded ones.
RandomGraph graph_from_choices(const uint8_t* data, size_t size);

// A ViT classifier as PyTorch exports it (item by item the graph of a torch.onnx.export at opset
// 17: strided Conv patches, Shape/Slice/Concat/Reshape/Transpose, class token through
// ConstantOfShape/Where/Expand, positions, pre-norm attention and Erf-GELU MLP blocks, the class
// token taken by Gather), with seeded weights; input [N, 3, 16, 16], 10 classes.
RandomGraph vit_like_graph(uint64_t seed, int blocks);
// A BERT-style encoder: inputs input_ids and attention_mask (int64 [N, 8], vocabulary 40,
// trailing padding masked), word and position embeddings, pre-norm blocks with the additive
// attention mask; outputs 10-class logits from the first token and the hidden states [N, 8, 16].
RandomGraph bert_like_graph(uint64_t seed, int blocks);
// A U-Net at opset 21 (IR 10): input x [N, 3, 16, 16], `levels` (1..4) Conv + ReLU encoders
// with MaxPool down, GroupNormalization (21) at the bottom, Resize up (nearest, then linear
// half_pixel) and Concat skips; output y [N, 4, 16, 16]. Seeded weights.
RandomGraph unet_like_graph(uint64_t seed, int levels);

}  // namespace mixq::test
