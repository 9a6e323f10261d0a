#include "tensor/tensor.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "base/error.h"
#include "base/memory.h"

namespace mixq {

int64_t shape_numel(const Shape& s) {
  // Past 2^62 elements, element offsets and strides (products of the same dimensions) would
  // overflow; a zero dimension does not excuse the others, whose strides are still computed.
  constexpr int64_t kMax = int64_t{1} << 62;
  int64_t n = 1;
  bool empty = false;
  for (int64_t d : s) {
    if (d == 0) {
      empty = true;
      continue;
    }
    if (__builtin_mul_overflow(n, d, &n) || n > kMax || n < -kMax)
      throw Error("tensor", "shape " + shape_str(s) + ": its dimensions multiply past 2^62");
  }
  return empty ? 0 : n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ",";
    out += s[i] < 0 ? std::string("N") : std::to_string(s[i]);
  }
  return out + "]";
}

std::vector<int64_t> shape_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

namespace {
std::shared_ptr<std::byte[]> allocate(size_t bytes, const Shape& shape) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  // "tensor" is replaced by the node's name when a kernel asked for it (Executor).
  if (!try_reserve_memory(rounded))
    throw Error("tensor", "a tensor of shape " + shape_str(shape) + " " +
                              over_limit_text(static_cast<double>(rounded)));
  void* p = std::aligned_alloc(64, rounded);
  if (!p) {
    release_memory(rounded);
    throw std::bad_alloc();
  }
  std::memset(p, 0, rounded);
  return std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p), [rounded](std::byte* q) {
    std::free(q);
    release_memory(rounded);
  });
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_) check(d >= 0, "tensor", "negative dimension in " + shape_str(shape_));
  // In doubles: a product of absurd dimensions must not wrap around to a small size.
  double declared = static_cast<double>(dtype_size(dtype_));
  for (int64_t d : shape_) declared *= static_cast<double>(d);
  if (declared > static_cast<double>(mem_limit()))
    throw Error("tensor",
                "a tensor of shape " + shape_str(shape_) + " " + over_limit_text(declared));
  numel_ = shape_numel(shape_);
  storage_ = allocate(nbytes(), shape_);
  static std::atomic<uint64_t> next_id{1};
  storage_id_ = next_id.fetch_add(1, std::memory_order_relaxed);
}

Tensor Tensor::reshaped(Shape shape) const {
  check(shape_numel(shape) == numel_, "reshape",
        "cannot view " + shape_str(shape_) + " as " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

void Tensor::check_dtype(DType want) const {
  if (want != dtype_)
    throw Error("tensor",
                std::string("expected ") + dtype_name(want) + ", got " + dtype_name(dtype_));
}

double Tensor::get_double(int64_t i) const {
  return visit_dtype(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return static_cast<double>(static_cast<const T*>(raw())[i]);
  });
}

int64_t Tensor::get_int(int64_t i) const {
  if (dtype_ == DType::i64) return static_cast<const int64_t*>(raw())[i];
  // A float read as an integer (shapes, axes, indices) must be within int64's range to convert.
  const double v = get_double(i);
  if (!(v >= -0x1p63 && v < 0x1p63)) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", v);
    throw Error("tensor", std::string("value ") + text + " is not an integer in range");
  }
  return static_cast<int64_t>(v);
}

std::vector<int64_t> Tensor::to_ints() const {
  std::vector<int64_t> v(numel_);
  for (int64_t i = 0; i < numel_; ++i) v[i] = get_int(i);
  return v;
}

std::vector<float> Tensor::to_floats() const {
  std::vector<float> v(numel_);
  for (int64_t i = 0; i < numel_; ++i) v[i] = static_cast<float>(get_double(i));
  return v;
}

void ensure(Tensor& t, DType dtype, const Shape& shape) {
  if (t.raw() && t.dtype() == dtype && t.shape() == shape && t.unique()) return;
  // Let go of the old storage before taking the new: a smaller batch after a larger one then
  // needs no more memory than the larger one did.
  t = Tensor();
  t = Tensor(dtype, shape);
}

}  // namespace mixq
