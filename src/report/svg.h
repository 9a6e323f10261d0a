// Small inline-SVG charts for the HTML report: no scripts, no external files, so the report is one
// self-contained file any browser shows.
#pragma once
#include <string>
#include <vector>

namespace mixq::svg {

// Text safe inside HTML/SVG elements and attributes.
std::string escape(const std::string& s);

struct Segment {
  double value = 0;
  std::string color, label;
};
struct StackedBar {
  std::string label;
  std::vector<Segment> segments;  // drawn bottom to top
};
// Vertical stacked bars with a y axis from 0 to y_max; legend from the segment labels.
std::string stacked_bars(const std::vector<StackedBar>& bars, double y_max,
                         const std::string& y_label);

// An n x n matrix as colored cells: blue below 0, red above, on a symmetric log-like scale so
// small cross terms stay visible next to large diagonal ones. labels: n short names.
std::string heatmap(const std::vector<double>& m, size_t n, const std::vector<std::string>& labels,
                    size_t group = 1);

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
  bool dashed = false;
};
std::string line_chart(const std::vector<Series>& series, const std::string& x_label,
                       const std::string& y_label);

// A fixed palette, cycling.
const char* color(size_t i);

}  // namespace mixq::svg
