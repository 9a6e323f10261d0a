// Quantization operators: ONNX QuantizeLinear / DequantizeLinear (per tensor or per axis,
// int8/uint8, int32 for dequantization), and mixq.FakeQuant, the activation quantize-dequantize
// inserted at the inputs of quantized layers (attributes scale, zero_point, qmin, qmax; see
// ops/quant_grid.h), with the straight-through backward of quantization-aware training.
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "ir/internal_names.h"
#include "ops/common.h"
#include "ops/kernel.h"
#include "ops/quant_grid.h"

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

  // Straight-through estimator: rounding counts as the identity, clamping does not, so the
  // gradient passes where x lies in [lo, hi] and is 0 outside.
  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    if (gin.empty() || !gin[0]) return;
    const Tensor& x = required_input(in, 0, node_);
    check(!gout.empty() && gout[0], node_.label(), "no gradient for output 0");
    const Tensor& g = *gout[0];
    check(x.dtype() == DType::f32 && g.dtype() == DType::f32 && g.shape() == x.shape(),
          node_.label(), "gradient has the wrong type or shape");
    ensure(*gin[0], DType::f32, x.shape());
    const float lo = q_.lo(), hi = q_.hi();
    const float* px = x.data<float>();
    const float* pg = g.data<float>();
    float* r = gin[0]->data<float>();
    const int64_t n = x.numel();
#pragma omp parallel for simd if (n >= (int64_t{1} << 15)) schedule(static)
    for (int64_t i = 0; i < n; ++i) r[i] = ((px[i] >= lo) & (px[i] <= hi)) ? pg[i] : 0.0f;
  }

 private:
  Node node_;
  ActQuant q_;
};

// Per-tensor or per-axis parameters: element i of x uses parameter index channel(i).
struct AxisParams {
  int64_t axis = -1;  // -1: per tensor
  int64_t inner = 1, channels = 1;
  int64_t index(int64_t i) const { return axis < 0 ? 0 : (i / inner) % channels; }
};

AxisParams axis_params(const Node& node, const Tensor& x, const Tensor& scale) {
  AxisParams p;
  if (scale.numel() == 1 && scale.rank() <= 1) return p;
  check(scale.rank() == 1, node.label(), "scale must be a scalar or 1-D");
  p.axis = normalize_axis(node.get_int("axis", 1), static_cast<int64_t>(x.rank()), node);
  p.channels = x.dim(p.axis);
  check(scale.numel() == p.channels, node.label(),
        "scale has " + std::to_string(scale.numel()) + " values, axis has " +
            std::to_string(p.channels));
  for (size_t d = p.axis + 1; d < x.rank(); ++d) p.inner *= x.dim(d);
  return p;
}

class QuantizeLinearKernel : public Kernel {
 public:
  QuantizeLinearKernel(const Node& node, const Graph&) : node_(node) {}
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& scale = required_input(in, 1, node_);
    check(x.dtype() == DType::f32 && scale.dtype() == DType::f32, node_.label(),
          "expects float32 input and scale");
    const Tensor* zp = optional_input(in, 2);
    const DType t = zp ? zp->dtype() : DType::u8;
    check(t == DType::u8 || t == DType::i8, node_.label(), "zero point must be uint8 or int8");
    AxisParams p = axis_params(node_, x, scale);
    ensure(*out[0], t, x.shape());
    const float* xs = x.data<float>();
    const float* s = scale.data<float>();
    const float lo = t == DType::u8 ? 0.f : -128.f, hi = t == DType::u8 ? 255.f : 127.f;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t c = p.index(i);
      const float z = zp ? static_cast<float>(zp->get_int(zp->numel() == 1 ? 0 : c)) : 0.f;
      // NaN (0/0 from a zero scale, or a NaN input) has no integer; it maps to the zero
      // point rather than through an undefined float-to-integer conversion.
      const float r = std::nearbyint(xs[i] / s[c]);
      const float q =
          std::isnan(r) ? std::min(std::max(z, lo), hi) : std::min(std::max(r + z, lo), hi);
      if (t == DType::u8)
        out[0]->data<uint8_t>()[i] = static_cast<uint8_t>(q);
      else
        out[0]->data<int8_t>()[i] = static_cast<int8_t>(q);
    }
  }

 private:
  Node node_;
};

class DequantizeLinearKernel : public Kernel {
 public:
  DequantizeLinearKernel(const Node& node, const Graph&) : node_(node) {}
  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& scale = required_input(in, 1, node_);
    check(x.dtype() == DType::u8 || x.dtype() == DType::i8 || x.dtype() == DType::i32,
          node_.label(), "expects int8, uint8 or int32 input");
    check(scale.dtype() == DType::f32, node_.label(), "expects a float32 scale");
    const Tensor* zp = optional_input(in, 2);
    AxisParams p = axis_params(node_, x, scale);
    ensure(*out[0], DType::f32, x.shape());
    const float* s = scale.data<float>();
    float* y = out[0]->data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t c = p.index(i);
      const int64_t z = zp ? zp->get_int(zp->numel() == 1 ? 0 : c) : 0;
      y[i] = static_cast<float>(x.get_int(i) - z) * s[c];
    }
  }

 private:
  Node node_;
};

}  // namespace

void register_quant_ops(Registry& r) {
  r.add(names::internal_key(names::kFakeQuant), "ref", make_kernel<FakeQuantKernel>, true);
  r.add("QuantizeLinear", "ref", make_kernel<QuantizeLinearKernel>, true);
  r.add("DequantizeLinear", "ref", make_kernel<DequantizeLinearKernel>, true);
}

}  // namespace mixq
