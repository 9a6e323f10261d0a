#include "ops/window.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace mixq {

WindowAttrs::WindowAttrs(const Node& node) {
  std::string ap = node.get_string("auto_pad", "NOTSET");
  if (ap.empty() || ap == "NOTSET")
    auto_pad = AutoPad::notset;
  else if (ap == "SAME_UPPER")
    auto_pad = AutoPad::same_upper;
  else if (ap == "SAME_LOWER")
    auto_pad = AutoPad::same_lower;
  else if (ap == "VALID")
    auto_pad = AutoPad::valid;
  else
    throw Error(node.label(), "unknown auto_pad '" + ap + "'");
  kernel = node.get_ints("kernel_shape");
  strides = node.get_ints("strides");
  dilations = node.get_ints("dilations");
  pads = node.get_ints("pads");
  for (int64_t v : kernel) check(v >= 1, node.label(), "kernel_shape must be positive");
  for (int64_t v : strides) check(v >= 1, node.label(), "strides must be positive");
  for (int64_t v : dilations) check(v >= 1, node.label(), "dilations must be positive");
  for (int64_t v : pads) check(v >= 0, node.label(), "pads must be non-negative");
}

void WindowAttrs::check_pads(size_t sp, const Node& node) const {
  if (pads.empty()) return;
  check(pads.size() == 2 * sp, node.label(),
        "pads has " + std::to_string(pads.size()) + " values, expected " + std::to_string(2 * sp));
}

std::vector<int64_t> per_axis(const std::vector<int64_t>& v, size_t sp, int64_t fallback,
                              const char* name, const Node& node) {
  if (v.empty()) return std::vector<int64_t>(sp, fallback);
  check(v.size() == sp, node.label(),
        std::string(name) + " has " + std::to_string(v.size()) + " values for " +
            std::to_string(sp) + " spatial axes");
  return v;
}

AxisWindow forward_window(const WindowAttrs& a, size_t i, size_t sp, int64_t in, int64_t k,
                          int64_t stride, int64_t dil, bool ceil_mode) {
  AxisWindow w;
  const int64_t keff = window_extent(k, dil);
  if (a.same()) {
    w.out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>(0, (w.out - 1) * stride + keff - in);
    w.pad_b = a.auto_pad == AutoPad::same_upper ? total / 2 : total - total / 2;
    w.pad_e = total - w.pad_b;
    return w;
  }
  if (a.auto_pad == AutoPad::notset && !a.pads.empty()) {
    w.pad_b = a.pads[i];
    w.pad_e = a.pads[i + sp];
  }
  const int64_t span = in + w.pad_b + w.pad_e - keff;
  w.fits = span >= 0;
  if (!w.fits) return w;
  w.out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // A window that would start in the right padding is dropped.
  if (ceil_mode && (w.out - 1) * stride >= in + w.pad_b) --w.out;
  return w;
}

}  // namespace mixq
