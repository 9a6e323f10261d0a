// Tensor: a dtype, a shape and 64-byte aligned storage shared between views (reshape is free).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mixq {

enum class DType : uint8_t { f32, f64, i64, i32, i16, i8, u8, boolean };
inline constexpr int kDTypeCount = 8;

// One row per dtype, in enum order (ggml's type traits): what the importer, exporters and
// readers need to know about a dtype, so none of them switches over DType on its own.
struct DTypeTraits {
  DType dtype;
  const char* name;  // as ONNX spells it
  size_t size;       // bytes per element
  int onnx;          // onnx.TensorProto.DataType
  const char* npy;   // NumPy's type code without the byte order ("f4")
};
inline constexpr DTypeTraits kDTypeTraits[kDTypeCount] = {
    {DType::f32, "float32", 4, 1, "f4"}, {DType::f64, "float64", 8, 11, "f8"},
    {DType::i64, "int64", 8, 7, "i8"},   {DType::i32, "int32", 4, 6, "i4"},
    {DType::i16, "int16", 2, 5, "i2"},   {DType::i8, "int8", 1, 3, "i1"},
    {DType::u8, "uint8", 1, 2, "u1"},    {DType::boolean, "bool", 1, 9, "b1"},
};
constexpr const DTypeTraits& dtype_traits(DType t) { return kDTypeTraits[static_cast<int>(t)]; }
static_assert(
    [] {
      for (int i = 0; i < kDTypeCount; ++i)
        if (static_cast<int>(kDTypeTraits[i].dtype) != i) return false;
      return true;
    }(),
    "kDTypeTraits rows follow the DType enum");
constexpr size_t dtype_size(DType t) { return dtype_traits(t).size; }
constexpr const char* dtype_name(DType t) { return dtype_traits(t).name; }

template <class T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) with the C++ type of t: the one switch from a dtype to its type.
template <class F>
decltype(auto) visit_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f32:
      return f(TypeTag<float>{});
    case DType::f64:
      return f(TypeTag<double>{});
    case DType::i64:
      return f(TypeTag<int64_t>{});
    case DType::i32:
      return f(TypeTag<int32_t>{});
    case DType::i16:
      return f(TypeTag<int16_t>{});
    case DType::i8:
      return f(TypeTag<int8_t>{});
    case DType::u8:
      return f(TypeTag<uint8_t>{});
    case DType::boolean:
      break;
  }
  return f(TypeTag<bool>{});
}

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<int16_t>() {
  return DType::i16;
}
template <>
constexpr DType dtype_of<int8_t>() {
  return DType::i8;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::u8;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::boolean;
}

using Shape = std::vector<int64_t>;

// Number of elements; an Error when the nonzero dimensions multiply past 2^62.
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[1,3,32,32]"
// Row-major strides in elements.
std::vector<int64_t> shape_strides(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor.
  Tensor(DType dtype, Shape shape);

  template <class T>
  static Tensor from(Shape shape, const std::vector<T>& values) {
    Tensor t(dtype_of<T>(), std::move(shape));
    T* p = t.data<T>();
    for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.numel()); ++i)
      p[i] = values[i];
    return t;
  }
  static Tensor scalar_f32(float v) { return from<float>({}, {v}); }

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  void* raw() { return storage_.get(); }
  const void* raw() const { return storage_.get(); }
  template <class T>
  T* data() {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<T*>(storage_.get());
  }
  template <class T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<const T*>(storage_.get());
  }

  // A view with another shape of the same element count; shares storage.
  Tensor reshaped(Shape shape) const;
  // A deep copy.
  Tensor clone() const;
  // True when no other Tensor shares this storage (safe to overwrite in place).
  bool unique() const { return storage_.use_count() <= 1; }
  // Unique per allocation and shared by views and copies. Kernels may cache forms derived from an
  // input (reordered or quantized weights) keyed by it; code that changes a tensor a kernel may
  // have cached must hand over a new allocation (clone()) rather than write in place.
  uint64_t storage_id() const { return storage_id_; }

  // Element i converted to double / int64 whatever the dtype (for shape tensors and tests).
  double get_double(int64_t i) const;
  int64_t get_int(int64_t i) const;
  // All elements as int64 (shape tensors such as Reshape's shape input).
  std::vector<int64_t> to_ints() const;
  std::vector<float> to_floats() const;

 private:
  void check_dtype(DType want) const;

  DType dtype_ = DType::f32;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<std::byte[]> storage_;
  uint64_t storage_id_ = 0;
};

// Makes t a tensor of this dtype and shape, reusing its storage when it already matches and is
// not shared. Contents are unspecified when reused, zero when freshly allocated.
void ensure(Tensor& t, DType dtype, const Shape& shape);

}  // namespace mixq
