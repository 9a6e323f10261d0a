// A small network with its search space and measured sensitivities, for the allocator tests.
#pragma once
#include "ir/graph.h"
#include "search/candidates.h"
#include "search/sensitivity.h"
#include "support/synthetic_data.h"

namespace mixq::test {

// conv_chain_net(5), its w2/w4/w8 search space (8-bit activations) and the sensitivities
// measured on 32 samples of a synthetic dataset.
struct MeasuredNet {
  Graph g;
  SyntheticDataset data{64, {2, 6, 6}, 3, 4};
  SearchSpace space;
  SensitivityData sens;
  MeasuredNet();
};

}  // namespace mixq::test
