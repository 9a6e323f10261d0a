// Runs fn(i) for i in [0, n) on OpenMP threads. Exceptions cannot leave an OpenMP region, so
// each is kept and the one of the lowest i is rethrown: the same error whatever the timing.
#pragma once
#include <cstddef>
#include <exception>
#include <vector>

namespace mixq {

template <class Fn>
void parallel_for_samples(size_t n, Fn&& fn) {
  std::vector<std::exception_ptr> errors(n);
  const long long count = static_cast<long long>(n);
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
  for (long long i = 0; i < count; ++i) {
    try {
      fn(static_cast<size_t>(i));
    } catch (...) {
      errors[static_cast<size_t>(i)] = std::current_exception();
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace mixq
