// Activation quantization: observers that choose the range of the grid (ActQuant, ops/quant_grid.h)
// from calibration data (min/max, minimum squared error, percentile). Ranges that never go below
// zero (after ReLU) use the unsigned grid [0, 2^b - 1] with zero point 0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ops/quant_grid.h"
#include "tensor/tensor.h"

namespace mixq {

enum class ObserverKind { minmax, mse, percentile };
ObserverKind parse_observer(const std::string& name, const std::string& where);

// Builds the quantizer for a real range [lo, hi] (lo <= 0 <= hi after widening to include 0).
// symmetric: signed grid centred on 0 (zero point 0); otherwise unsigned when lo == 0, else
// asymmetric with a zero point.
ActQuant act_quant_for_range(float lo, float hi, int bits, bool symmetric = false);

class Observer {
 public:
  // Keeps at most max_samples values (seeded reservoir sampling) for the MSE and percentile
  // searches; min and max are exact.
  explicit Observer(uint64_t seed = 0, size_t max_samples = 1 << 18);
  void observe(const float* x, int64_t n);
  void observe(const Tensor& t) { observe(t.data<float>(), t.numel()); }
  size_t count() const { return seen_; }
  float min() const { return min_; }
  float max() const { return max_; }
  ActQuant compute(int bits, ObserverKind kind, double percentile = 99.99,
                   bool symmetric = false) const;

 private:
  uint64_t next_random();
  std::vector<float> samples_;
  size_t max_samples_;
  size_t seen_ = 0;
  float min_ = 0, max_ = 0;
  uint64_t state_;
};

}  // namespace mixq
