// Tiny networks the search tests share.
#pragma once
#include "ir/graph.h"

namespace mixq::test {

// x[N,2,6,6] -> `convs` convs (3x3, 4 channels, no bias) with ReLU -> GAP -> Flatten ->
// Gemm(4 -> 3): convs + 1 quantizable layers in a chain, weights seeded.
Graph conv_chain_net(int convs);

}  // namespace mixq::test
