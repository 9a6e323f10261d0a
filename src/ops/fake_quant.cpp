// mixq.FakeQuant: activation quantize-dequantize inserted at the inputs of quantized layers.
// Attributes: scale (float), zero_point, qmin, qmax (ints); see quant/observer.h.
#include <cstring>

#include "base/error.h"
#include "ops/common.h"
#include "ops/kernel.h"
#include "quant/observer.h"

namespace mixq {
namespace {

class FakeQuantKernel : public Kernel {
 public:
  FakeQuantKernel(const Node& node, const Graph&) : node_(node) {
    q_.scale = node.get_float("scale", 0);
    q_.zero_point = static_cast<int32_t>(node.get_int("zero_point", 0));
    q_.qmin = static_cast<int32_t>(node.get_int("qmin", 0));
    q_.qmax = static_cast<int32_t>(node.get_int("qmax", 255));
    check(q_.scale > 0, node.label(), "scale must be positive");
    check(q_.qmin <= q_.zero_point && q_.zero_point <= q_.qmax, node.label(),
          "zero point outside [qmin, qmax]");
  }
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    check(x.dtype() == DType::f32, node_.label(), "expects float32 input");
    ensure(*out[0], DType::f32, x.shape());
    if (x.nbytes()) std::memcpy(out[0]->raw(), x.raw(), x.nbytes());
    q_.fake_quantize(out[0]->data<float>(), x.numel());
  }

 private:
  Node node_;
  ActQuant q_;
};

}  // namespace

void register_quant_ops(Registry& r) {
  r.add("mixq.FakeQuant", "ref", make_kernel<FakeQuantKernel>, true);
}

}  // namespace mixq
