#include "dist/world.h"

#include <mpi.h>

#include <cstdlib>
#include <cstring>

#include "base/error.h"

namespace mixq::dist {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error("MPI", std::string(what) + " failed: " + std::string(text, len));
}

}  // namespace

bool launched_by_mpi() {
  // Open MPI, PMIx launchers (Open MPI 5, Slurm) and MPICH/Hydra set one of these.
  return env_int("OMPI_COMM_WORLD_SIZE", 0) > 1 || env_int("PMIX_SIZE", 0) > 1 ||
         env_int("PMI_SIZE", 0) > 1;
}

World::World() {
  if (!launched_by_mpi()) return;
  check_mpi(MPI_Init(nullptr, nullptr), "MPI_Init");
  std::atexit(finalize_at_exit);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
}

World& World::get() {
  static World world;
  return world;
}

std::vector<std::string> World::gather(const std::string& bytes) const {
  if (!distributed()) return {bytes};
  // Sizes first (64-bit: a shard can pass 2 GB), then the bytes rank by rank, in pieces
  // that fit MPI's int counts.
  const unsigned long long mine = bytes.size();
  std::vector<unsigned long long> sizes(rank_ == 0 ? size_ : 0);
  check_mpi(MPI_Gather(&mine, 1, MPI_UNSIGNED_LONG_LONG, sizes.data(), 1, MPI_UNSIGNED_LONG_LONG, 0,
                       MPI_COMM_WORLD),
            "MPI_Gather");
  constexpr size_t kPiece = size_t{1} << 30;
  if (rank_ != 0) {
    for (size_t off = 0; off < bytes.size(); off += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, bytes.size() - off));
      check_mpi(MPI_Send(bytes.data() + off, n, MPI_BYTE, 0, 0, MPI_COMM_WORLD), "MPI_Send");
    }
    return {};
  }
  std::vector<std::string> all(size_);
  all[0] = bytes;
  for (int r = 1; r < size_; ++r) {
    all[r].resize(sizes[r]);
    for (size_t off = 0; off < all[r].size(); off += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, all[r].size() - off));
      check_mpi(MPI_Recv(all[r].data() + off, n, MPI_BYTE, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                "MPI_Recv");
    }
  }
  return all;
}

void World::barrier() const {
  if (distributed()) check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void World::abort(int code) const {
  if (distributed()) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

}  // namespace mixq::dist
