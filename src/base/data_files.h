// mixq's own data files (the embedded default model) are found where they were installed, never
// through a path compiled into the binary, so an installed or moved build keeps working.
#pragma once
#include <string>
#include <vector>

namespace mixq {

// Folders searched for data files, in order: $MIXQ_DATA_DIR when set; then, for the running
// executable and for the shared library holding mixq (when it is one), <dir>/../share/mixq (an
// installed prefix) and <dir>/share/mixq (a build tree).
std::vector<std::string> data_dirs();
// The first existing <folder>/<relative> of data_dirs(); Error listing the folders searched when
// there is none.
std::string find_data_file(const std::string& relative);

}  // namespace mixq
