// Resize (opsets 10, 11, 13; opsets 18-19 arrive lowered to the opset-13 form, see
// onnx/lower_opset.cpp) and Upsample (opsets 7 and 9).
//
// Every resized axis is one separable 1-D pass: each output coordinate x is mapped to an input
// coordinate by coordinate_transformation_mode (half_pixel, pytorch_half_pixel, align_corners,
// asymmetric, tf_half_pixel_for_nn, tf_crop_and_resize), and reads a few taps around it with
// weights given by the mode (nearest with its nearest_mode, linear, cubic with cubic_coeff_a and
// exclude_outside). Taps outside the input read its edge, as the ONNX reference does. Passes
// run axis after axis, so N-linear and N-cubic are products of their 1-D forms.
// Where the ONNX reference uses the float length input * scale rather than the integer output
// length (align_corners, tf_crop_and_resize), so does this kernel.
// Before opset 11 (Resize-10 and Upsample) the transform is asymmetric and nearest rounds down.
// Backward (float data, every mode): each pass transposed, in reverse order; the gradient of a
// tf_crop_and_resize output that took the extrapolation value is dropped.
#include <cmath>
#include <cstring>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

enum class Mode { nearest, linear, cubic };
enum class Coord { half_pixel, pytorch_half_pixel, align_corners, asymmetric, tf_half_pixel, crop };
enum class Round { prefer_floor, prefer_ceil, floor, ceil };

// One axis's 1-D pass: output coordinate o reads taps idx[o * taps + t] with weights
// w[o * taps + t], or the extrapolation value when outside[o].
struct AxisPass {
  size_t axis = 0;
  int64_t in = 0, out = 0;
  int taps = 1;
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<char> outside;
};

struct Plan {
  Shape out;
  std::vector<AxisPass> passes;  // in axis order; identity axes are left out
};

double cubic_weight(double s, double a) {
  s = std::fabs(s);
  if (s <= 1) return ((a + 2) * s - (a + 3)) * s * s + 1;
  if (s < 2) return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
  return 0;
}

class Resize final : public Kernel {
 public:
  Resize(const Node& node, const Graph& graph) : node_(node) {
    const bool upsample = node.op_type == "Upsample";
    legacy_ = upsample || graph.opset < 11;
    scales_attr_ = upsample && graph.opset < 9;
    const std::string mode = node.get_string("mode", "nearest");
    if (mode == "nearest") {
      mode_ = Mode::nearest;
    } else if (mode == "linear" || (upsample && mode == "bilinear")) {
      mode_ = Mode::linear;
    } else if (mode == "cubic" && !legacy_) {
      mode_ = Mode::cubic;
    } else {
      throw Error(node.label(), "unknown mode '" + mode + "'");
    }
    if (legacy_) {
      coord_ = Coord::asymmetric;
      round_ = Round::floor;
      return;
    }
    const std::string ct = node.get_string("coordinate_transformation_mode", "half_pixel");
    static const std::vector<std::pair<std::string, Coord>> kCoords = {
        {"half_pixel", Coord::half_pixel},
        {"pytorch_half_pixel", Coord::pytorch_half_pixel},
        {"align_corners", Coord::align_corners},
        {"asymmetric", Coord::asymmetric},
        {"tf_half_pixel_for_nn", Coord::tf_half_pixel},
        {"tf_crop_and_resize", Coord::crop}};
    coord_ = lookup(kCoords, ct, "coordinate_transformation_mode");
    static const std::vector<std::pair<std::string, Round>> kRounds = {
        {"round_prefer_floor", Round::prefer_floor},
        {"round_prefer_ceil", Round::prefer_ceil},
        {"floor", Round::floor},
        {"ceil", Round::ceil}};
    round_ = lookup(kRounds, node.get_string("nearest_mode", "round_prefer_floor"), "nearest_mode");
    cubic_a_ = node.get_float("cubic_coeff_a", -0.75f);
    exclude_outside_ = node.get_int("exclude_outside", 0) != 0;
    extrapolation_ = node.get_float("extrapolation_value", 0.f);
    check(!node.has("antialias") || node.get_int("antialias", 0) == 0, node.label(),
          "antialias is not implemented");
    check(!node.has("axes"), node.label(), "axes (opset 18) are not implemented");
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    const Tensor& x = required_input(in, 0, node_);
    const Plan p = plan(x, in);
    check(mode_ == Mode::nearest || x.dtype() == DType::f32 || x.dtype() == DType::f64,
          node_.label(),
          std::string("linear and cubic modes need float input, got ") + dtype_name(x.dtype()));
    visit_dtype<kNumericTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor cur = x;
      Shape shape = x.shape();
      for (const AxisPass& a : p.passes) {
        shape[a.axis] = a.out;
        Tensor next(x.dtype(), shape);
        pass_forward<T>(cur, next, a);
        cur = std::move(next);
      }
      ensure(*out.at(0), x.dtype(), p.out);
      if (cur.nbytes()) std::memcpy(out[0]->raw(), cur.raw(), cur.nbytes());
    });
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    Tensor* gx = grad_slot(gin, 0);
    for (size_t i = 1; i < gin.size() && i < in.size(); ++i)  // roi, scales: none
      if (gin[i] && in[i]) *gin[i] = Tensor(in[i]->dtype(), in[i]->shape());
    if (!gx) return;
    const Tensor& x = required_input(in, 0, node_);
    const Tensor& gy = grad_arg(gout, 0, node_.label());
    const Plan p = plan(x, in);
    check(gy.shape() == p.out && (out.empty() || !out[0] || gy.dtype() == out[0]->dtype()),
          node_.label(), "gradient has the wrong type or shape");
    visit_dtype<kFloatTypes>(x.dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      // The input shape of each pass, then the passes transposed from the last.
      std::vector<Shape> before;
      Shape shape = x.shape();
      for (const AxisPass& a : p.passes) {
        before.push_back(shape);
        shape[a.axis] = a.out;
      }
      Tensor cur = gy;
      for (size_t k = p.passes.size(); k-- > 0;) {
        Tensor prev(x.dtype(), before[k]);
        pass_backward<T>(cur, prev, p.passes[k]);
        cur = std::move(prev);
      }
      ensure(*gx, x.dtype(), x.shape());
      if (cur.nbytes()) std::memcpy(gx->raw(), cur.raw(), cur.nbytes());
    });
  }

 private:
  template <class E>
  E lookup(const std::vector<std::pair<std::string, E>>& table, const std::string& v,
           const std::string& what) const {
    for (const auto& [name, e] : table)
      if (name == v) return e;
    throw Error(node_.label(), "unknown " + what + " '" + v + "'");
  }

  // Reads roi / scales / sizes and builds the passes.
  Plan plan(const Tensor& x, const std::vector<const Tensor*>& in) const {
    const size_t r = x.rank();
    std::vector<double> scales;
    std::vector<int64_t> sizes;
    std::vector<double> roi;
    auto present = [&](size_t i) { return i < in.size() && in[i] && in[i]->numel() > 0; };
    if (scales_attr_) {
      for (float s : node_.get_floats("scales")) scales.push_back(s);
      check(!scales.empty(), node_.label(), "missing attribute scales");
    } else if (legacy_) {
      const Tensor& s = required_input(in, 1, node_);
      for (int64_t i = 0; i < s.numel(); ++i) scales.push_back(s.get_double(i));
    } else {
      check(present(2) != present(3), node_.label(),
            "needs exactly one of scales and sizes (non-empty)");
      if (present(2))
        for (int64_t i = 0; i < in[2]->numel(); ++i) scales.push_back(in[2]->get_double(i));
      if (present(3)) {
        check(in[3]->dtype() == DType::i64, node_.label(), "sizes must be int64");
        sizes = in[3]->to_ints();
      }
      if (coord_ == Coord::crop) {
        check(present(1), node_.label(), "tf_crop_and_resize needs the roi input");
        for (int64_t i = 0; i < in[1]->numel(); ++i) roi.push_back(in[1]->get_double(i));
        check(roi.size() == 2 * r, node_.label(),
              "roi has " + std::to_string(roi.size()) + " values, needs " + std::to_string(2 * r) +
                  " for rank " + std::to_string(r));
      }
    }
    const size_t given = scales.empty() ? sizes.size() : scales.size();
    check(given == r, node_.label(),
          std::string(scales.empty() ? "sizes" : "scales") + " has " + std::to_string(given) +
              " values for an input of rank " + std::to_string(r) + " " + shape_str(x.shape()));
    Plan p;
    p.out = x.shape();
    for (size_t d = 0; d < r; ++d) {
      const int64_t len = x.dim(d);
      double scale;
      if (!scales.empty()) {
        scale = scales[d];
        check(scale > 0 && std::isfinite(scale), node_.label(),
              "scales must be positive, got " + std::to_string(scale) + " for axis " +
                  std::to_string(d));
        p.out[d] = static_cast<int64_t>(std::floor(static_cast<double>(len) * scale));
      } else {
        check(sizes[d] >= 0, node_.label(), "negative size " + std::to_string(sizes[d]));
        p.out[d] = sizes[d];
        scale = len ? static_cast<double>(sizes[d]) / static_cast<double>(len) : 1.0;
      }
      check(len > 0 || p.out[d] == 0, node_.label(),
            "cannot resize an empty axis " + std::to_string(d) + " to " + std::to_string(p.out[d]));
      const double start = roi.empty() ? 0 : roi[d], end = roi.empty() ? 1 : roi[r + d];
      AxisPass a = axis_pass(d, len, p.out[d], scale, start, end);
      if (!identity(a)) p.passes.push_back(std::move(a));
    }
    return p;
  }

  static bool identity(const AxisPass& a) {
    if (a.in != a.out || a.taps != 1) return false;
    for (int64_t o = 0; o < a.out; ++o)
      if (a.outside[o] || a.idx[o] != o || a.w[o] != 1.0) return false;
    return true;
  }

  // The input coordinate of output coordinate x (NaN: outside, for tf_crop_and_resize).
  double source(int64_t xi, int64_t len, int64_t out, double scale, double start,
                double end) const {
    const double x = static_cast<double>(xi), l = static_cast<double>(len);
    const double resized = scale * l;  // the reference's float output length
    switch (coord_) {
      case Coord::half_pixel:
        return (x + 0.5) / scale - 0.5;
      case Coord::pytorch_half_pixel:
        return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
      case Coord::align_corners:
        return resized == 1 ? 0.0 : x * (l - 1) / (resized - 1);
      case Coord::asymmetric:
        return x / scale;
      case Coord::tf_half_pixel:
        return (x + 0.5) / scale;
      case Coord::crop: {
        const double v = resized == 1 ? (end - start) * (l - 1) / 2
                                      : x * (end - start) * (l - 1) / (resized - 1);
        const double s = v + start * (l - 1);
        return s < 0 || s > l - 1 ? std::nan("") : s;
      }
    }
    return x;
  }

  AxisPass axis_pass(size_t axis, int64_t len, int64_t out, double scale, double start,
                     double end) const {
    AxisPass a;
    a.axis = axis;
    a.in = len;
    a.out = out;
    a.taps = mode_ == Mode::nearest ? 1 : mode_ == Mode::linear ? 2 : 4;
    a.idx.assign(static_cast<size_t>(out * a.taps), 0);
    a.w.assign(a.idx.size(), 0.0);
    a.outside.assign(static_cast<size_t>(out), 0);
    auto clamp = [&](int64_t i) { return std::min(std::max<int64_t>(i, 0), len - 1); };
    for (int64_t o = 0; o < out; ++o) {
      const double s = source(o, len, out, scale, start, end);
      if (std::isnan(s)) {
        a.outside[o] = 1;
        continue;
      }
      int64_t* idx = &a.idx[o * a.taps];
      double* w = &a.w[o * a.taps];
      const double fl = std::floor(s);
      const bool whole = s == fl;
      // The left neighbour and the distance from it, in (0, 1] as the ONNX reference takes it.
      const int64_t left = static_cast<int64_t>(fl) - (whole ? 1 : 0);
      const double ratio = whole ? 1.0 : s - fl;
      if (mode_ == Mode::nearest) {
        bool right = whole;
        if (!whole) {
          switch (round_) {
            case Round::prefer_floor:
              right = ratio > 0.5;
              break;
            case Round::prefer_ceil:
              right = ratio >= 0.5;
              break;
            case Round::floor:
              right = false;
              break;
            case Round::ceil:
              right = true;
              break;
          }
        }
        idx[0] = clamp(left + (right ? 1 : 0));
        w[0] = 1.0;
        continue;
      }
      std::vector<int64_t> raw;
      if (mode_ == Mode::linear) {
        raw = {left, left + 1};
        w[0] = 1 - ratio;
        w[1] = ratio;
      } else {
        raw = {left - 1, left, left + 1, left + 2};
        const double dist[4] = {1 + ratio, ratio, 1 - ratio, 2 - ratio};
        for (int t = 0; t < 4; ++t) w[t] = cubic_weight(dist[t], cubic_a_);
      }
      if (exclude_outside_) {
        double sum = 0;
        for (int t = 0; t < a.taps; ++t) {
          if (raw[t] < 0 || raw[t] >= len) w[t] = 0;
          sum += w[t];
        }
        for (int t = 0; t < a.taps; ++t) w[t] = sum != 0 ? w[t] / sum : 0;
      }
      for (int t = 0; t < a.taps; ++t) idx[t] = clamp(raw[t]);
    }
    return a;
  }

  static void split(const Shape& s, size_t axis, int64_t* outer, int64_t* inner) {
    *outer = 1;
    *inner = 1;
    for (size_t d = 0; d < axis; ++d) *outer *= s[d];
    for (size_t d = axis + 1; d < s.size(); ++d) *inner *= s[d];
  }

  template <class T>
  void pass_forward(const Tensor& src, Tensor& dst, const AxisPass& a) const {
    int64_t outer, inner;
    split(src.shape(), a.axis, &outer, &inner);
    const T* ps = src.data<T>();
    T* pd = dst.data<T>();
    const T extra = saturate_cast<T>(extrapolation_);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < a.out; ++j) {
        T* row = pd + (o * a.out + j) * inner;
        if (a.outside[j]) {
          std::fill(row, row + inner, extra);
          continue;
        }
        const int64_t* idx = &a.idx[j * a.taps];
        const double* w = &a.w[j * a.taps];
        if (a.taps == 1) {
          const T* from = ps + (o * a.in + idx[0]) * inner;
          std::copy(from, from + inner, row);
          continue;
        }
        for (int64_t k = 0; k < inner; ++k) {
          double acc = 0;
          for (int t = 0; t < a.taps; ++t)
            acc += w[t] * static_cast<double>(ps[(o * a.in + idx[t]) * inner + k]);
          row[k] = saturate_cast<T>(acc);
        }
      }
  }

  template <class T>
  void pass_backward(const Tensor& gdst, Tensor& gsrc, const AxisPass& a) const {
    int64_t outer, inner;
    split(gsrc.shape(), a.axis, &outer, &inner);
    const T* pg = gdst.data<T>();
    T* ps = gsrc.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < a.out; ++j) {
        if (a.outside[j]) continue;
        const T* row = pg + (o * a.out + j) * inner;
        for (int t = 0; t < a.taps; ++t) {
          const T w = static_cast<T>(a.w[j * a.taps + t]);
          T* to = ps + (o * a.in + a.idx[j * a.taps + t]) * inner;
          for (int64_t k = 0; k < inner; ++k) to[k] += w * row[k];
        }
      }
  }

  Node node_;
  bool legacy_ = false;       // Resize-10 and Upsample: scales only, asymmetric, floor
  bool scales_attr_ = false;  // Upsample-7: scales as an attribute
  Mode mode_ = Mode::nearest;
  Coord coord_ = Coord::half_pixel;
  Round round_ = Round::prefer_floor;
  double cubic_a_ = -0.75;
  bool exclude_outside_ = false;
  double extrapolation_ = 0;
};

}  // namespace

void register_resize_ops(Registry& r) {
  r.add("Resize", "ref", make_kernel<Resize>, true);
  r.add("Upsample", "ref", make_kernel<Resize>, true);
}

}  // namespace mixq
