#include "cli/validators.h"

#include <cmath>
#include <cstdlib>

#include "base/error.h"
#include "quant/scheme.h"

namespace mixq::cli {

void add_common_checks(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    for (CLI::Option* opt : sub->get_options([](const CLI::Option* o) {
           return o->get_type_size() > 0 && o->get_name() != "--help";
         })) {
      const std::string type = opt->get_type_name();
      const bool number = type.rfind("FLOAT", 0) == 0, count = type.rfind("UINT", 0) == 0;
      opt->check(CLI::Validator(
          [number, count](std::string& s) -> std::string {
            if (s.empty()) return "must not be empty";
            // CLI11 reads "-1" into an unsigned option as 2^64-1.
            if (count && s.find('-') != std::string::npos)
              return "must not be negative, got '" + s + "'";
            if (!number) return {};
            // strtod reads what CLI11 reads: "nan", "inf", "1e999" parse, as non-finite values.
            char* end = nullptr;
            const double v = std::strtod(s.c_str(), &end);
            if (end == s.c_str() + s.size() && !std::isfinite(v))
              return "must be a finite number, got '" + s + "'";
            return {};
          },
          ""));
    }
}

CLI::Validator parsed_by(std::function<void(const std::string&)> parse, const std::string& name) {
  return CLI::Validator(
      [parse](std::string& s) -> std::string {
        try {
          parse(s);
          return {};
        } catch (const Error& e) {
          return e.cause();
        }
      },
      "", name);
}

std::vector<std::string> scheme_choices(const std::string& first, bool shift_only) {
  std::vector<std::string> out = {first};
  for (Scheme s : all_schemes())
    if ((!shift_only || scheme_traits(s).multiplier_free) && scheme_name(s) != first)
      out.push_back(scheme_name(s));
  return out;
}

std::vector<int> weight_bits_choices(bool with_float) {
  std::vector<int> out;
  if (with_float) out.push_back(0);
  for (int b = kMinBits; b <= kMaxBits; ++b) out.push_back(b);
  return out;
}

std::string bits_range() {
  return std::to_string(kMinBits) + ".." + std::to_string(kMaxBits);
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string flag_name(const CLI::Option& opt) {
  const auto& l = opt.get_lnames();
  if (!l.empty()) return "--" + l.front();
  const auto& s = opt.get_snames();
  if (!s.empty()) return "-" + s.front();
  return opt.get_name(true);
}

}  // namespace mixq::cli
