// Pad with modes constant, reflect and edge. Pads are an attribute before opset 11 and an input
// from 11 (with an optional constant_value input). Negative pads crop: the result is the padding
// of the cropped tensor, so reflect and edge read the cropped borders. Backward (float types, all
// modes): each output element's gradient is added to the input element it was read from, and
// for constant mode the padding's gradient to the constant_value input.
#include <cstring>
#include <type_traits>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// Copies are memory-bound: threads pay off only on big tensors, and on a loaded machine every
// parallel region risks waiting a scheduler slice for a descheduled thread.
constexpr int64_t kParallelElems = int64_t{1} << 20;

enum class PadMode { constant, reflect, edge };

// Writes v converted to dtype t at p.
void store_as(DType t, double v, std::byte* p) {
  visit_dtype(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T x = std::is_same_v<T, bool> ? T(v != 0) : static_cast<T>(v);
    std::memcpy(p, &x, sizeof x);
  });
}

// For each output dimension, the input coordinate each output coordinate reads (-1: constant),
// and where the last axis reads the input straight: out [pb, pb + n) <- in [lo, lo + n).
struct SourceMap {
  std::vector<std::vector<int64_t>> coords;
  int64_t pb = 0, n = 0, lo = 0;
};

class Pad : public Kernel {
 public:
  Pad(const Node& node, const Graph&) : node_(node), attr_form_(node.has("pads")) {
    const std::string mode = node.get_string("mode", "constant");
    if (mode == "constant")
      mode_ = PadMode::constant;
    else if (mode == "reflect")
      mode_ = PadMode::reflect;
    else if (mode == "edge")
      mode_ = PadMode::edge;
    else
      throw Error(node.label(), "unsupported pad mode '" + mode + "'");
    if (attr_form_) {  // before opset 11
      pads_ = node.get_ints("pads");
      value_ = node.get_float("value", 0.f);
    }
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const size_t es = dtype_size(x.dtype());
    std::vector<std::byte> fill(es);
    if (attr_form_) {
      store_as(x.dtype(), value_, fill.data());
    } else if (optional_input(in, 2) && in[2]->numel() > 0) {
      check(in[2]->dtype() == x.dtype(), node_.label(), "constant_value type differs from data");
      std::memcpy(fill.data(), in[2]->raw(), es);
    }
    Shape s;
    SourceMap map = plan(x, in, &s);
    ensure(*out[0], x.dtype(), s);
    if (out[0]->numel()) copy(x, map, fill.data(), *out[0]);
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>&,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    const Tensor& x = required_input(in, 0, node_);
    check(!gout.empty() && gout[0], node_.label(), "no gradient for output 0");
    const Tensor& g = *gout[0];
    Tensor* gx = gin.empty() ? nullptr : gin[0];
    const Tensor* value = attr_form_ ? nullptr : optional_input(in, 2);
    Tensor* gv = value ? grad_slot(gin, 2) : nullptr;
    Shape s;
    const SourceMap map = plan(x, in, &s);
    check(g.shape() == s && g.dtype() == x.dtype(), node_.label(),
          "gradient has the wrong type or shape");
    const size_t r = x.rank();
    const auto xs = shape_strides(x.shape());
    visit_dtype<kFloatTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      if (gx) zeros<T>(*gx, x.shape());
      T* dst = gx ? gx->data<T>() : nullptr;
      const T* pg = g.data<T>();
      T padding = 0;  // the gradient of the constant
      std::vector<int64_t> pos(r, 0);
      for (int64_t i = 0; i < g.numel(); ++i) {
        int64_t off = 0;
        bool inside = true;
        for (size_t d = 0; d < r && inside; ++d) {
          const int64_t c = map.coords[d][pos[d]];
          inside = c >= 0;
          off += c * xs[d];
        }
        if (!inside)
          padding += pg[i];
        else if (dst)
          dst[off] += pg[i];
        for (size_t d = r; d-- > 0;) {
          if (++pos[d] < g.dim(d)) break;
          pos[d] = 0;
        }
      }
      if (gv) {
        zeros<T>(*gv, value->shape());
        if (gv->numel() > 0) gv->data<T>()[0] = padding;
      }
    });
  }

 protected:
  // The output shape *s and where each output coordinate reads.
  SourceMap plan(const Tensor& x, const std::vector<const Tensor*>& in, Shape* out_shape) const {
    const size_t r = x.rank();
    const std::vector<int64_t> pads = attr_form_ ? pads_ : required_input(in, 1, node_).to_ints();
    check(pads.size() == 2 * r, node_.label(),
          std::to_string(pads.size()) + " pads for a rank-" + std::to_string(r) + " input");
    Shape& s = *out_shape;
    s.assign(r, 0);
    SourceMap map;
    map.coords.resize(r);
    for (size_t d = 0; d < r; ++d) {
      const int64_t b = pads[d], e = pads[d + r];
      const int64_t lo = std::max<int64_t>(0, -b);
      const int64_t n = x.dim(d) - lo - std::max<int64_t>(0, -e);
      const int64_t pb = std::max<int64_t>(0, b), pe = std::max<int64_t>(0, e);
      check(n >= 0, node_.label(),
            "negative pads crop more than axis " + std::to_string(d) + " of " +
                shape_str(x.shape()) + " holds");
      check(mode_ == PadMode::constant || n > 0 || pb + pe == 0, node_.label(),
            "cannot reflect or extend an empty axis");
      s[d] = n + pb + pe;
      map.coords[d].resize(s[d]);
      for (int64_t o = 0; o < s[d]; ++o) map.coords[d][o] = source(o - pb, n, lo);
      if (d + 1 == r) map.pb = pb, map.n = n, map.lo = lo;
    }
    return map;
  }

  // Coordinate i of the cropped axis [lo, lo + n) mapped to an input coordinate, -1 for constant.
  int64_t source(int64_t i, int64_t n, int64_t lo) const {
    if (i >= 0 && i < n) return lo + i;
    switch (mode_) {
      case PadMode::constant:
        return -1;
      case PadMode::edge:
        return lo + (i < 0 ? 0 : n - 1);
      case PadMode::reflect: {
        if (n == 1) return lo;
        // numpy's reflect is periodic with period 2(n-1), the borders not repeated.
        const int64_t period = 2 * (n - 1);
        int64_t k = ((i % period) + period) % period;
        return lo + (k < n ? k : period - k);
      }
    }
    return -1;
  }

  // Reference: every output element looks its source up dimension by dimension.
  virtual void copy(const Tensor& x, const SourceMap& map, const std::byte* fill, Tensor& y) {
    const size_t r = x.rank(), es = dtype_size(x.dtype());
    const auto xs = shape_strides(x.shape());
    const auto* src = static_cast<const std::byte*>(x.raw());
    auto* dst = static_cast<std::byte*>(y.raw());
    std::vector<int64_t> pos(r, 0);
    for (int64_t i = 0; i < y.numel(); ++i) {
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < r && inside; ++d) {
        const int64_t c = map.coords[d][pos[d]];
        inside = c >= 0;
        off += c * xs[d];
      }
      std::memcpy(dst + i * es, inside ? src + off * es : fill, es);
      for (size_t d = r; d-- > 0;) {
        if (++pos[d] < y.dim(d)) break;
        pos[d] = 0;
      }
    }
  }

  Node node_;
  PadMode mode_ = PadMode::constant;
  bool attr_form_;
  std::vector<int64_t> pads_;
  float value_ = 0.f;
};

// f32: output rows in parallel; the inside of each row is one memcpy.
class PadF32 final : public Pad {
 public:
  using Pad::Pad;

 protected:
  void copy(const Tensor& xt, const SourceMap& map, const std::byte* fill, Tensor& yt) override {
    const size_t r = xt.rank();
    if (xt.dtype() != DType::f32 || r == 0) return Pad::copy(xt, map, fill, yt);
    const float* x = xt.data<float>();
    float* y = yt.data<float>();
    float cval;
    std::memcpy(&cval, fill, sizeof cval);
    const auto xs = shape_strides(xt.shape());
    const std::vector<int64_t>& last = map.coords[r - 1];
    const int64_t width = yt.dim(r - 1), rows = yt.numel() / width;
    const int64_t j0 = map.pb, n = map.n;
#pragma omp parallel for schedule(static) if (yt.numel() > kParallelElems)
    for (int64_t row = 0; row < rows; ++row) {
      float* dst = y + row * width;
      int64_t rem = row, off = 0;
      bool inside = true;
      for (size_t d = r - 1; d-- > 0;) {
        const int64_t c = map.coords[d][rem % yt.dim(d)];
        rem /= yt.dim(d);
        inside = inside && c >= 0;
        off += c * xs[d];
      }
      if (!inside) {
        for (int64_t j = 0; j < width; ++j) dst[j] = cval;
        continue;
      }
      const float* src = x + off;
      for (int64_t j = 0; j < j0; ++j) dst[j] = last[j] < 0 ? cval : src[last[j]];
      if (n) std::memcpy(dst + j0, src + map.lo, n * sizeof(float));
      for (int64_t j = j0 + n; j < width; ++j) dst[j] = last[j] < 0 ? cval : src[last[j]];
    }
  }
};

}  // namespace

void register_shape_pad_ops(Registry& r) {
  r.add("Pad", "fast", make_f32_kernel<PadF32>, false);
  r.add("Pad", "ref", make_kernel<Pad>, true);
}

}  // namespace mixq
