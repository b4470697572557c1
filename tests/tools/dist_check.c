// tests/tools/dist_check.c — the communicator (runtime/dist.h) exercised by
// every rank of a job; tests/e2e/dist_*.sh run it under `mpirun -np 2` and
// under `nao-train`'s local launcher (launch.h).
//
//   dist_check collectives           every collective against values each rank
//                                    can compute for all ranks; prints "ok"
//   dist_check hang RANK SECONDS     RANK sleeps SECONDS before the first
//                                    all-reduce (a hung rank); the others must
//                                    fail with the timeout naming RANK
//   dist_check die RANK              RANK exits with status 3 (SIGKILL with
//                                    die-kill) before the first all-reduce
//   dist_check steps N               N all-reduces, 50 ms apart (a run to stop
//                                    or kill from outside)
// Options (before the mode): --timeout S (default 600).
// Exit status: 0 ok; 1 a check failed; 70 a collective failed (its message on
// stderr, then dist_abort).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/dist.h"

static int failures;

#define CHECK(cond, ...)                                            \
  do {                                                              \
    if (!(cond)) {                                                  \
      fprintf(stderr, "dist_check: rank %d: check failed: ", rank); \
      fprintf(stderr, __VA_ARGS__);                                 \
      fprintf(stderr, "\n");                                        \
      failures++;                                                   \
    }                                                               \
  } while (0)

static void or_abort(Dist *d, int rc) {
  if (rc >= 0) return;
  fprintf(stderr, "dist_check: %s\n", dist_error(d));
  dist_abort(d, 70);
}

static void nap(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

// Values rank r contributes: x_r[i] = (r + 1) * (i + 1) / 8 (exact in float).
static float contrib(int r, size_t i) { return (float)(r + 1) * (float)(i + 1) / 8.0f; }

static int collectives(Dist *d) {
  int rank = dist_rank(d), world = dist_world(d);
  enum { N = 1000 };
  float *x = xmalloc(N * sizeof *x);
  for (size_t i = 0; i < N; i++) x[i] = contrib(rank, i);
  or_abort(d, dist_allreduce_f32(d, x, N, DIST_SUM, "sum"));
  for (size_t i = 0; i < N; i++) {
    float want = 0;
    for (int r = 0; r < world; r++) want += contrib(r, i);
    CHECK(x[i] == want, "sum[%zu] = %g, want %g", i, x[i], want);
  }
  for (size_t i = 0; i < N; i++) x[i] = contrib(rank, i);
  or_abort(d, dist_allreduce_f32(d, x, N, DIST_MEAN, "mean"));
  for (size_t i = 0; i < N; i++) {
    float want = 0;
    for (int r = 0; r < world; r++) want += contrib(r, i);
    want *= 1.0f / (float)world;
    CHECK(x[i] == want, "mean[%zu] = %g, want %g", i, x[i], want);
  }
  // Two slices reduced as one collective; the gap between them is untouched.
  for (size_t i = 0; i < N; i++) x[i] = contrib(rank, i);
  DistRange sl[2] = {{10, 100}, {500, 250}};
  or_abort(d, dist_allreduce_ranges_f32(d, x, sl, 2, DIST_MEAN, "ranges"));
  for (size_t i = 0; i < N; i++) {
    int in = (i >= 10 && i < 110) || (i >= 500 && i < 750);
    float want = 0;
    for (int k = 0; k < world; k++) want += contrib(k, i);
    want = in ? want * (1.0f / (float)world) : contrib(rank, i);
    CHECK(x[i] == want, "ranges[%zu] = %g, want %g", i, x[i], want);
  }
  double m[2] = {rank * 10.0, -rank};
  or_abort(d, dist_allreduce_f64(d, m, 2, DIST_MAX, "max"));
  CHECK(m[0] == (world - 1) * 10.0 && m[1] == 0, "max = %g %g", m[0], m[1]);
  char text[64];
  snprintf(text, sizeof text, "from rank %d", rank);
  or_abort(d, dist_broadcast(d, text, sizeof text, world - 1, "broadcast"));
  char want_text[64];
  snprintf(want_text, sizeof want_text, "from rank %d", world - 1);
  CHECK(!strcmp(text, want_text), "broadcast gave '%s'", text);
  int *all = xcalloc((size_t)world, sizeof *all);
  int mine = 100 + rank;
  or_abort(d, dist_allgather(d, &mine, all, sizeof mine, "allgather"));
  for (int r = 0; r < world; r++) CHECK(all[r] == 100 + r, "allgather[%d] = %d", r, all[r]);
  or_abort(d, dist_barrier(d, "barrier"));
  int any = dist_any(d, rank == world - 1, "any");
  or_abort(d, any);
  CHECK(any == 1, "any = %d", any);
  any = dist_any(d, 0, "none");
  or_abort(d, any);
  CHECK(any == 0, "any of zeros = %d", any);
  float same[3] = {1, 2, 3};
  int eq = dist_check_equal(d, same, sizeof same, "same data");
  or_abort(d, eq);
  CHECK(eq == 0, "equal data reported different: %s", dist_error(d));
  same[2] = (float)rank;
  eq = dist_check_equal(d, same, sizeof same, "rank-dependent data");
  or_abort(d, eq);
  CHECK(world == 1 || (eq == 1 && strstr(dist_error(d), "differ")), "different data: %d '%s'", eq,
        dist_error(d));
  CHECK(dist_seq(d) == 11, "seq %lld after 11 collectives", dist_seq(d));
  free(all);
  free(x);
  if (failures == 0 && rank == 0)
    printf("ok: %d ranks, %s, local rank %d of %d\n", world, dist_name(d), dist_local_rank(d),
           dist_local_world(d));
  return failures ? 1 : 0;
}

static int fault(Dist *d, const char *mode, int who, double seconds) {
  int rank = dist_rank(d);
  or_abort(d, dist_barrier(d, "start"));
  if (rank == who) {
    if (!strcmp(mode, "hang")) nap(seconds);
    if (!strcmp(mode, "die")) _exit(3);
    if (!strcmp(mode, "die-kill")) raise(SIGKILL);
  }
  float x = 1;
  double t0 = (double)time(NULL);
  or_abort(d, dist_allreduce_f32(d, &x, 1, DIST_SUM, "gradient all-reduce"));
  printf("rank %d: all-reduce done after %.0f s\n", rank, (double)time(NULL) - t0);
  return 0;
}

static int steps(Dist *d, int n) {
  for (int i = 0; i < n; i++) {
    float x = 1;
    or_abort(d, dist_allreduce_f32(d, &x, 1, DIST_SUM, "step all-reduce"));
    nap(0.05);
  }
  return 0;
}

int main(int argc, char **argv) {
  DistOptions o;
  dist_options_default(&o);
  int a = 1;
  if (a + 1 < argc && !strcmp(argv[a], "--timeout")) o.timeout = atof(argv[a + 1]), a += 2;
  if (a >= argc) {
    fprintf(stderr, "usage: dist_check [--timeout S] collectives | hang RANK SECONDS | die RANK | steps N\n");
    return 2;
  }
  char err[1024];
  Dist *d = dist_open(NULL, &o, err, sizeof err);
  if (!d) {
    fprintf(stderr, "dist_check: %s\n", err);
    return 1;
  }
  const char *mode = argv[a];
  int rc;
  if (!strcmp(mode, "collectives")) rc = collectives(d);
  else if (!strcmp(mode, "steps") && a + 1 < argc) rc = steps(d, atoi(argv[a + 1]));
  else if (a + 1 < argc) rc = fault(d, mode, atoi(argv[a + 1]), a + 2 < argc ? atof(argv[a + 2]) : 0);
  else rc = 2;
  dist_close(d);
  return rc;
}
