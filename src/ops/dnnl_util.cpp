#include "ops/dnnl_util.h"

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

memory reorder_to(const memory& src, const memory::desc& want) {
  memory dst(want, engine());
  dnnl::reorder(src, dst).execute(stream(), const_cast<memory&>(src), dst);
  stream().wait();
  return dst;
}

void rethrow(const std::string& where, const dnnl::error& e) {
  throw Error(where, std::string("oneDNN: ") + e.what());
}

}  // namespace mixq::dnnl_util
