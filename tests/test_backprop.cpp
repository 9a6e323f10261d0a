// The reverse pass itself: gradients flow through a chain and accumulate where a value is used
// twice. Uses mixq.FakeQuant's straight-through backward and Add/Mul, whichever exist; the
// per-op checks live with each op family.
#include <gtest/gtest.h>

#include "ops/kernel.h"
#include "support/gradcheck.h"
#include "runtime/backprop.h"

using namespace mixq;
using namespace mixq::test;

TEST(Backprop, AccumulateGradAddsOrTakesOver) {
  Tensor acc;
  accumulate_grad(acc, Tensor::from<float>({2}, {1, 2}));
  accumulate_grad(acc, Tensor::from<float>({2}, {10, 20}));
  EXPECT_EQ(acc.to_floats(), (std::vector<float>{11, 22}));
}

TEST(Backprop, KernelWithoutBackwardNamesTheNode) {
  struct NoGrad : Kernel {
    void forward(const std::vector<const Tensor*>&, const std::vector<Tensor*>&) override {}
  } k;
  k.label = "Foo node 'f'";
  Tensor g;
  std::vector<Tensor*> gin{&g};
  try {
    k.backward({}, {}, {}, gin);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("Foo node 'f': has no backward"), std::string::npos);
  }
}
