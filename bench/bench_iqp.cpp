// CLADO IQP solver on synthetic problems of real network shapes; prints tables.
//   (a) ResNet-20: 18 layers x {2,4,8} bits, size budgets 2.5 / 3.0 / 3.5 average bits, 5 seeds:
//       proven optimal (rel_gap 0), target < 1 s each.
//   (b) ResNet-50: 52 layers x {2,4,8} bits, 10 budgets from 2.25 to 7 average bits, with and
//       without PSD clipping: proven gap <= 0.1 % (rel_gap 1e-3), target < 60 s each.
//       --seeds N Omegas (default 3); the first is also solved exactly (rel_gap 0).
//   --stress adds ResNet-50 problems with much stronger cross terms, 20 s limit each.
// Omega comes from synth_omega (see search/iqp_synth.h) with the OmegaModel defaults unless
// flags override them: --cross-mean X --cross-sd X --decay X --layer-sd X --seed N.
// --fit F.omega fits the model to a measured sensitivity file (mixq sensitivity) instead, so the
// ResNet-50-sized instances carry the statistics of a real network's Omega; flags given after
// --fit still override single parameters.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "search/iqp.h"
#include "search/iqp_synth.h"
#include "search/sensitivity.h"

using namespace mixq;

namespace {

struct Row {
  IqpResult r;
  double avg_bits = 0;
  int count[3] = {0, 0, 0};
  double original = 0;  // objective of the choice under the unclipped Omega
};

Row solve(const IqpProblem& p, const std::vector<int64_t>& w, const IqpOptions& o) {
  Row row;
  row.r = solve_iqp(p, o);
  if (row.r.choice.empty()) return row;
  const int bits[] = {2, 4, 8};
  double total = 0, sized = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const int c = row.r.choice[i];
    row.count[c]++;
    total += static_cast<double>(w[i]);
    sized += static_cast<double>(w[i]) * bits[c];
  }
  row.avg_bits = sized / total;
  row.original = objective(p, row.r.choice);
  return row;
}

void header() {
  std::printf("%-8s %-5s %-5s %-10s %12s %12s %12s %9s %8s %8s %5s %5s %5s %s\n", "budget", "clip",
              "seed", "status", "objective", "bound", "orig.obj", "gap", "nodes", "seconds", "w2",
              "w4", "w8", "target");
}

void print(double budget, bool clip, int seed, const Row& row, double target_s, double target_gap) {
  const IqpResult& r = row.r;
  const bool ok =
      r.status == IqpResult::Status::optimal && r.seconds < target_s && r.gap <= target_gap;
  std::printf("%-8.2f %-5s %-5d %-10s %12.6g %12.6g %12.6g %9.2e %8lld %8.3f %5d %5d %5d %s\n",
              budget, clip ? "yes" : "no", seed, to_string(r.status), r.objective, r.bound,
              row.original, r.gap, static_cast<long long>(r.nodes), r.seconds, row.count[0],
              row.count[1], row.count[2], ok ? "met" : "MISSED");
  std::fflush(stdout);
}

// The OmegaModel of a measured sensitivity file (exits with a message on a bad file).
OmegaModel fitted_model(const char* path) {
  try {
    const SensitivityData d = load_sensitivity(path);
    const std::vector<double> om = d.omega();
    const auto n = static_cast<Eigen::Index>(d.n());
    Eigen::MatrixXd omega(n, n);
    for (Eigen::Index r = 0; r < n; ++r)
      for (Eigen::Index c = 0; c < n; ++c) omega(r, c) = om[static_cast<size_t>(r * n + c)];
    std::printf("fitted to %s: %zu layers x %zu candidates, L0 %.5f\n", path, d.layers,
                d.candidates, d.L0());
    return fit_omega_model(omega, static_cast<int>(d.candidates));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_iqp: %s\n", e.what());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  OmegaModel md;
  bool stress = false;
  int seeds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool more = i + 1 < argc;
    if (a == "--stress")
      stress = true;
    else if (a == "--fit" && more)
      md = fitted_model(argv[++i]);
    else if (a == "--cross-mean" && more)
      md.cross_mean = std::atof(argv[++i]);
    else if (a == "--cross-sd" && more)
      md.cross_sd = std::atof(argv[++i]);
    else if (a == "--decay" && more)
      md.decay = std::atof(argv[++i]);
    else if (a == "--layer-sd" && more)
      md.layer_sd = std::atof(argv[++i]);
    else if (a == "--seeds" && more)
      seeds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--seed" && more)
      md.seed = std::strtoull(argv[++i], nullptr, 10);
    else {
      std::fprintf(
          stderr,
          "usage: %s [--fit F.omega] [--stress] [--cross-mean X] [--cross-sd X] [--decay X] "
          "[--layer-sd X] [--seed N] [--seeds N]\n",
          argv[0]);
      return 2;
    }
  }
  std::printf(
      "Omega model: ln d means {%.2f, %.2f, %.2f} for {2,4,8} bits, layer sd %.2f, "
      "candidate sd %.2f, diag noise %.1e, cross ratio %.2f +- %.2f, decay %.1f layers\n\n",
      md.log_mean[0], md.log_mean[1], md.log_mean[2], md.layer_sd, md.candidate_sd, md.diag_noise,
      md.cross_mean, md.cross_sd, md.decay);

  std::printf("(a) ResNet-20 shape, 18 layers x 3, proven optimal (rel_gap 0), target < 1 s\n");
  header();
  const auto r20 = resnet20_weights();
  double worst20 = 0;
  for (double budget : {2.5, 3.0, 3.5}) {
    for (int seed = 1; seed <= 5; ++seed) {
      OmegaModel m = md;
      m.seed = md.seed + seed - 1;
      const IqpProblem p = size_problem(synth_omega(18, m), r20, {2, 4, 8}, budget);
      for (bool clip : {false, true}) {
        IqpOptions o;
        o.clip_psd = clip;
        o.time_limit_s = 10;
        const Row row = solve(p, r20, o);
        worst20 = std::max(worst20, row.r.seconds);
        print(budget, clip, static_cast<int>(m.seed), row, 1.0, 1e-9);
      }
    }
  }
  std::printf("slowest: %.3f s\n\n", worst20);

  std::printf("(b) ResNet-50 shape, 52 layers x 3, rel_gap 1e-3, target gap <= 0.1 %% in < 60 s\n");
  header();
  const auto r50 = resnet50_weights();
  double worst50 = 0;
  for (int seed = 0; seed < seeds; ++seed) {
    OmegaModel m = md;
    m.seed = md.seed + seed;
    const IqpProblem base = size_problem(synth_omega(52, m), r50, {2, 4, 8}, 3.0);
    for (double gap : seed == 0 ? std::vector<double>{1e-3, 0.0} : std::vector<double>{1e-3}) {
      if (gap == 0) std::printf("same Omega, solved exactly (rel_gap 0):\n");
      for (bool clip : {false, true}) {
        for (double budget : {2.25, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 7.0}) {
          IqpProblem p = base;
          p.budgets[0] = base.budgets[0] / 3.0 * budget;
          IqpOptions o;
          o.clip_psd = clip;
          o.rel_gap = gap;
          o.time_limit_s = 60;
          const Row row = solve(p, r50, o);
          worst50 = std::max(worst50, row.r.seconds);
          print(budget, clip, static_cast<int>(m.seed), row, 60.0, 1e-3);
        }
      }
    }
  }
  std::printf("slowest: %.3f s\n", worst50);
  std::printf(
      "orig.obj: the choice's x'Omega x under the unclipped Omega (the clipped rows solve "
      "a different objective)\n");

  if (stress) {
    std::printf("\n(stress) ResNet-50 shape, stronger cross terms, rel_gap 1e-3, 20 s limit\n");
    header();
    for (double sd : {0.75, 1.0}) {
      OmegaModel m = md;
      m.cross_sd = sd;
      m.decay = 6;
      std::printf("cross ratio %.2f +- %.2f, decay %.1f\n", m.cross_mean, m.cross_sd, m.decay);
      const IqpProblem sp = size_problem(synth_omega(52, m), r50, {2, 4, 8}, 3.0);
      for (double budget : {2.5, 4.0, 6.0}) {
        IqpProblem p = sp;
        p.budgets[0] = sp.budgets[0] / 3.0 * budget;
        IqpOptions o;
        o.rel_gap = 1e-3;
        o.time_limit_s = 20;
        print(budget, false, static_cast<int>(m.seed), solve(p, r50, o), 20.0, 1e-3);
      }
    }
  }
  return 0;
}
