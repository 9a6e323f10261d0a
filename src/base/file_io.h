// Files mixq writes are written atomically: to a temporary file in the same folder, flushed,
// then renamed over the target, so a run killed at any moment leaves the old file or the new
// one, never a partial one. Outputs are checked before any work: writable, and never one of
// the run's inputs.
#pragma once
#include <string>
#include <vector>

namespace mixq {

void write_file_atomic(const std::string& path, const std::string& content);
// Reads a whole regular file; Error naming the path when it cannot. `peak` is how many times
// its size the caller will hold while using it (parsing): size * peak must fit --mem-limit,
// checked before reading.
std::string read_file(const std::string& path, double peak = 1);

// A file a run reads, named for messages ("input model", "--quant config").
struct InputFile {
  std::string path, what;
};

// Throws a usage Error "FLAG OUTPUT: is the WHAT 'PATH'; choose another output" when output
// resolves to the same file as an input (same path after resolving links and "..", or, when
// both exist, the same device and inode). Empty paths are skipped.
void check_no_overwrite(const std::string& output, const std::vector<InputFile>& inputs,
                        const std::string& flag);
// A file about to be written: its folder exists and is writable, and it is not a folder.
void check_output_file(const std::string& path, const std::string& flag);
// A folder about to be created or written into: its nearest existing ancestor is a writable
// folder, and it is not a file.
void check_output_dir(const std::string& path, const std::string& flag);

}  // namespace mixq
