// Shared oneDNN plumbing for the fast kernels: one CPU engine, one stream per thread, plain
// memory descriptors for mixq tensors, and a wrapper that turns dnnl::error into mixq::Error.
#pragma once
#include <initializer_list>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace mixq::dnnl_util {

dnnl::engine& engine();
// oneDNN CPU streams are in-order; one per thread keeps executors on different threads apart.
dnnl::stream& stream();

dnnl::memory::dims dims(const Shape& s);
// Row-major format tag of a rank (1..6).
dnnl::memory::format_tag plain_tag(size_t rank);
// f32 row-major descriptor of any rank (1..6).
dnnl::memory::desc plain_desc(const Shape& s);
// f32 descriptor with explicit strides in elements (transposed views).
dnnl::memory::desc strided_desc(const Shape& s, const std::vector<int64_t>& strides);
// A memory object with no handle yet; set it with set_data_handle before each execution.
dnnl::memory unbound(const dnnl::memory::desc& md);
// Points mem at a tensor's storage (oneDNN takes non-const handles even for inputs).
inline void bind(const dnnl::memory& mem, const Tensor& t) {
  mem.set_data_handle(const_cast<void*>(t.raw()));
}

// A primitive with its arguments bound once (memories whose handles are re-pointed per call).
// run() goes through the C API with a prepared argument array, so it allocates nothing; the
// C++ execute() builds a map and a vector on every call.
class Bound {
 public:
  Bound() = default;
  explicit Bound(dnnl::primitive p) : prim_(std::move(p)) {}
  Bound& arg(int which, const dnnl::memory& m);
  explicit operator bool() const { return static_cast<bool>(prim_); }
  // Executes on this thread's stream (does not wait).
  void run() const;

 private:
  dnnl::primitive prim_;
  std::vector<dnnl::memory> keep_;
  std::vector<dnnl_exec_arg_t> args_;
};

// Per-thread scratch buffers for kernels' intermediate layouts (reordered activations). Kernels
// on one thread run one at a time, so all of them share these; a slot grows when a larger size
// is asked for and is otherwise reused. Contents do not survive another kernel's call.
void* scratch(int slot, size_t bytes);

// Runs f; a dnnl::error becomes Error(where, "oneDNN: ...").
template <class F>
auto guarded(const std::string& where, F&& f) -> decltype(f());
[[noreturn]] void rethrow(const std::string& where, const dnnl::error& e);

template <class F>
auto guarded(const std::string& where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    rethrow(where, e);
  }
}

// Plans (primitives plus bound memories) keyed by the shapes of a kernel's inputs; a null
// shape pointer stands for an omitted input. The steady state (same shapes as last call) costs
// a few comparisons and no allocation.
template <class Plan>
class PlanCache {
 public:
  template <class Make>
  Plan& get(std::initializer_list<const Shape*> key, Make&& make) {
    if (last_ && matches(*last_, key)) return last_->plan;
    for (auto& e : entries_)
      if (matches(*e, key)) {
        last_ = e.get();
        return e->plan;
      }
    // A handful of shapes is normal (batch sizes); more means shapes vary freely.
    if (entries_.size() >= 8) {
      entries_.clear();
      last_ = nullptr;
    }
    auto e = std::make_unique<Entry>(Entry{{}, make()});
    for (const Shape* s : key) e->key.push_back(s ? *s : Shape{-1});
    entries_.push_back(std::move(e));
    last_ = entries_.back().get();
    return last_->plan;
  }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<Shape> key;
    Plan plan;
  };
  static bool matches(const Entry& e, std::initializer_list<const Shape*> key) {
    if (e.key.size() != key.size()) return false;
    size_t i = 0;
    for (const Shape* s : key) {
      const Shape& k = e.key[i++];
      if (s ? k != *s : !(k.size() == 1 && k[0] == -1)) return false;
    }
    return true;
  }
  std::vector<std::unique_ptr<Entry>> entries_;
  Entry* last_ = nullptr;
};

}  // namespace mixq::dnnl_util
