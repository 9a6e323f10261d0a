#include "search/budget.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include "base/error.h"
#include "base/memory.h"
#include "base/parse.h"
#include "hw/fpga.h"
#include "hw/shapes.h"

namespace mixq {

namespace {

// The number before a budget's unit: positive and finite.
double budget_number(const std::string& num, const std::string& text, const std::string& where) {
  const std::optional<double> v = parse_number(num);
  check(v.has_value(), where, "bad number in budget '" + text + "'");
  check(*v > 0, where, "budget '" + text + "' must be positive");
  return *v;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Budget parse_budget(const std::string& text, const std::string& where) {
  const size_t at = text.find('@');
  if (at != std::string::npos || ends_with(text, "ms")) {  // 5ms@XC7Z020
    const std::string lat = text.substr(0, at),
                      dev = at == std::string::npos ? "" : text.substr(at + 1);
    check(ends_with(lat, "ms") && !dev.empty(), where,
          "latency budget '" + text + "' must name the device, like 5ms@XC7Z020");
    const hw::Device* d = hw::find_device(dev);
    check(d != nullptr, where,
          "unknown device '" + dev + "' in budget '" + text + "' (" + hw::device_names() + ")");
    return {Budget::Kind::latency_ms, budget_number(lat.substr(0, lat.size() - 2), text, where),
            text, d->name};
  }
  struct Unit {
    const char* suffix;
    Budget::Kind kind;
    double scale;
  };
  static const Unit units[] = {
      {"bits", Budget::Kind::avg_bits, 1},  {"GBOPs", Budget::Kind::bops, 1e9},
      {"MBOPs", Budget::Kind::bops, 1e6},   {"BOPs", Budget::Kind::bops, 1},
      {"MB", Budget::Kind::bytes, 1 << 20}, {"KB", Budget::Kind::bytes, 1 << 10},
      {"B", Budget::Kind::bytes, 1},
  };
  for (const Unit& u : units) {
    if (!ends_with(text, u.suffix)) continue;
    const double v =
        budget_number(text.substr(0, text.size() - std::strlen(u.suffix)), text, where);
    if (u.kind == Budget::Kind::avg_bits)
      check(v <= 32, where, "average bits '" + text + "' above 32");
    return {u.kind, v * u.scale, text, ""};
  }
  throw Error(where,
              "budget '" + text + "' needs a unit: bits, MB, KB, B, GBOPs, MBOPs, BOPs, ms@DEVICE");
}

std::vector<Budget> parse_budgets(const std::string& text, const std::string& where) {
  std::vector<Budget> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(parse_budget(item, where));
  check(!out.empty(), where, "no budget given");
  return out;
}

std::string budgets_text(const std::vector<Budget>& budgets) {
  std::string out;
  for (const Budget& b : budgets) out += (out.empty() ? "" : ",") + b.text;
  return out;
}

hw::Design latency_design(const hw::Device& device) {
  return hw::balanced_design(device, 4);
}

LinearBudget linearize(const Budget& b, const Graph& g, const SearchSpace& space) {
  const size_t L = space.num_searched(), C = space.num_candidates();
  LinearBudget lb;
  lb.costs.resize(L * C);
  std::vector<bool> searched(space.all.size(), false);
  for (int i : space.searched) searched[i] = true;
  // Layer i's cost at a candidate, and what it costs fixed (a fix, else the edge bits).
  std::function<double(size_t, const CandidateSpec&)> cost;
  std::function<double(size_t)> float_cost;
  auto fixed_cost = [&](size_t i) {
    const LayerFix& f = space.fix(i);
    if (f.kind == LayerFix::Kind::keep_float) return float_cost(i);
    if (f.kind == LayerFix::Kind::pin) return cost(i, f.candidate);
    return cost(i, CandidateSpec{"", space.edge_bits, Scheme::fixed});
  };
  // Searched layers: a fixed one costs the same at every candidate, so the choice is free.
  auto fill_searched = [&] {
    for (size_t s = 0; s < L; ++s) {
      const size_t i = space.searched[s];
      for (size_t c = 0; c < C; ++c)
        lb.costs[s * C + c] = space.fixed(i) ? fixed_cost(i) : cost(i, space.candidates[c]);
    }
  };
  double fixed = 0;  // what the layers outside the search use
  auto sum_fixed = [&] {
    for (size_t i = 0; i < space.all.size(); ++i)
      if (!searched[i]) fixed += fixed_cost(i);
  };
  auto weight_bits = [&](size_t i, const CandidateSpec& c) {
    return static_cast<double>(space.all[i].weight_count) * candidate_bits(c, space.all[i].rows);
  };
  switch (b.kind) {
    case Budget::Kind::avg_bits: {
      // Over the free searched layers only: pinned and float layers are left out of the average
      // as the edge layers are.
      double free = 0;
      for (const QuantLayer& l : space.free_layers()) free += static_cast<double>(l.weight_count);
      // Named by a rule that fixed a searched layer: the rules left no layer to average over.
      if (free == 0)
        throw Error(space.fix(space.searched.back()).rule,
                    "every searched layer is now pinned or kept float: budget '" + b.text +
                        "' has no layer left to average bits over");
      for (size_t s = 0; s < L; ++s)
        for (size_t c = 0; c < C; ++c)
          lb.costs[s * C + c] = space.fixed(space.searched[s]) ? 0 : space.size_bits(s, c);
      lb.bound = b.value * free;
      lb.per_unit = free;
      break;
    }
    case Budget::Kind::bytes: {
      cost = weight_bits;
      float_cost = [&](size_t i) { return 32.0 * space.all[i].weight_count; };
      std::vector<bool> is_weight(g.values.size(), false);
      for (const QuantLayer& l : space.all) is_weight[l.weight] = true;
      for (size_t v = 0; v < g.values.size(); ++v)
        if (!is_weight[v] && g.values[v].constant && g.values[v].constant->dtype() == DType::f32)
          fixed += 32.0 * g.values[v].constant->numel();
      sum_fixed();
      fill_searched();
      lb.bound = b.value * 8 - fixed;
      lb.per_unit = 8;
      break;
    }
    case Budget::Kind::bops: {
      // Searched layers' inputs at abits, the others' at least at the edge bits; float: 32 x 32.
      cost = [&](size_t i, const CandidateSpec& c) {
        const int a = searched[i] ? space.abits : std::max(space.abits, space.edge_bits);
        return double(space.macs[i]) * candidate_bits(c, space.all[i].rows) * a;
      };
      float_cost = [&](size_t i) { return double(space.macs[i]) * 32.0 * 32.0; };
      sum_fixed();
      fill_searched();
      lb.bound = b.value - fixed;
      break;
    }
    case Budget::Kind::latency_ms: {
      const hw::Design design = latency_design(*hw::find_device(b.device));
      const double cycles_per_ms = design.device.clock_mhz * 1e3;
      std::map<std::string, hw::LayerShape> shapes;
      for (const hw::LayerShape& l : hw::layers_from_graph(g)) shapes[l.name] = l;
      auto shape = [&](const QuantLayer& l) -> const hw::LayerShape& {
        auto it = shapes.find(l.name);
        check(it != shapes.end(), b.text, "no FPGA shape for layer '" + l.name + "'");
        return it->second;
      };
      cost = [&](size_t i, const CandidateSpec& cs) {
        const QuantLayer& l = space.all[i];
        return hw::candidate_cycles(design, shape(l), cs.bits, candidate_shift_share(cs, l.rows),
                                    candidate_high_share(cs, l.rows)) /
               cycles_per_ms;
      };
      // The FPGA has no float datapath: a float layer is costed as 8-bit fixed, as mixq hw
      // costs a config's float layers.
      float_cost = [&](size_t i) { return cost(i, CandidateSpec{"", 8, Scheme::fixed}); };
      sum_fixed();
      fill_searched();
      lb.bound = b.value - fixed;
      break;
    }
  }
  return lb;
}

void check_budget_feasible(const Budget& b, const Graph& g, const SearchSpace& space,
                           const std::string& where) {
  const LinearBudget lb = linearize(b, g, space);
  const size_t L = space.num_searched(), C = space.num_candidates();
  double cheapest = 0, dearest = 0;
  for (size_t s = 0; s < L; ++s) {
    const auto first = lb.costs.begin() + static_cast<std::ptrdiff_t>(s * C);
    cheapest += *std::min_element(first, first + static_cast<std::ptrdiff_t>(C));
    dearest += *std::max_element(first, first + static_cast<std::ptrdiff_t>(C));
  }
  if (cheapest <= lb.bound * (1 + 1e-12)) return;
  auto show = [&](double sum) {
    const double v = lb.value_of(b, sum);
    switch (b.kind) {
      case Budget::Kind::avg_bits:
        return fmt::format("{:.3f} bits", v);
      case Budget::Kind::bytes:
        return format_bytes(v);
      case Budget::Kind::bops:
        return v >= 1e9 ? fmt::format("{:.4g} GBOPs", v / 1e9)
                        : fmt::format("{:.4g} MBOPs", v / 1e6);
      case Budget::Kind::latency_ms:
        break;
    }
    return fmt::format("{:.4g} ms on {}", v, b.device);
  };
  throw Error(where, "budget '" + b.text + "' cannot be met: with candidates " +
                         candidate_names(space.candidates) + " the cheapest assignment needs " +
                         show(cheapest) + " (the dearest " + show(dearest) + ")");
}

}  // namespace mixq
