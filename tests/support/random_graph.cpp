#include "support/random_graph.h"

#include <cmath>
#include <random>

#include "support/onnx_builder.h"

namespace mixq::test {
namespace {

using Ints = std::vector<int64_t>;

class Generator {
 public:
  // Choices come from `choices` while it lasts (so a fuzzer's mutations steer the structure),
  // then from the seeded generator; weights and inputs always come from the generator.
  Generator(uint64_t seed, const uint8_t* choices = nullptr, size_t size = 0)
      : rng_(seed), b_(17), choices_(choices), left_(size) {}

  // The shape of a small ViT as torch.onnx.export writes it: a strided patch-embedding Conv,
  // flatten(2).transpose(1, 2), a class token, learned positions, pre-norm blocks, the class
  // token's LayerNorm output into the classifier.
  RandomGraph vit(int blocks) {
    const int64_t n = 3, patch = 4;
    c_ = 3;
    h_ = w_ = 16;
    b_.input("input", {-1, c_, h_, w_});
    RandomGraph r;
    r.inputs.push_back(normal_tensor({n, c_, h_, w_}, 1.0));
    onnx::NodeProto* p;
    const int64_t d = 16;
    std::string x =
        op("Conv", {"input", weight({d, c_, patch, patch}, 0.15), weight({d}, 0.1)}, &p);
    OnnxBuilder::attr(*p, "kernel_shape", Ints{patch, patch});
    OnnxBuilder::attr(*p, "strides", Ints{patch, patch});
    c_ = d;
    h_ = w_ = 16 / patch;
    force_vit_ = true;
    x = to_tokens(x);
    for (int i = 0; i < blocks; ++i) x = mlp(attention(x));
    b_.output(token_head(x), {-1, classes_});
    r.onnx = b_.bytes();
    r.summary = summary_;
    return r;
  }

  // A BERT-style encoder: token ids and an attention mask (int64 [N, T]), word and position
  // embeddings, LayerNormalization, pre-norm attention blocks whose scores get the additive
  // mask (1 - mask) * -10000, Erf-GELU MLPs; outputs the class token's logits and the hidden
  // states.
  RandomGraph bert(int blocks) {
    const int64_t n = 4, t = 8, vocab = 40;
    d_ = 16;
    tokens_ = t;
    force_vit_ = true;
    b_.input("input_ids", {-1, t}, onnx::TensorProto::INT64);
    b_.input("attention_mask", {-1, t}, onnx::TensorProto::INT64);
    RandomGraph r;
    Tensor ids(DType::i64, {n, t}), mask(DType::i64, {n, t});
    for (int64_t i = 0; i < n; ++i) {
      const int64_t len = pick(2, t);
      for (int64_t j = 0; j < t; ++j) {
        ids.data<int64_t>()[i * t + j] = j < len ? pick(1, vocab - 1) : 0;
        mask.data<int64_t>()[i * t + j] = j < len;
      }
    }
    r.inputs = {ids, mask};
    onnx::NodeProto* p;
    std::string x = op("Gather", {weight({vocab, d_}, 1.0), "input_ids"}, &p);
    OnnxBuilder::attr(*p, "axis", int64_t{0});
    x = layernorm(op("Add", {x, weight({t, d_}, 0.5)}));
    const std::string m = op("Cast", {"attention_mask"}, &p);
    OnnxBuilder::attr(*p, "to", int64_t{onnx::TensorProto::FLOAT});
    mask_ = op("Unsqueeze",
               {op("Mul", {op("Sub", {floats({}, 1.f), m}), floats({}, -10000.f)}), ints({1, 2})});
    for (int i = 0; i < blocks; ++i) x = mlp(attention(x));
    const std::string logits = token_head(x);  // sets classes_
    b_.output(logits, {-1, classes_});
    b_.output(x, {-1, t, d_});
    r.onnx = b_.bytes();
    r.summary = summary_;
    return r;
  }

  RandomGraph make() {
    const int64_t n = pick(1, 5);
    c_ = pick(1, 4);
    h_ = pick(4, 12);
    w_ = pick(4, 12);
    b_.input("input", {-1, c_, h_, w_});
    RandomGraph r;
    r.inputs.push_back(normal_tensor({n, c_, h_, w_}, 1.0));
    std::string x = "input";
    const int blocks = static_cast<int>(pick(1, 6));
    for (int i = 0; i < blocks; ++i) x = image_block(x);
    std::string out;
    if (h_ * w_ <= 49 && coin(0.5)) {
      x = to_tokens(x);
      const int layers = static_cast<int>(pick(1, 3));
      for (int i = 0; i < layers; ++i) x = coin(0.7) ? attention(x) : mlp(x);
      out = token_head(x);
    } else {
      out = image_head(x);
    }
    b_.output(out, {-1, classes_});
    r.onnx = b_.bytes();
    r.summary = summary_;
    return r;
  }

 private:
  int64_t pick(int64_t lo, int64_t hi) {
    if (left_ > 0) return lo + static_cast<int64_t>(next_choice() % uint64_t(hi - lo + 1));
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  bool coin(double p) {
    if (left_ > 0) return next_choice() < p * 256;
    return std::bernoulli_distribution(p)(rng_);
  }
  uint8_t next_choice() {
    --left_;
    return *choices_++;
  }

  std::string fresh(const std::string& base) { return base + "_" + std::to_string(next_++); }

  Tensor normal_tensor(const Shape& s, double sd) {
    Tensor t(DType::f32, s);
    std::normal_distribution<float> d(0.f, static_cast<float>(sd));
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng_);
    return t;
  }
  std::string weight(const Shape& s, double sd) {
    const std::string name = fresh("w");
    b_.initializer(name, normal_tensor(s, sd));
    return name;
  }
  std::string ints(const Ints& v, bool scalar = false) {
    const std::string name = fresh("k");
    b_.initializer(name, Tensor::from<int64_t>(scalar ? Shape{} : Shape{int64_t(v.size())}, v));
    return name;
  }
  std::string floats(const Shape& s, float v) {
    const std::string name = fresh("f");
    Tensor t(DType::f32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = v;
    b_.initializer(name, t);
    return name;
  }
  std::string op(const std::string& type, const std::vector<std::string>& in,
                 onnx::NodeProto** node = nullptr) {
    const std::string y = fresh(type);
    onnx::NodeProto& p = b_.node(type, in, {y}, y);
    if (node) *node = &p;
    return y;
  }
  void note(const std::string& s) { summary_ += (summary_.empty() ? "" : " ") + s; }

  // ---- image stage: [N, C, H, W] ----

  std::string conv(const std::string& x, int64_t cout, int64_t k, int64_t stride, bool depthwise) {
    const int64_t group = depthwise ? c_ : 1;
    if (depthwise) cout = c_;
    const int64_t pad = coin(0.8) || h_ < k || w_ < k ? k / 2 : 0;
    onnx::NodeProto* p;
    std::vector<std::string> in = {
        x, weight({cout, c_ / group, k, k}, 1.0 / std::sqrt(double(c_ / group * k * k)))};
    if (coin(0.7)) in.push_back(weight({cout}, 0.1));
    const std::string y = op("Conv", in, &p);
    OnnxBuilder::attr(*p, "kernel_shape", Ints{k, k});
    OnnxBuilder::attr(*p, "strides", Ints{stride, stride});
    OnnxBuilder::attr(*p, "pads", Ints{pad, pad, pad, pad});
    if (group > 1) OnnxBuilder::attr(*p, "group", group);
    c_ = cout;
    h_ = (h_ + 2 * pad - k) / stride + 1;
    w_ = (w_ + 2 * pad - k) / stride + 1;
    return y;
  }

  std::string batchnorm(const std::string& x) {
    std::string scale = weight({c_}, 0.2), shift = weight({c_}, 0.2), mean = weight({c_}, 0.2);
    const std::string var = fresh("var");
    Tensor v = normal_tensor({c_}, 0.3);
    for (int64_t i = 0; i < c_; ++i) v.data<float>()[i] = 0.5f + std::fabs(v.data<float>()[i]);
    b_.initializer(var, v);
    return op("BatchNormalization", {x, scale, shift, mean, var});
  }

  // Remembers x as a value later blocks may read again (skips, concats, sums).
  void remember(const std::string& x) {
    if (seen_.empty() || seen_.back().first != x) seen_.push_back({x, {c_, h_, w_}});
  }
  // An earlier value with this exact shape, or "".
  std::string earlier(const Ints& shape) {
    std::vector<std::string> found;
    for (const auto& [v, s] : seen_)
      if (s == shape) found.push_back(v);
    return found.empty() ? "" : found[pick(0, int64_t(found.size()) - 1)];
  }

  std::string image_block(std::string x) {
    remember(x);
    switch (pick(0, 10)) {
      case 0: {  // conv, optional batchnorm and relu
        const bool dw = c_ > 1 && coin(0.2);
        const int64_t k = coin(0.5) ? 3 : 1, s = h_ >= 6 && w_ >= 6 && coin(0.3) ? 2 : 1;
        x = conv(x, pick(1, 8), k, s, dw);
        if (coin(0.4)) x = batchnorm(x);
        if (coin(0.7)) x = op("Relu", {x});
        note(dw ? "dwconv" : "conv");
        return x;
      }
      case 1: {  // residual block: conv-bn-relu-conv-bn + skip, relu
        const std::string skip = x;
        std::string y = conv(x, c_, 3, 1, false);
        if (coin(0.5)) y = batchnorm(y);
        y = op("Relu", {y});
        y = conv(y, c_, coin(0.5) ? 3 : 1, 1, false);
        if (h_ != seen_.back().second[1] || w_ != seen_.back().second[2]) return y;  // unpadded
        if (coin(0.5)) y = batchnorm(y);
        x = coin(0.5) ? op("Add", {y, skip}) : op("Add", {skip, y});
        if (coin(0.8)) x = op("Relu", {x});
        note("residual");
        return x;
      }
      case 2: {  // sum with an earlier value of the same shape (read again, maybe in place)
        const std::string e = earlier({c_, h_, w_});
        if (e.empty() || e == x) return x;
        note("sum");
        return coin(0.5) ? op("Add", {x, e}) : op("Sub", {e, x});
      }
      case 3: {  // pools
        if (h_ < 2 || w_ < 2 || coin(0.2)) {
          note("gap");
          h_ = w_ = 1;
          return op(coin(0.5) ? "GlobalAveragePool" : "GlobalMaxPool", {x});
        }
        onnx::NodeProto* p;
        const bool max = coin(0.5);
        x = op(max ? "MaxPool" : "AveragePool", {x}, &p);
        OnnxBuilder::attr(*p, "kernel_shape", Ints{2, 2});
        OnnxBuilder::attr(*p, "strides", Ints{2, 2});
        h_ /= 2;
        w_ /= 2;
        note(max ? "maxpool" : "avgpool");
        return x;
      }
      case 4: {  // zero padding of H and W, pads as an input
        const int64_t t = pick(0, 1), l = pick(0, 2), bt = pick(0, 1), r = pick(0, 1);
        x = op("Pad", {x, ints({0, 0, t, l, 0, 0, bt, r})});
        h_ += t + bt;
        w_ += l + r;
        note("pad");
        return x;
      }
      case 5: {  // slice of H or W (negative axes sometimes)
        const bool on_h = coin(0.5);
        const int64_t len = on_h ? h_ : w_;
        if (len < 3) return x;
        const int64_t axis = on_h ? (coin(0.5) ? 2 : -2) : (coin(0.5) ? 3 : -1);
        const int64_t start = pick(0, 1), end = len - pick(0, 1);
        x = op("Slice", {x, ints({start}), ints({end}), ints({axis})});
        (on_h ? h_ : w_) = end - start;
        note("slice");
        return x;
      }
      case 6: {  // H and W swapped
        onnx::NodeProto* p;
        x = op("Transpose", {x}, &p);
        OnnxBuilder::attr(*p, "perm", Ints{0, 1, 3, 2});
        std::swap(h_, w_);
        note("transpose");
        return x;
      }
      case 7: {  // elementwise
        static const char* kOps[] = {"Sigmoid", "Tanh", "Abs", "LeakyRelu", "Neg"};
        note("unary");
        return op(kOps[pick(0, 4)], {x});
      }
      case 8: {  // per-channel scale (rank 4) or a scalar shift (rank 1)
        note("scale");
        if (coin(0.5)) return op("Mul", {x, weight({1, c_, 1, 1}, 1.0)});
        return op("Add", {floats({1}, 0.25f), x});
      }
      case 9: {  // channel concat with an earlier value of the same size
        std::string e;
        int64_t channels = 0;
        for (const auto& [v, s] : seen_)
          if (s[1] == h_ && s[2] == w_ && v != x) e = v, channels = s[0];
        if (e.empty()) return x;
        c_ += channels;
        onnx::NodeProto* p;
        x = coin(0.5) ? op("Concat", {x, e}, &p) : op("Concat", {e, x}, &p);
        OnnxBuilder::attr(*p, "axis", int64_t{1});
        note("concat");
        return x;
      }
      default: {  // a value that is also a graph output while the graph goes on
        if (extra_output_ || x == "input") return x;
        extra_output_ = true;
        b_.output(x, {-1, c_, h_, w_});
        note("output");
        return op("Relu", {x});
      }
    }
  }

  std::string image_head(const std::string& x) {
    classes_ = pick(2, 10);
    if (coin(0.5)) {
      note("head:gap-gemm");
      std::string y = op("GlobalAveragePool", {x});
      y = op("Flatten", {y});
      onnx::NodeProto* p;
      y = op("Gemm",
             {y, weight({classes_, c_}, 1.0 / std::sqrt(double(c_))), weight({classes_}, 0.1)}, &p);
      OnnxBuilder::attr(*p, "transB", int64_t{1});
      return y;
    }
    note("head:flatten-matmul");
    const std::string y = op("Flatten", {x});
    const int64_t f = c_ * h_ * w_;
    return op("Add", {op("MatMul", {y, weight({f, classes_}, 1.0 / std::sqrt(double(f)))}),
                      weight({classes_}, 0.1)});
  }

  // ---- token stage: [N, T, D] ----

  // Dimension i of x as a 1-element int64 tensor, computed as PyTorch exports it.
  std::string dim_of(const std::string& x, int64_t i) {
    const std::string g = op("Gather", {op("Shape", {x}), ints({i}, true)});
    return op("Unsqueeze", {g, ints({0})});
  }

  std::string to_tokens(const std::string& x) {
    // flatten(2): Reshape by Concat(Slice(Shape(x), 0:2), [-1]); then transpose(1, 2).
    onnx::NodeProto* p;
    const std::string head = op("Slice", {op("Shape", {x}), ints({0}), ints({2}), ints({0})});
    const std::string shape = op("Concat", {head, ints({-1})}, &p);
    OnnxBuilder::attr(*p, "axis", int64_t{0});
    std::string t = op("Reshape", {x, shape});
    t = op("Transpose", {t}, &p);
    OnnxBuilder::attr(*p, "perm", Ints{0, 2, 1});
    d_ = c_;
    tokens_ = h_ * w_;
    if (!force_vit_ && (d_ % 2 != 0 || coin(0.3))) {  // an even model width for the heads
      const int64_t d = 2 * pick(1, 4);
      t = op("MatMul", {t, weight({d_, d}, 1.0 / std::sqrt(double(d_)))});
      d_ = d;
    }
    note("tokens");
    if (force_vit_ || coin(0.6)) t = class_token(t);
    if (force_vit_ || coin(0.7)) t = op("Add", {t, weight({1, tokens_, d_}, 0.1)});
    return t;
  }

  // cls.expand(B, -1, -1) as exported: ConstantOfShape/Mul/Equal/Where on the target shape.
  std::string class_token(const std::string& t) {
    onnx::NodeProto* p;
    const std::string target = op("Concat", {dim_of(t, 0), ints({-1}), ints({-1})}, &p);
    OnnxBuilder::attr(*p, "axis", int64_t{0});
    const std::string ones = op("ConstantOfShape", {ints({3})}, &p);
    auto* a = p->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
    a->mutable_t()->add_dims(1);
    a->mutable_t()->add_int64_data(1);
    const std::string minus = op("Mul", {ones, ints({-1}, true)});
    const std::string shape = op("Where", {op("Equal", {target, minus}), ones, target});
    const std::string cls = op("Expand", {weight({1, 1, d_}, 0.5), shape});
    const std::string y = op("Concat", {cls, t}, &p);
    OnnxBuilder::attr(*p, "axis", int64_t{1});
    ++tokens_;
    note("cls");
    return y;
  }

  std::string layernorm(const std::string& x) {
    onnx::NodeProto* p;
    const std::string y = op("LayerNormalization", {x, floats({d_}, 1.f), weight({d_}, 0.1)}, &p);
    OnnxBuilder::attr(*p, "axis", int64_t{-1});
    return y;
  }
  std::string linear(const std::string& x, int64_t in, int64_t out) {
    const std::string m = op("MatMul", {x, weight({in, out}, 1.0 / std::sqrt(double(in)))});
    return op("Add", {weight({out}, 0.1), m});
  }

  std::string attention(const std::string& x) {
    const int64_t heads = force_vit_ ? 4 : d_ % 4 == 0 && coin(0.5) ? 2 : 1, dh = d_ / heads;
    const std::string y = layernorm(x);
    const std::string qkv = linear(y, d_, 3 * d_);
    onnx::NodeProto* p;
    const std::string shape5 =
        op("Concat", {dim_of(y, 0), dim_of(y, 1), ints({3}), ints({heads}), ints({dh})}, &p);
    OnnxBuilder::attr(*p, "axis", int64_t{0});
    const std::string split = op("Transpose", {op("Reshape", {qkv, shape5})}, &p);
    OnnxBuilder::attr(*p, "perm", Ints{2, 0, 3, 1, 4});
    auto part = [&](int64_t i) {
      onnx::NodeProto* g;
      const std::string r = op("Gather", {split, ints({i}, true)}, &g);
      OnnxBuilder::attr(*g, "axis", int64_t{0});
      return r;
    };
    const std::string q = part(0), k = part(1), v = part(2);
    const std::string kt = op("Transpose", {k}, &p);
    OnnxBuilder::attr(*p, "perm", Ints{0, 1, 3, 2});
    std::string a = op("Mul", {op("MatMul", {q, kt}), floats({}, 1.f / std::sqrt(float(dh)))});
    if (!mask_.empty()) a = op("Add", {a, mask_});
    a = op("Softmax", {a}, &p);
    OnnxBuilder::attr(*p, "axis", int64_t{-1});
    std::string o = op("Transpose", {op("MatMul", {a, v})}, &p);
    OnnxBuilder::attr(*p, "perm", Ints{0, 2, 1, 3});
    const std::string shape3 = op("Concat", {dim_of(x, 0), dim_of(x, 1), ints({d_})}, &p);
    OnnxBuilder::attr(*p, "axis", int64_t{0});
    o = linear(op("Reshape", {o, shape3}), d_, d_);
    note(heads > 1 ? "attention2" : "attention");
    return op("Add", {x, o});
  }

  std::string gelu(const std::string& x) {
    const std::string e = op("Erf", {op("Div", {x, floats({}, std::sqrt(2.f))})});
    return op("Mul", {op("Mul", {x, op("Add", {e, floats({}, 1.f)})}), floats({}, 0.5f)});
  }

  std::string mlp(const std::string& x) {
    const int64_t hidden = 2 * d_;
    const std::string y = linear(gelu(linear(layernorm(x), d_, hidden)), hidden, d_);
    note("mlp");
    return op("Add", {x, y});
  }

  std::string token_head(const std::string& x) {
    classes_ = force_vit_ ? 10 : pick(2, 10);
    std::string y = layernorm(x);
    if (force_vit_ || coin(0.5)) {
      onnx::NodeProto* p;
      y = op("Gather", {y, ints({0}, true)}, &p);  // the class token
      OnnxBuilder::attr(*p, "axis", int64_t{1});
      note("head:token");
    } else {
      onnx::NodeProto* p;
      y = op("ReduceMean", {y}, &p);
      OnnxBuilder::attr(*p, "axes", Ints{1});
      OnnxBuilder::attr(*p, "keepdims", int64_t{0});
      note("head:mean");
    }
    onnx::NodeProto* p;
    y = op("Gemm",
           {y, weight({classes_, d_}, 1.0 / std::sqrt(double(d_))), weight({classes_}, 0.1)}, &p);
    OnnxBuilder::attr(*p, "transB", int64_t{1});
    return y;
  }

  std::mt19937_64 rng_;
  OnnxBuilder b_;
  const uint8_t* choices_;
  size_t left_;
  int next_ = 0;
  int64_t c_ = 0, h_ = 0, w_ = 0, d_ = 0, tokens_ = 0, classes_ = 0;
  bool extra_output_ = false;
  bool force_vit_ = false;
  std::string mask_;  // additive attention mask [N, 1, 1, T], when the model has one
  std::vector<std::pair<std::string, Ints>> seen_;
  std::string summary_;
};

}  // namespace

// The U-Net of unet_like_graph: Conv + ReLU encoders, MaxPool down, GroupNormalization (opset
// 21) at the bottom, Resize up (nearest first, then linear half_pixel), Concat skips.
class UNet {
 public:
  UNet(uint64_t seed, int levels) : b_(21), seed_(static_cast<uint32_t>(seed)) {
    b_.model().set_ir_version(10);
    b_.input("x", {-1, 3, 16, 16}).output("y", {-1, 4, 16, 16});
    b_.initializer("up", Tensor::from<float>({4}, {1, 1, 2, 2}));
    std::vector<std::string> enc;
    std::vector<int64_t> ch;
    enc.push_back(relu(conv("x", 3, 8, "enc0")));
    ch.push_back(8);
    for (int l = 1; l < levels; ++l) {
      ch.push_back(2 * ch.back());
      enc.push_back(relu(conv(pool(enc.back(), "pool" + std::to_string(l)), ch[l - 1], ch[l],
                              "enc" + std::to_string(l))));
    }
    const int64_t c = ch.back();
    std::string m = conv(pool(enc.back(), "pool_mid"), c, c, "mid");
    b_.initializer("gn.scale", normal({c}, 0.5));
    b_.initializer("gn.bias", normal({c}, 0.2));
    OnnxBuilder::attr(b_.node("GroupNormalization", {m, "gn.scale", "gn.bias"}, {"gn"}, "gn"),
                      "num_groups", int64_t{4});
    m = relu("gn");
    int64_t mc = c;
    for (int l = levels - 1; l >= 0; --l) {
      const std::string up = "up" + std::to_string(l), cat = "cat" + std::to_string(l);
      auto& r = b_.node("Resize", {m, "", "up"}, {up}, up);
      string_attr(r, "mode", l == levels - 1 ? "nearest" : "linear");
      if (l != levels - 1) string_attr(r, "coordinate_transformation_mode", "half_pixel");
      OnnxBuilder::attr(b_.node("Concat", {up, enc[l]}, {cat}, cat), "axis", int64_t{1});
      if (l == 0) {
        conv(cat, mc + ch[0], 4, "out", "y");
      } else {
        m = relu(conv(cat, mc + ch[l], ch[l - 1], "dec" + std::to_string(l)));
        mc = ch[l - 1];
      }
    }
  }
  std::string bytes() const { return b_.bytes(); }

 private:
  static void string_attr(onnx::NodeProto& n, const std::string& key, const std::string& v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  Tensor normal(const Shape& s, double sd) {
    std::mt19937_64 rng(seed_++);
    std::normal_distribution<float> d(0.f, static_cast<float>(sd));
    Tensor t(DType::f32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
    return t;
  }
  std::string conv(const std::string& in, int64_t cin, int64_t cout, const std::string& name,
                   const std::string& out = "") {
    b_.initializer(name + ".w", normal({cout, cin, 3, 3}, 1.0 / std::sqrt(9.0 * double(cin))));
    b_.initializer(name + ".b", normal({cout}, 0.1));
    const std::string y = out.empty() ? name : out;
    auto& n = b_.node("Conv", {in, name + ".w", name + ".b"}, {y}, name);
    OnnxBuilder::attr(n, "pads", std::vector<int64_t>{1, 1, 1, 1});
    return y;
  }
  std::string relu(const std::string& in) {
    b_.node("Relu", {in}, {in + ".relu"}, in + ".relu");
    return in + ".relu";
  }
  std::string pool(const std::string& in, const std::string& name) {
    auto& n = b_.node("MaxPool", {in}, {name}, name);
    OnnxBuilder::attr(n, "kernel_shape", std::vector<int64_t>{2, 2});
    OnnxBuilder::attr(n, "strides", std::vector<int64_t>{2, 2});
    return name;
  }

  OnnxBuilder b_;
  uint32_t seed_;
};

RandomGraph random_graph(uint64_t seed) {
  return Generator(seed).make();
}

RandomGraph graph_from_choices(const uint8_t* data, size_t size) {
  return Generator(1, data, size).make();
}

RandomGraph vit_like_graph(uint64_t seed, int blocks) {
  return Generator(seed).vit(blocks);
}

RandomGraph bert_like_graph(uint64_t seed, int blocks) {
  return Generator(seed).bert(blocks);
}

RandomGraph unet_like_graph(uint64_t seed, int levels) {
  RandomGraph r;
  r.onnx = UNet(seed, levels).bytes();
  r.summary = "unet" + std::to_string(levels);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  Tensor x(DType::f32, {2, 3, 16, 16});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = d(rng);
  r.inputs.push_back(x);
  return r;
}

}  // namespace mixq::test
