#include "data/batch_iterator.h"

#include <algorithm>
#include <numeric>

#include "base/error.h"
#include "base/memory.h"
#include "base/rng.h"

namespace mixq {

namespace {

// Distinct streams for the subset draw and each epoch's order.
uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
  return splitmix64(x);
}

}  // namespace

std::vector<size_t> random_subset(size_t n, size_t k, uint64_t seed) {
  k = std::min(k, n);
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), size_t{0});
  Rng rng(seed);
  for (size_t i = 0; i < k; ++i) std::swap(all[i], all[i + rng.below(n - i)]);
  all.resize(k);
  std::sort(all.begin(), all.end());
  return all;
}

void seeded_shuffle(std::vector<size_t>& v, uint64_t seed) {
  Rng rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

BatchIterator::BatchIterator(const Dataset& dataset, const IterOptions& options)
    : dataset_(dataset), options_(options) {
  check(options.batch_size > 0, "batch iterator", "batch size must be positive");
  const size_t n = dataset.size();
  const size_t k = options.limit == 0 ? n : std::min(options.limit, n);
  const double sample_bytes = dataset.sample_bytes();
  const size_t batch = std::min(options.batch_size, std::max<size_t>(k, 1));
  check_memory(static_cast<double>(batch) * sample_bytes, dataset.description(),
               "a batch of " + std::to_string(batch) + " samples");
  if (options.random_subset && k < n) {
    subset_ = random_subset(n, k, stream_seed(options.seed, 0));
  } else {
    subset_.resize(k);
    std::iota(subset_.begin(), subset_.end(), size_t{0});
  }
  start_epoch(0);
}

void BatchIterator::start_epoch(uint64_t epoch) {
  order_ = subset_;
  if (options_.shuffle) seeded_shuffle(order_, stream_seed(options_.seed, epoch + 1));
  pos_ = 0;
}

size_t BatchIterator::num_batches() const {
  return (subset_.size() + options_.batch_size - 1) / options_.batch_size;
}

bool BatchIterator::next(Batch& batch) {
  if (pos_ >= order_.size()) return false;
  const size_t n = std::min(options_.batch_size, order_.size() - pos_);
  std::vector<size_t> idx(order_.begin() + pos_, order_.begin() + pos_ + n);
  batch = Batch{};  // the previous batch's memory goes before the next one is decoded
  try {
    batch = dataset_.get(idx);
  } catch (const Error& e) {
    if (e.where() != "tensor") throw;
    throw Error(dataset_.description(), "a batch of " + std::to_string(n) + ": " + e.cause());
  }
  pos_ += n;
  return true;
}

}  // namespace mixq
