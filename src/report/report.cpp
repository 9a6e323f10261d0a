#include "report/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "report/svg.h"

namespace mixq {
namespace {

using svg::escape;

// Colour of a row group: hue by scheme, darker for more bits.
std::string row_color(Scheme s, int bits) {
  const double t = (bits - 2) / 6.0;  // 0 at 2 bits, 1 at 8
  const int light = static_cast<int>(200 - 140 * t);
  switch (s) {
    case Scheme::fixed:
      return fmt::format("rgb({0},{1},240)", light - 30, light + 20);
    case Scheme::sp2:
      return fmt::format("rgb(245,{0},{1})", light, light / 3);
    case Scheme::pot:
      return fmt::format("rgb({0},200,{0})", light - 40);
  }
  return "#999";
}

std::string allocation_section(const QuantConfig& cfg) {
  std::vector<svg::StackedBar> bars;
  std::string table =
      "<table><tr><th>#</th><th>layer</th><th>rows</th><th>avg bits</th><th>rows by scheme</th>"
      "<th>input</th></tr>";
  double y_max = 8;
  for (size_t i = 0; i < cfg.layers.size(); ++i) {
    const LayerConfig& l = cfg.layers[i];
    std::map<std::pair<int, int>, size_t> groups;  // (scheme, bits) -> rows
    for (const RowQuant& r : l.rows) groups[{static_cast<int>(r.scheme), r.bits}]++;
    svg::StackedBar bar{l.name, {}};
    double avg = 0;
    std::string mix;
    for (const auto& [key, count] : groups) {
      const auto scheme = static_cast<Scheme>(key.first);
      const double share = static_cast<double>(count) / static_cast<double>(l.rows.size());
      bar.segments.push_back({share * key.second, row_color(scheme, key.second),
                              fmt::format("{} {}-bit", scheme_name(scheme), key.second)});
      avg += share * key.second;
      mix += fmt::format("{}{} {}-bit: {}", mix.empty() ? "" : ", ", scheme_name(scheme),
                         key.second, count);
    }
    if (l.rows.empty()) {
      bar.segments.push_back({32, "#bbb", "float"});
      y_max = 32;
      mix = "float";
    }
    bars.push_back(bar);
    table += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", i,
        escape(l.name), l.rows.size(), l.rows.empty() ? "32" : fmt::format("{:.2f}", avg),
        escape(mix), l.input ? fmt::format("{}-bit", l.input->bits) : "float");
  }
  return "<h2>Allocation: bits and schemes per layer</h2>"
         "<p>Bar height is the layer's average weight bits; segments show the share of rows in "
         "each scheme and width.</p>" +
         svg::stacked_bars(bars, y_max, "weight bits") + table + "</table>";
}

std::string omega_section(const SensitivityData& d) {
  const std::vector<double> om = d.omega();
  const auto& layers = d.header.at("layers");
  const auto& cands = d.header.at("candidates");
  std::vector<std::string> labels;
  for (size_t i = 0; i < d.layers; ++i)
    for (size_t c = 0; c < d.candidates; ++c)
      labels.push_back(
          fmt::format("{} {}", layers[i].get<std::string>(), cands[c].get<std::string>()));
  std::string table = "<table><tr><th>#</th><th>layer</th>";
  for (const auto& c : cands) table += "<th>d(" + escape(c.get<std::string>()) + ")</th>";
  table += "</tr>";
  for (size_t i = 0; i < d.layers; ++i) {
    table += fmt::format("<tr><td>{}</td><td>{}</td>", i, escape(layers[i].get<std::string>()));
    for (size_t c = 0; c < d.candidates; ++c)
      table += fmt::format("<td>{:.4f}</td>", d.single_delta(i, c));
    table += "</tr>";
  }
  return fmt::format(
             "<h2>Sensitivities: the Omega matrix</h2><p>{} layers x {} candidates, {} samples, "
             "base loss L0 = {:.4f}. Diagonal: loss increase of one layer at one candidate; off "
             "the diagonal: half the cross term of a pair (red: the pair hurts more than its "
             "parts, blue: less). Grid lines separate layers.</p>",
             d.layers, d.candidates, d.samples, d.L0()) +
         svg::heatmap(om, d.n(), labels, d.candidates) + table + "</table>";
}

std::string sweep_section(const nlohmann::json& sweep) {
  std::map<std::string, std::vector<std::pair<double, double>>> by_method;
  std::string table =
      "<table><tr><th>method</th><th>budget</th><th>avg bits</th><th>weights KB</th>"
      "<th>predicted</th><th>measured</th><th>test top-1 %</th></tr>";
  for (const auto& r : sweep.at("rows")) {
    if (!r.value("feasible", true)) continue;
    const std::string m = r.at("method").get<std::string>();
    by_method[m].emplace_back(r.at("avg_bits").get<double>(), r.at("test_top1").get<double>());
    table += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.1f}</td><td>{}</td><td>{:.4f}</td>"
        "<td>{:.2f}</td></tr>",
        escape(m), escape(r.at("budget").get<std::string>()), r.at("avg_bits").get<double>(),
        r.value("weight_kb", 0.0),
        r.at("predicted").is_number() ? fmt::format("{:.4f}", r.at("predicted").get<double>())
                                      : "-",
        r.value("measured", 0.0), r.at("test_top1").get<double>());
  }
  std::vector<svg::Series> series;
  size_t k = 0;
  for (auto& [m, pts] : by_method) {
    std::sort(pts.begin(), pts.end());
    pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
    series.push_back({m, svg::color(k++), pts, m == "uniform"});
  }
  std::string extra;
  if (sweep.contains("random"))
    extra = fmt::format(
        "<p>Rank correlation of predicted and measured loss over {} random assignments: CLADO "
        "{:.3f}, diagonal {:.3f}.</p>",
        sweep["random"].value("count", 0), sweep["random"].value("spearman_clado", 0.0),
        sweep["random"].value("spearman_diagonal", 0.0));
  return "<h2>Accuracy against size, every allocator</h2><p>Uniform (dashed) is every searched "
         "layer at the widest bit-width the budget allows.</p>" +
         svg::line_chart(series, "average weight bits (searched layers)", "test top-1 %") + extra +
         table + "</table>";
}

std::string hw_section(const nlohmann::json& hw) {
  const auto& t = hw.at("total");
  const auto& dev = hw.at("device");
  std::vector<svg::StackedBar> bars;
  double top = 0;
  for (const auto& l : hw.at("layers")) {
    const double ms = l.at("ms").get<double>();
    const bool lut_bound = l.value("lut_cycles", 0.0) > l.value("dsp_cycles", 0.0);
    bars.push_back({l.at("name").get<std::string>(),
                    {{ms, lut_bound ? "#ff7f0e" : "#1f77b4",
                      lut_bound ? "bound by the SP2 (LUT) array" : "bound by the DSP array"}}});
    top = std::max(top, ms);
  }
  auto meter = [](const char* name, double share) {
    return fmt::format(
        "<div class=\"meter\"><span>{}</span><div><i style=\"width:{:.1f}%\"></i></div>"
        "<b>{:.1f} %</b></div>",
        name, std::min(100.0, share * 100), share * 100);
  };
  return fmt::format(
             "<h2>FPGA: {} at {:g} MHz</h2><p>Latency {:.3f} ms, {:.1f} GOPS achieved of {:.1f} "
             "peak. Fixed-point rows run on the DSP array, SP2 rows on the LUT array beside "
             "it.</p>",
             escape(dev.at("name").get<std::string>()), dev.value("clock_mhz", 0.0),
             t.at("ms").get<double>(), t.value("gops", 0.0), t.value("peak_gops", 0.0)) +
         meter("DSP48", t.value("dsp_share", 0.0)) + meter("LUT", t.value("lut_share", 0.0)) +
         svg::stacked_bars(bars, top > 0 ? top * 1.05 : 1, "latency ms");
}

const char* kStyle = R"(
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12px; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
td:nth-child(2) { text-align: left; }
svg.chart { display: block; margin: 8px 0; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
.meter { display: flex; align-items: center; gap: 8px; margin: 4px 0; }
.meter span { width: 60px; } .meter div { width: 300px; height: 12px; background: #eee; }
.meter i { display: block; height: 12px; background: #2ca02c; }
)";

}  // namespace

std::string render_report(const ReportInputs& in) {
  std::string body = "<h1>" + escape(in.title) + "</h1><table>";
  if (!in.model.empty()) body += "<tr><th>model</th><td>" + escape(in.model) + "</td></tr>";
  for (const auto& [k, v] : in.facts.items())
    body += "<tr><th>" + escape(k) + "</th><td>" +
            escape(v.is_string() ? v.get<std::string>() : v.dump()) + "</td></tr>";
  body += "</table>";
  if (in.config) body += allocation_section(*in.config);
  if (in.omega) body += omega_section(*in.omega);
  if (in.sweep.is_object() && in.sweep.contains("rows")) body += sweep_section(in.sweep);
  if (in.hw.is_object() && in.hw.contains("total")) body += hw_section(in.hw);
  if (!in.commands.empty()) {
    body += "<h2>Commands</h2><pre>";
    for (const std::string& c : in.commands) body += escape(c) + "\n";
    body += "</pre>";
  }
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
         escape(in.title) + "</title><style>" + kStyle + "</style></head><body>" + body +
         "</body></html>\n";
}

}  // namespace mixq
