#include "ops/dnnl_util.h"

#include <algorithm>

#include "base/error.h"

namespace mixq::dnnl_util {

using dnnl::memory;

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

memory::dims dims(const Shape& s) {
  return memory::dims(s.begin(), s.end());
}

memory::format_tag plain_tag(size_t rank) {
  using tag = memory::format_tag;
  static const tag tags[] = {tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde, tag::abcdef};
  check(rank >= 1 && rank <= 6, "oneDNN", "unsupported rank " + std::to_string(rank));
  return tags[rank - 1];
}

memory::desc plain_desc(const Shape& s) {
  return memory::desc(dims(s), memory::data_type::f32, memory::dims(shape_strides(s)));
}

memory::desc strided_desc(const Shape& s, const std::vector<int64_t>& strides) {
  return memory::desc(dims(s), memory::data_type::f32,
                      memory::dims(strides.begin(), strides.end()));
}

memory unbound(const memory::desc& md) {
  return memory(md, engine(), DNNL_MEMORY_NONE);
}

void* scratch(int slot, size_t bytes) {
  thread_local Tensor buffers[4];  // Tensor storage is 64-byte aligned
  check(slot >= 0 && slot < 4, "oneDNN", "bad scratch slot");
  Tensor& b = buffers[slot];
  if (!b.defined() || b.nbytes() < bytes)
    b = Tensor(DType::u8, {static_cast<int64_t>(std::max<size_t>(bytes, 64))});
  return b.raw();
}

Bound& Bound::arg(int which, const memory& m) {
  keep_.push_back(m);
  args_.push_back({which, m.get()});
  return *this;
}

void Bound::run() const {
  dnnl::error::wrap_c_api(dnnl_primitive_execute(prim_.get(), stream().get(),
                                                 static_cast<int>(args_.size()), args_.data()),
                          "could not execute a primitive");
}

void rethrow(const std::string& where, const dnnl::error& e) {
  throw Error(where, std::string("oneDNN: ") + e.what());
}

}  // namespace mixq::dnnl_util
