#include "report/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace mixq::svg {
namespace {

constexpr double kLeft = 56, kRight = 16, kTop = 16, kBottom = 64;

// Round tick steps (1, 2, 5 x 10^k) giving about `count` ticks up to `hi`.
double tick_step(double lo, double hi, int count) {
  const double raw = std::max((hi - lo) / count, 1e-12);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double f : {1.0, 2.0, 5.0, 10.0})
    if (raw <= f * mag) return f * mag;
  return 10 * mag;
}

std::string axis_text(double x, double y, const std::string& text, const char* anchor,
                      double rotate = 0) {
  std::string t =
      fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="{}")", x, y, anchor);
  if (rotate != 0) t += fmt::format(R"~( transform="rotate({:.0f} {:.1f} {:.1f})")~", rotate, x, y);
  return t + ">" + escape(text) + "</text>";
}

std::string legend(const std::vector<std::pair<std::string, std::string>>& items, double x,
                   double y) {
  std::string s;
  for (const auto& [label, col] : items) {
    s += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="10" height="10" fill="{}"/>)", x, y - 9,
                     col);
    s += axis_text(x + 14, y, label, "start");
    x += 24 + 6.5 * static_cast<double>(label.size());
  }
  return s;
}

}  // namespace

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const char* color(size_t i) {
  static const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kPalette[i % 10];
}

std::string stacked_bars(const std::vector<StackedBar>& bars, double y_max,
                         const std::string& y_label) {
  const double bw = 22, gap = 6;
  const double w = kLeft + kRight + static_cast<double>(bars.size()) * (bw + gap);
  const double h = 300, ph = h - kTop - kBottom - 20;
  // The legend's width, so a chart of few bars still shows all of it.
  double legend_w = kLeft;
  std::set<std::string> labels;
  for (const StackedBar& b : bars)
    for (const Segment& seg : b.segments)
      if (labels.insert(seg.label).second)
        legend_w += 24 + 6.5 * static_cast<double>(seg.label.size());
  std::string s = fmt::format(
      R"(<svg class="chart bars" xmlns="http://www.w3.org/2000/svg" width="{:.0f}" height="{:.0f}">)",
      std::max({w, 320.0, legend_w}), h);
  const double step = tick_step(0, y_max, 5);
  for (double t = 0; t <= y_max + 1e-9; t += step) {
    const double y = kTop + ph - t / y_max * ph;
    s += fmt::format(R"(<line x1="{}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" stroke="#ddd"/>)", kLeft,
                     w - kRight, y, y);
    s += axis_text(kLeft - 4, y + 4, fmt::format("{:g}", t), "end");
  }
  s += axis_text(14, kTop + ph / 2, y_label, "middle", -90);
  std::vector<std::pair<std::string, std::string>> keys;
  std::set<std::string> seen;
  for (size_t i = 0; i < bars.size(); ++i) {
    const double x = kLeft + gap / 2 + static_cast<double>(i) * (bw + gap);
    double base = 0;
    for (const Segment& seg : bars[i].segments) {
      const double y0 = kTop + ph - base / y_max * ph,
                   y1 = kTop + ph - (base + seg.value) / y_max * ph;
      s += fmt::format(
          R"(<rect class="seg" x="{:.1f}" y="{:.1f}" width="{}" height="{:.1f}" fill="{}"><title>{}: {}</title></rect>)",
          x, y1, bw, std::max(0.0, y0 - y1), seg.color, escape(bars[i].label), escape(seg.label));
      base += seg.value;
      if (seen.insert(seg.label).second) keys.emplace_back(seg.label, seg.color);
    }
    s += axis_text(x + bw / 2, kTop + ph + 12, std::to_string(i), "middle");
  }
  s += legend(keys, kLeft, h - 12);
  return s + "</svg>";
}

std::string heatmap(const std::vector<double>& m, size_t n, const std::vector<std::string>& labels,
                    size_t group) {
  const double cell = std::clamp(560.0 / static_cast<double>(std::max<size_t>(n, 1)), 4.0, 24.0);
  const double off = 40, size = off + cell * static_cast<double>(n) + 10;
  double top = 0;
  std::vector<double> mags;
  for (double v : m)
    if (std::isfinite(v) && v != 0) mags.push_back(std::fabs(v)), top = std::max(top, std::fabs(v));
  // Scale: sign(v) * log1p(|v|/s) / log1p(top/s) with s the median magnitude.
  std::nth_element(mags.begin(), mags.begin() + static_cast<std::ptrdiff_t>(mags.size() / 2),
                   mags.end());
  const double s0 = mags.empty() ? 1.0 : std::max(mags[mags.size() / 2], 1e-12);
  const double norm = std::log1p(std::max(top, 1e-12) / s0);
  std::string s = fmt::format(
      R"(<svg class="chart heatmap" xmlns="http://www.w3.org/2000/svg" width="{0:.0f}" height="{1:.0f}">)",
      size + 150, size);
  for (size_t r = 0; r < n; ++r)
    for (size_t c = 0; c < n; ++c) {
      const double v = m[r * n + c];
      const double t =
          std::isfinite(v) ? std::copysign(std::log1p(std::fabs(v) / s0) / norm, v) : 0;
      const int fade = static_cast<int>(255 * (1 - std::min(1.0, std::fabs(t))));
      const std::string col =
          t >= 0 ? fmt::format("rgb(255,{0},{0})", fade) : fmt::format("rgb({0},{0},255)", fade);
      s += fmt::format(
          R"(<rect class="cell" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"><title>{} / {}: {:.4g}</title></rect>)",
          off + static_cast<double>(c) * cell, off + static_cast<double>(r) * cell, cell, cell, col,
          escape(labels[r]), escape(labels[c]), v);
    }
  // Lines between layers (groups of candidates) and their numbers.
  for (size_t g = 0; group > 0 && g * group <= n; ++g) {
    const double p = off + static_cast<double>(g * group) * cell;
    s += fmt::format(
        R"(<line x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2:.1f}" stroke="#999" stroke-width="0.5"/>)",
        p, off, off + cell * static_cast<double>(n));
    s += fmt::format(
        R"(<line y1="{0:.1f}" y2="{0:.1f}" x1="{1}" x2="{2:.1f}" stroke="#999" stroke-width="0.5"/>)",
        p, off, off + cell * static_cast<double>(n));
    if (g * group < n && (n / group <= 30 || g % 2 == 0))
      s += axis_text(p + cell * static_cast<double>(group) / 2, off - 6, std::to_string(g),
                     "middle");
  }
  // Colour key.
  const double kx = size + 20;
  const std::pair<const char*, double> keys[] = {{"negative", -1}, {"0", 0}, {"positive", 1}};
  double ky = off;
  for (const auto& [name, t] : keys) {
    const int fade = static_cast<int>(255 * (1 - std::fabs(t)));
    s += fmt::format(
        R"(<rect x="{:.0f}" y="{:.0f}" width="14" height="14" fill="{}" stroke="#999"/>)", kx, ky,
        t >= 0 ? fmt::format("rgb(255,{0},{0})", fade) : fmt::format("rgb({0},{0},255)", fade));
    s += axis_text(kx + 20, ky + 11, name, "start");
    ky += 22;
  }
  s += axis_text(kx, ky + 14, fmt::format("max |v| {:.3g}", top), "start");
  return s + "</svg>";
}

std::string line_chart(const std::vector<Series>& series, const std::string& x_label,
                       const std::string& y_label) {
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const Series& se : series)
    for (auto [x, y] : se.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 - x0 < 1e-9) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
  const double ys = tick_step(y0, y1, 5), xs = tick_step(x0, x1, 6);
  y0 = std::floor(y0 / ys) * ys, y1 = std::ceil(y1 / ys) * ys;
  x0 = std::floor(x0 / xs) * xs, x1 = std::ceil(x1 / xs) * xs;
  const double w = 560, h = 340, pw = w - kLeft - kRight, ph = h - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return kTop + ph - (y - y0) / (y1 - y0) * ph; };
  std::string s = fmt::format(
      R"(<svg class="chart lines" xmlns="http://www.w3.org/2000/svg" width="{:.0f}" height="{:.0f}">)",
      w, h);
  for (double t = y0; t <= y1 + 1e-9; t += ys) {
    s += fmt::format(R"(<line x1="{}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}" stroke="#ddd"/>)", kLeft,
                     kLeft + pw, py(t), py(t));
    s += axis_text(kLeft - 4, py(t) + 4, fmt::format("{:g}", t), "end");
  }
  for (double t = x0; t <= x1 + 1e-9; t += xs)
    s += axis_text(px(t), kTop + ph + 14, fmt::format("{:g}", t), "middle");
  s += axis_text(kLeft + pw / 2, kTop + ph + 30, x_label, "middle");
  s += axis_text(14, kTop + ph / 2, y_label, "middle", -90);
  std::vector<std::pair<std::string, std::string>> keys;
  for (const Series& se : series) {
    std::string pts;
    for (auto [x, y] : se.points) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    s += fmt::format(
        R"(<polyline class="series" points="{}" fill="none" stroke="{}" stroke-width="2"{}/>)", pts,
        se.color, se.dashed ? R"( stroke-dasharray="5,4")" : "");
    for (auto [x, y] : se.points)
      s += fmt::format(
          R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"><title>{}: {:.3g}, {:.2f}</title></circle>)",
          px(x), py(y), se.color, escape(se.name), x, y);
    keys.emplace_back(se.name, se.color);
  }
  s += legend(keys, kLeft, h - 10);
  return s + "</svg>";
}

}  // namespace mixq::svg
