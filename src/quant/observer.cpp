#include "quant/observer.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace mixq {

ObserverKind parse_observer(const std::string& name, const std::string& where) {
  if (name == "minmax") return ObserverKind::minmax;
  if (name == "mse") return ObserverKind::mse;
  if (name == "percentile") return ObserverKind::percentile;
  throw Error(where, "unknown observer '" + name + "' (minmax, mse, percentile)");
}

ActQuant act_quant_for_range(float lo, float hi, int bits, bool symmetric) {
  check(bits >= 2 && bits <= 16, "activation quantizer",
        "bit-width " + std::to_string(bits) + " outside 2..16");
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  ActQuant q;
  q.bits = bits;
  const int32_t levels = (int32_t{1} << bits) - 1;
  if (symmetric) {
    const float m = std::max(-lo, hi);
    q.qmin = -(levels / 2);
    q.qmax = levels / 2;
    q.zero_point = 0;
    q.scale = m > 0 ? m / q.qmax : 1.0f;
    return q;
  }
  q.qmin = 0;
  q.qmax = levels;
  if (hi - lo <= 0) {
    q.scale = 1;
    q.zero_point = 0;
    return q;
  }
  q.scale = (hi - lo) / levels;
  q.zero_point = static_cast<int32_t>(std::nearbyint(-lo / q.scale));
  q.zero_point = std::clamp(q.zero_point, q.qmin, q.qmax);
  return q;
}

Observer::Observer(uint64_t seed, size_t max_samples)
    : max_samples_(max_samples), state_(seed * 0x9E3779B97F4A7C15ull + 0x243F6A8885A308D3ull) {}

uint64_t Observer::next_random() {
  // splitmix64: deterministic on every platform.
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Observer::observe(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (seen_ == 0) min_ = max_ = v;
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
    if (samples_.size() < max_samples_) {
      samples_.push_back(v);
    } else {
      const uint64_t j = next_random() % (seen_ + 1);
      if (j < max_samples_) samples_[j] = v;
    }
    ++seen_;
  }
}

namespace {

double range_error(const std::vector<float>& xs, const ActQuant& q) {
  const float lo = q.lo(), hi = q.hi();
  double e = 0;
  for (float v : xs) {
    float c = std::min(std::max(v, lo), hi);
    float r =
        (std::min(std::max(std::nearbyint(c / q.scale), q.qmin - static_cast<float>(q.zero_point)),
                  static_cast<float>(q.qmax - q.zero_point))) *
        q.scale;
    const double d = static_cast<double>(v) - r;
    e += d * d;
  }
  return e;
}

}  // namespace

ActQuant Observer::compute(int bits, ObserverKind kind, double percentile, bool symmetric) const {
  check(seen_ > 0, "observer", "no calibration data was observed");
  const float lo = std::min(min_, 0.0f), hi = std::max(max_, 0.0f);
  if (kind == ObserverKind::minmax) return act_quant_for_range(lo, hi, bits, symmetric);
  if (kind == ObserverKind::percentile) {
    std::vector<float> s = samples_;
    std::sort(s.begin(), s.end());
    auto at = [&](double p) {
      double pos = p / 100.0 * (s.size() - 1);
      size_t i = static_cast<size_t>(pos);
      double f = pos - i;
      return static_cast<float>(i + 1 < s.size() ? s[i] * (1 - f) + s[i + 1] * f : s[i]);
    };
    float plo = lo < 0 ? at(100.0 - percentile) : 0.0f;
    return act_quant_for_range(std::min(plo, 0.0f), std::max(at(percentile), 0.0f), bits,
                               symmetric);
  }
  // MSE: shrink the observed range by a common factor, keep the best.
  constexpr int kSteps = 100;
  ActQuant best = act_quant_for_range(lo, hi, bits, symmetric);
  double best_err = range_error(samples_, best);
  for (int s = 1; s < kSteps; ++s) {
    const float f = static_cast<float>(s) / kSteps;
    ActQuant q = act_quant_for_range(lo * f, hi * f, bits, symmetric);
    const double e = range_error(samples_, q);
    if (e < best_err) best_err = e, best = q;
  }
  return best;
}

}  // namespace mixq
