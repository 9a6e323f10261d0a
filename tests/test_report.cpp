// The HTML report: sections appear for the inputs given, charts carry one mark per datum, text is
// escaped, and headless Chromium (when installed) parses it and paints the charts.
#include <gtest/gtest.h>

#include <fstream>

#include "base/file_io.h"
#include "data/image.h"
#include "report/report.h"
#include "support/onnx_builder.h"

using namespace mixq;
using namespace mixq::test;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// A complete sensitivity result for 3 layers x 2 candidates with chosen deltas.
SensitivityData small_omega() {
  SensitivityData d;
  d.header = {{"layers", {"a", "b<c>", "d"}}, {"candidates", {"w2", "w8"}}, {"model", "m.onnx"}};
  d.layers = 3, d.candidates = 2, d.chunks = 1, d.samples = 10;
  d.chunk_sizes = {10};
  d.base = {5.0};
  d.single.assign(1, std::vector<double>(6));
  for (size_t i = 0; i < 6; ++i) d.single[0][i] = 5.0 + (i % 2 == 0 ? 2.0 : 0.1) * (i + 1);
  d.pair.assign(1, std::vector<double>(36, 0.0));
  for (size_t s = 0; s < 6; ++s)
    for (size_t t = s + 1; t < 6; ++t)
      if (s / 2 != t / 2) d.pair[0][s * 6 + t] = d.single[0][s] + d.single[0][t] - 5.0 - 1.0;
  d.done.assign(1, std::vector<uint8_t>(3, 1));
  return d;
}

ReportInputs full_inputs(QuantConfig& cfg, SensitivityData& d) {
  LayerConfig a{"a", {{Scheme::fixed, 4, 1}, {Scheme::sp2, 4, 1}, {Scheme::sp2, 4, 1}}, {}};
  LayerConfig b{"b<c>", {{Scheme::fixed, 8, 1}, {Scheme::fixed, 2, 1}}, {}};
  LayerConfig c{"d", {}, {}};
  cfg.layers = {a, b, c};
  ReportInputs in;
  in.title = "test & report";
  in.config = &cfg;
  in.omega = &d;
  in.sweep = {{"rows",
               {{{"method", "clado"},
                 {"budget", "3bits"},
                 {"avg_bits", 3.0},
                 {"test_top1", 70.0},
                 {"predicted", 0.1},
                 {"measured", 0.2},
                 {"weight_kb", 10.0}},
                {{"method", "clado"},
                 {"budget", "4bits"},
                 {"avg_bits", 4.0},
                 {"test_top1", 80.0},
                 {"predicted", 0.05},
                 {"measured", 0.1},
                 {"weight_kb", 12.0}},
                {{"method", "uniform"},
                 {"budget", "3bits"},
                 {"avg_bits", 3.0},
                 {"test_top1", 50.0},
                 {"predicted", nullptr},
                 {"measured", 1.0},
                 {"weight_kb", 10.0}}}}};
  in.hw = {{"device", {{"name", "XC7Z020"}, {"clock_mhz", 100.0}}},
           {"total",
            {{"ms", 1.5},
             {"gops", 30.0},
             {"peak_gops", 130.0},
             {"dsp_share", 1.0},
             {"lut_share", 0.79}}},
           {"layers",
            {{{"name", "a"}, {"ms", 1.0}, {"dsp_cycles", 5.0}, {"lut_cycles", 9.0}},
             {{"name", "b"}, {"ms", 0.5}, {"dsp_cycles", 5.0}, {"lut_cycles", 1.0}}}}};
  in.commands = {"mixq quantize --budget 3bits"};
  return in;
}

}  // namespace

TEST(Report, SectionsChartsAndEscaping) {
  QuantConfig cfg;
  SensitivityData d = small_omega();
  const std::string html = render_report(full_inputs(cfg, d));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(count(html, "<svg"), 4u);              // allocation, heatmap, curves, FPGA latency
  EXPECT_EQ(count(html, "class=\"cell\""), 36u);   // 6 x 6 Omega
  EXPECT_EQ(count(html, "class=\"series\""), 2u);  // clado and uniform
  EXPECT_EQ(count(html, "stroke-dasharray"), 1u);  // uniform is dashed
  // Layer a: 1 fixed + 2 SP2 rows at 4 bits; layer b: one 8-bit and one 2-bit row; d: float.
  EXPECT_EQ(count(html, "class=\"seg\""), 2u + 2u + 1u + 2u);  // + two FPGA latency bars
  EXPECT_NE(html.find("<td>5.00</td>"), std::string::npos);    // b's average bits
  EXPECT_EQ(html.find("b<c>"), std::string::npos);             // escaped everywhere
  EXPECT_NE(html.find("b&lt;c&gt;"), std::string::npos);
  EXPECT_NE(html.find("test &amp; report"), std::string::npos);
  EXPECT_NE(html.find("bound by the SP2 (LUT) array"), std::string::npos);
  EXPECT_NE(html.find("mixq quantize --budget 3bits"), std::string::npos);
}

TEST(Report, LeavesOutSectionsWithoutData) {
  QuantConfig cfg;
  SensitivityData d = small_omega();
  ReportInputs in = full_inputs(cfg, d);
  in.omega = nullptr;
  in.sweep = nullptr;
  in.hw = nullptr;
  const std::string html = render_report(in);
  EXPECT_EQ(count(html, "<svg"), 1u);
  EXPECT_EQ(html.find("Omega"), std::string::npos);
}

// Chromium loads the file, builds the SVG elements, and paints the heatmap's red and blue cells
// and the bars: counted in a screenshot.
TEST(Report, HeadlessChromiumPaintsTheCharts) {
  if (run_command("command -v chromium").status != 0)
    GTEST_SKIP() << "chromium not installed (Debian package chromium; scripts/install-deps.sh)";
  QuantConfig cfg;
  SensitivityData d = small_omega();
  TempDir dir;
  const std::string page = dir.file("report.html"), png = dir.file("shot.png");
  write_file_atomic(page, render_report(full_inputs(cfg, d)));
  const std::string flags =
      "timeout 120 chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars "
      "--user-data-dir=" +
      dir.file("profile") + " ";
  const CommandResult dom = run_command(flags + "--dump-dom file://" + page);
  ASSERT_EQ(dom.status, 0) << dom.err;
  EXPECT_EQ(count(dom.out, "class=\"cell\""), 36u);
  EXPECT_EQ(count(dom.out, "<polyline"), 2u);
  const CommandResult shot =
      run_command(flags + "--window-size=1100,2600 --screenshot=" + png + " file://" + page);
  ASSERT_EQ(shot.status, 0) << shot.err;
  const Image img = decode_image(read_file_bytes(png), png);
  ASSERT_EQ(img.channels, 3);
  size_t red = 0, blue = 0;
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < img.width; ++x) {
      const uint8_t* p = img.row(y) + x * 3;
      red += p[0] > 200 && p[1] < 120 && p[2] < 120;  // strong positive Omega cells
      blue += p[2] > 180 && p[0] < 120;               // negative cells, fixed-point bars
    }
  std::printf("screenshot %lldx%lld: %zu red, %zu blue pixels\n", static_cast<long long>(img.width),
              static_cast<long long>(img.height), red, blue);
  EXPECT_GT(red, 500u);
  EXPECT_GT(blue, 500u);
}
