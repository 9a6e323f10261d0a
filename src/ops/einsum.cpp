// Einsum over any number of operands, explicit ("ij,jk->ik") or implicit ("ij,jk": the letters
// used once, in alphabetical order) with "..." for broadcast batch dimensions. The reference
// walks every combination of letter values: output letters outside, summed letters inside, so
// transposes, matrix products, attention's "bhid,bhjd->bhij", reductions and diagonals (a
// letter repeated within one operand) are all one loop. Sizes of one letter must agree (1
// broadcasts within "..."); letters are a-z and A-Z.
// Backward (float data): each operand's gradient is the same loop with the output gradient in
// place of that operand, accumulated where a diagonal or broadcast repeats an element.
#include <array>

#include "ops/broadcast.h"
#include "ops/common.h"
#include "ops/kernel.h"

namespace mixq {
namespace {

// The equation resolved against the operands' shapes. Letters are numbered 0..L-1 (the ellipsis
// dimensions first, then a-z, A-Z in order of appearance).
struct Contraction {
  std::vector<int64_t> size;                 // per letter
  std::vector<std::vector<int64_t>> stride;  // [operand][letter] element stride (0: unused)
  std::vector<int64_t> out_stride;           // [letter]
  std::vector<int> out_letters, sum_letters;
  Shape out_shape;
};

class Einsum final : public Kernel {
 public:
  Einsum(const Node& node, const Graph&) : node_(node), eq_(node.get_string("equation", "")) {
    std::string s;
    for (char c : eq_)
      if (c != ' ') s += c;
    const size_t arrow = s.find("->");
    explicit_ = arrow != std::string::npos;
    const std::string lhs = explicit_ ? s.substr(0, arrow) : s;
    if (explicit_) rhs_ = s.substr(arrow + 2);
    size_t start = 0;
    while (true) {
      const size_t comma = lhs.find(',', start);
      terms_.push_back(lhs.substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    for (const std::string& t : terms_) parse_term(t);
    if (explicit_) {
      parse_term(rhs_);
      for (char c : rhs_)
        check(c == '.' || lhs.find(c) != std::string::npos, node.label(),
              std::string("output letter '") + c + "' appears in no input of '" + eq_ + "'");
    }
  }

  void forward(const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out) override {
    std::vector<const Tensor*> ops = operands(in);
    const Contraction c = resolve(ops);
    const DType dt = ops[0]->dtype();
    ensure(*out.at(0), dt, c.out_shape);
    visit_dtype<kFloatTypes | dtype_bit(DType::i64) | dtype_bit(DType::i32)>(
        dt, node_.label(), [&](auto tag) {
          using T = typename decltype(tag)::type;
          std::vector<const T*> p;
          for (const Tensor* t : ops) p.push_back(t->data<T>());
          T* py = out[0]->data<T>();
          std::fill(py, py + out[0]->numel(), T(0));
          walk(c, [&](int64_t oy, const int64_t* off) {
            T prod = 1;
            for (size_t k = 0; k < p.size(); ++k)
              prod = static_cast<T>(wrapping(prod) * wrapping(p[k][off[k]]));
            py[oy] = static_cast<T>(wrapping(py[oy]) + wrapping(prod));
          });
        });
  }

  bool has_backward() const override { return true; }
  void backward(const std::vector<const Tensor*>& in, const std::vector<const Tensor*>& out,
                const std::vector<const Tensor*>& gout, const std::vector<Tensor*>& gin) override {
    (void)out;
    std::vector<const Tensor*> ops = operands(in);
    const Contraction c = resolve(ops);
    const Tensor& gy = grad_arg(gout, 0, node_.label());
    check(gy.shape() == c.out_shape && gy.dtype() == ops[0]->dtype(), node_.label(),
          "gradient has the wrong type or shape");
    visit_dtype<kFloatTypes>(ops[0]->dtype(), node_.label(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      std::vector<const T*> p;
      for (const Tensor* t : ops) p.push_back(t->data<T>());
      const T* pg = gy.data<T>();
      for (size_t k = 0; k < ops.size(); ++k) {
        Tensor* g = grad_slot(gin, k);
        if (!g) continue;
        zeros<T>(*g, ops[k]->shape());
        T* pgk = g->data<T>();
        walk(c, [&](int64_t oy, const int64_t* off) {
          T prod = pg[oy];
          for (size_t m = 0; m < p.size(); ++m)
            if (m != k) prod *= p[m][off[m]];
          pgk[off[k]] += prod;
        });
      }
    });
  }

 private:
  void parse_term(const std::string& t) const {
    const size_t dots = t.find("...");
    for (size_t i = 0; i < t.size(); ++i) {
      if (dots != std::string::npos && i >= dots && i < dots + 3) continue;
      const char c = t[i];
      check((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'), node_.label(),
            "equation '" + eq_ + "' has an invalid subscript '" + std::string(1, c) + "'");
    }
    check(dots == std::string::npos || t.find("...", dots + 1) == std::string::npos, node_.label(),
          "equation '" + eq_ + "' has more than one '...' in a term");
  }

  std::vector<const Tensor*> operands(const std::vector<const Tensor*>& in) const {
    check(in.size() == terms_.size(), node_.label(),
          "equation '" + eq_ + "' has " + std::to_string(terms_.size()) + " terms but the node " +
              std::to_string(in.size()) + " inputs");
    std::vector<const Tensor*> ops;
    for (size_t k = 0; k < in.size(); ++k) {
      ops.push_back(&required_input(in, k, node_));
      check(ops[k]->dtype() == ops[0]->dtype(), node_.label(), "input types differ");
    }
    return ops;
  }

  Contraction resolve(const std::vector<const Tensor*>& ops) const {
    // Letter ids: ellipsis dims get 0..E-1, then letters as they come.
    std::array<int, 128> id;
    id.fill(-1);
    size_t ell = 0;  // broadcast rank of "..."
    std::vector<Shape> ell_shapes;
    for (size_t k = 0; k < ops.size(); ++k) {
      const std::string& t = terms_[k];
      const bool has = t.find("...") != std::string::npos;
      const size_t named = t.size() - (has ? 3 : 0);
      const size_t r = ops[k]->rank();
      check(has ? r >= named : r == named, node_.label(),
            "term '" + t + "' does not match input " + std::to_string(k) + " of shape " +
                shape_str(ops[k]->shape()));
      if (has) {
        const size_t pos = t.find("...");
        ell_shapes.emplace_back(ops[k]->shape().begin() + pos,
                                ops[k]->shape().begin() + pos + (r - named));
        ell = std::max(ell, r - named);
      }
    }
    const Shape ell_shape = broadcast_all(ell_shapes, node_.label());
    Contraction c;
    c.size.assign(ell_shape.begin(), ell_shape.end());
    std::vector<int> count(ell, 0);
    auto letter = [&](char ch) {
      if (id[ch] < 0) {
        id[ch] = static_cast<int>(c.size.size());
        c.size.push_back(-1);
        count.push_back(0);
      }
      return id[ch];
    };
    c.stride.assign(ops.size(), {});
    for (size_t k = 0; k < ops.size(); ++k) {
      const std::string& t = terms_[k];
      const Shape& s = ops[k]->shape();
      const auto st = shape_strides(s);
      std::vector<int64_t>& stride = c.stride[k];
      size_t d = 0;
      for (size_t i = 0; i < t.size(); ++i) {
        if (t.compare(i, 3, "...") == 0) {
          const size_t n = s.size() - (t.size() - 3);
          for (size_t e = 0; e < n; ++e, ++d) {
            const size_t l = ell - n + e;
            stride.resize(std::max(stride.size(), l + 1), 0);
            if (s[d] != 1) stride[l] += st[d];
            ++count[l];
          }
          i += 2;
          continue;
        }
        const int l = letter(t[i]);
        check(c.size[l] < 0 || c.size[l] == s[d], node_.label(),
              std::string("letter '") + t[i] + "' has sizes " + std::to_string(c.size[l]) +
                  " and " + std::to_string(s[d]) + " in '" + eq_ + "'");
        c.size[l] = s[d];
        stride.resize(std::max(stride.size(), static_cast<size_t>(l) + 1), 0);
        stride[l] += st[d];  // a letter repeated within a term walks the diagonal
        ++count[l];
        ++d;
      }
    }
    for (auto& stride : c.stride) stride.resize(c.size.size(), 0);
    // Output letters.
    std::vector<char> in_out(c.size.size(), 0);
    if (explicit_) {
      check(ell == 0 || rhs_.find("...") != std::string::npos, node_.label(),
            "the inputs use '...' but the output of '" + eq_ + "' does not");
      for (size_t i = 0; i < rhs_.size(); ++i) {
        if (rhs_.compare(i, 3, "...") == 0) {
          for (size_t e = 0; e < ell; ++e) c.out_letters.push_back(static_cast<int>(e));
          i += 2;
          continue;
        }
        const int l = id[rhs_[i]];
        check(
            l >= 0 && !in_out[l], node_.label(),
            std::string("output letter '") + rhs_[i] + "' is repeated or unknown in '" + eq_ + "'");
        in_out[l] = 1;
        c.out_letters.push_back(l);
      }
      for (size_t e = 0; e < ell; ++e) in_out[e] = 1;
    } else {
      for (size_t e = 0; e < ell; ++e) c.out_letters.push_back(static_cast<int>(e));
      for (int ch = 0; ch < 128; ++ch)
        if (id[ch] >= 0 && count[id[ch]] == 1) c.out_letters.push_back(id[ch]);
    }
    for (int l : c.out_letters) in_out[l] = 1;
    for (size_t l = 0; l < c.size.size(); ++l)
      if (!in_out[l]) c.sum_letters.push_back(static_cast<int>(l));
    for (int l : c.out_letters) c.out_shape.push_back(c.size[l]);
    const auto ys = shape_strides(c.out_shape);
    c.out_stride.assign(c.size.size(), 0);
    for (size_t i = 0; i < c.out_letters.size(); ++i) c.out_stride[c.out_letters[i]] = ys[i];
    return c;
  }

  // Calls f(output offset, operand offsets) for every combination of letter values, summed
  // letters innermost (callers clear the output first: an empty summed letter makes no call).
  template <class F>
  void walk(const Contraction& c, F&& f) const {
    const size_t nops = c.stride.size();
    std::vector<int64_t> off(nops, 0);
    int64_t sum_total = 1, out_total = 1;
    for (int l : c.sum_letters) sum_total *= c.size[l];
    for (int l : c.out_letters) out_total *= c.size[l];
    std::vector<int64_t> oi(c.out_letters.size(), 0), si(c.sum_letters.size(), 0);
    for (int64_t o = 0; o < out_total; ++o) {
      int64_t oy = 0;
      std::vector<int64_t> base(nops, 0);
      for (size_t i = 0; i < c.out_letters.size(); ++i) {
        const int l = c.out_letters[i];
        oy += oi[i] * c.out_stride[l];
        for (size_t k = 0; k < nops; ++k) base[k] += oi[i] * c.stride[k][l];
      }
      std::fill(si.begin(), si.end(), 0);
      for (int64_t s = 0; s < sum_total; ++s) {
        for (size_t k = 0; k < nops; ++k) {
          off[k] = base[k];
          for (size_t i = 0; i < c.sum_letters.size(); ++i)
            off[k] += si[i] * c.stride[k][c.sum_letters[i]];
        }
        f(oy, off.data());
        for (size_t i = si.size(); i-- > 0;) {
          if (++si[i] < c.size[c.sum_letters[i]]) break;
          si[i] = 0;
        }
      }
      for (size_t i = oi.size(); i-- > 0;) {
        if (++oi[i] < c.size[c.out_letters[i]]) break;
        oi[i] = 0;
      }
    }
  }

  Node node_;
  std::string eq_, rhs_;
  bool explicit_ = false;
  std::vector<std::string> terms_;
};

}  // namespace

void register_einsum_ops(Registry& r) {
  r.add("Einsum", "ref", make_kernel<Einsum>, true);
}

}  // namespace mixq
