#include "hw/cost_json.h"

namespace mixq::hw {

nlohmann::json cost_json(const Design& design, const std::vector<LayerShape>& layers,
                         const std::vector<RowSplit>& splits, const NetworkCost& cost,
                         const std::string& source) {
  const Device& device = design.device;
  nlohmann::json j;
  j["source"] = source;
  j["device"] = {{"name", device.name},
                 {"family", device.family},
                 {"dsp", device.dsp},
                 {"lut", device.lut},
                 {"clock_mhz", device.clock_mhz}};
  j["design"] = {{"bits", design.bits},
                 {"ratio", design.ratio},
                 {"balanced_ratio", balanced_ratio(device, design.bits)}};
  nlohmann::json ls = nlohmann::json::array();
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerShape& l = layers[i];
    const RowSplit& s = splits[i];
    const LayerCost& c = cost.layers[i];
    ls.push_back({{"name", l.name},
                  {"op_type", l.op_type},
                  {"cin", l.cin},
                  {"cout", l.cout},
                  {"kernel", {l.kh, l.kw}},
                  {"stride", l.stride},
                  {"out", {l.out_h, l.out_w}},
                  {"macs", l.macs},
                  {"fixed_rows", s.fixed},
                  {"sp2_rows", s.sp2},
                  {"fixed8_rows", s.fixed8},
                  {"dsp_cycles", c.dsp_cycles},
                  {"lut_cycles", c.lut_cycles},
                  {"cycles", c.cycles},
                  {"ms", c.ms}});
  }
  j["layers"] = ls;
  j["total"] = {{"ms", cost.ms},
                {"cycles", cost.cycles},
                {"macs", cost.macs},
                {"gops", cost.gops},
                {"peak_gops", design.peak_gops()},
                {"lut", design.lut_use()},
                {"lut_share", design.lut_share()},
                {"dsp", design.dsp_use()},
                {"dsp_share", 1.0}};
  return j;
}

}  // namespace mixq::hw
