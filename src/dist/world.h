// The group of processes sharing one job. Launched by an MPI launcher (mpirun, srun with PMI)
// it is the MPI world; run directly it is a single process and MPI is never initialised, so
// plain runs pay nothing and need no launcher.
#pragma once
#include <string>
#include <vector>

namespace mixq::dist {

class World {
 public:
  // The process's world; MPI is initialised on first use when the launcher's environment
  // variables say this process is one rank of several, and finalised at exit.
  static World& get();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool distributed() const { return size_ > 1; }
  // Processes of this world on this host (for sharing its cores between them).
  int local_size() const { return local_size_; }

  // Rank 0 gets every rank's bytes, indexed by rank; the other ranks get an empty vector.
  std::vector<std::string> gather(const std::string& bytes) const;
  void barrier() const;
  // Ends every rank of the job: a rank that fails alone would leave the others waiting.
  [[noreturn]] void abort(int code) const;

 private:
  World();
  int rank_ = 0, size_ = 1, local_size_ = 1;
};

// True when this process was started by an MPI launcher (its environment variables).
bool launched_by_mpi();

}  // namespace mixq::dist
