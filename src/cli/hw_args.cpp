#include "cli/hw_args.h"

#include "base/error.h"
#include "hw/fpga.h"

namespace mixq::cli {

CLI::Validator device_validator() {
  return CLI::Validator(
      [](std::string& s) {
        return hw::find_device(s)
                   ? std::string()
                   : "unknown device '" + s + "' (devices: " + hw::device_names() + ")";
      },
      "DEVICE");
}

CLI::Validator ratio_validator() {
  return CLI::Validator(
      [](std::string& s) {
        try {
          hw::parse_ratio(s, "");
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      },
      "RATIO");
}

}  // namespace mixq::cli
