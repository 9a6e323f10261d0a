// The tensor module: the dtype table and its visitor, shapes, storage sharing and conversions.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <type_traits>

#include "base/error.h"
#include "tensor/tensor.h"

namespace mixq {

TEST(TensorDType, TableRowsAgreeWithTheirCxxTypes) {
  std::set<std::string> names, npy;
  std::set<int> onnx;
  for (const DTypeTraits& t : kDTypeTraits) {
    // The visitor hands over the type whose dtype_of is this row, and its size is the row's.
    const DType back = visit_dtype(t.dtype, [](auto tag) {
      using T = typename decltype(tag)::type;
      return dtype_of<T>();
    });
    EXPECT_EQ(back, t.dtype) << t.name;
    const size_t size =
        visit_dtype(t.dtype, [](auto tag) { return sizeof(typename decltype(tag)::type); });
    EXPECT_EQ(size, t.size) << t.name;
    EXPECT_EQ(dtype_size(t.dtype), t.size);
    EXPECT_STREQ(dtype_name(t.dtype), t.name);
    names.insert(t.name);
    npy.insert(t.npy);
    onnx.insert(t.onnx);
  }
  // Every name and code tells its dtype apart.
  EXPECT_EQ(names.size(), static_cast<size_t>(kDTypeCount));
  EXPECT_EQ(npy.size(), static_cast<size_t>(kDTypeCount));
  EXPECT_EQ(onnx.size(), static_cast<size_t>(kDTypeCount));
  // The ONNX codes are TensorProto.DataType's (onnx.proto): FLOAT 1, UINT8 2, INT8 3, INT16 5,
  // INT32 6, INT64 7, BOOL 9, DOUBLE 11.
  EXPECT_EQ(dtype_traits(DType::f32).onnx, 1);
  EXPECT_EQ(dtype_traits(DType::u8).onnx, 2);
  EXPECT_EQ(dtype_traits(DType::i8).onnx, 3);
  EXPECT_EQ(dtype_traits(DType::i16).onnx, 5);
  EXPECT_EQ(dtype_traits(DType::i32).onnx, 6);
  EXPECT_EQ(dtype_traits(DType::i64).onnx, 7);
  EXPECT_EQ(dtype_traits(DType::boolean).onnx, 9);
  EXPECT_EQ(dtype_traits(DType::f64).onnx, 11);
}

TEST(TensorDType, GetDoubleReadsEveryDType) {
  for (const DTypeTraits& d : kDTypeTraits) {
    Tensor t(d.dtype, {3});
    visit_dtype(d.dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* p = t.data<T>();
      p[0] = static_cast<T>(0);
      p[1] = static_cast<T>(1);
      p[2] = std::is_same_v<T, bool> ? static_cast<T>(1)
                                     : static_cast<T>(-1 + 3 * std::is_unsigned_v<T>);
    });
    EXPECT_EQ(t.get_double(0), 0.0) << d.name;
    EXPECT_EQ(t.get_double(1), 1.0) << d.name;
    const double want = d.dtype == DType::boolean ? 1.0 : d.dtype == DType::u8 ? 2.0 : -1.0;
    EXPECT_EQ(t.get_double(2), want) << d.name;
    EXPECT_EQ(t.nbytes(), 3 * d.size);
  }
}

TEST(TensorShape, NumelStridesAndOverflow) {
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({2, 0, 5}), 0);
  EXPECT_EQ(shape_numel({2, 3, 4}), 24);
  EXPECT_EQ(shape_strides({2, 3, 4}), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(shape_str({1, 3, 32, 32}), "[1,3,32,32]");
  EXPECT_THROW(shape_numel({int64_t{1} << 31, int64_t{1} << 31, 4}), Error);
  // A zero dimension does not excuse an overflowing product of the others.
  EXPECT_THROW(shape_numel({0, int64_t{1} << 40, int64_t{1} << 30}), Error);
}

TEST(TensorStorage, ViewsShareAndClonesDoNot) {
  Tensor a = Tensor::from<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw()) % 64, 0u);  // 64-byte aligned storage
  EXPECT_TRUE(a.unique());
  Tensor v = a.reshaped({3, 2});
  EXPECT_FALSE(a.unique());
  EXPECT_EQ(v.storage_id(), a.storage_id());
  EXPECT_EQ(v.raw(), a.raw());
  EXPECT_THROW(a.reshaped({4, 2}), Error);
  Tensor c = a.clone();
  EXPECT_NE(c.storage_id(), a.storage_id());
  c.data<float>()[0] = 9;
  EXPECT_EQ(a.data<float>()[0], 1);
  EXPECT_EQ(v.to_floats(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  // A typed access of the wrong dtype is an Error, not a reinterpretation.
  EXPECT_THROW(a.data<int32_t>(), Error);
}

TEST(TensorStorage, EnsureReusesOnlyUnsharedMatchingStorage) {
  Tensor t(DType::f32, {4});
  const uint64_t id = t.storage_id();
  ensure(t, DType::f32, {4});  // same dtype and shape, unshared: reused
  EXPECT_EQ(t.storage_id(), id);
  ensure(t, DType::f32, {2, 2});  // another shape: fresh, zeroed storage
  EXPECT_NE(t.storage_id(), id);
  EXPECT_EQ(t.shape(), (Shape{2, 2}));
  Tensor keep = t;
  ensure(t, DType::f32, {2, 2});  // shared: a new allocation, so `keep` is never overwritten
  EXPECT_NE(t.storage_id(), keep.storage_id());
  ensure(t, DType::i64, {2, 2});
  EXPECT_EQ(t.dtype(), DType::i64);
  EXPECT_EQ(t.get_int(3), 0);
}

TEST(TensorStorage, IntConversionsAreCheckedNotWrapped) {
  Tensor t = Tensor::from<double>({3}, {3.0, -2.0, 1e300});
  EXPECT_EQ(t.get_int(0), 3);
  EXPECT_EQ(t.get_int(1), -2);
  EXPECT_THROW(t.get_int(2), Error);
}

}  // namespace mixq
