// tests/unit/test_dist_nccl.c — the NCCL transport (runtime/dist_nccl.h) on
// the CPU: ranks are threads, NCCL and the device are tests/unit/nccl_mock.c.
// Shown: attaching with the local launcher's unique id (every rank joins with
// the same), the host collectives staged through the device, the device
// all-reduce of bucket slices (ncclAvg) and its polled wait; the refusals (an
// old NCCL, no unique id, no library); and the faults: a rank that never
// reaches a collective (the others fail after the timeout, the communicator
// aborted), an asynchronous NCCL error (reported and aborted), an init a rank
// never joins (the watchdog fires after the timeout).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/dist.h"
#include "runtime/dist_nccl.h"
#include "tests/unit/nccl_mock.h"

static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static int failures, checks;

// The condition is evaluated before the lock: it may be a collective that
// waits for the other ranks' threads.
#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    int ok_ = (cond) ? 1 : 0;                                                  \
    pthread_mutex_lock(&fail_mu);                                              \
    checks++;                                                                  \
    if (!ok_) {                                                                \
      failures++;                                                              \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
    pthread_mutex_unlock(&fail_mu);                                            \
  } while (0)

typedef struct {
  int rank, world;
  double timeout;
  int with_id;
  int mode;               // what the rank does (per test)
  char err[1200];
  int attached;
} Rank;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static Dist *open_rank(Rank *r, const DistNcclOptions *no) {
  DistEnv e;
  memset(&e, 0, sizeof e);
  e.launch = DIST_LAUNCH_LOCAL;
  e.rank = r->rank, e.world = r->world, e.local_rank = r->rank, e.local_world = r->world;
  e.heartbeat_fd = -1;
  e.has_nccl_id = r->with_id;
  for (int i = 0; i < DIST_NCCL_ID_BYTES; i++) e.nccl_id[i] = (unsigned char)(i ^ 0x5a);
  DistOptions o;
  dist_options_default(&o);
  o.timeout = r->timeout > 0 ? r->timeout : 30;
  Dist *d = dist_open(&e, &o, r->err, sizeof r->err);
  if (!d) return NULL;
  DistDevice dev;
  nccl_mock_device(r->rank, &dev);
  DistNcclOptions def = {nccl_mock_api(), NULL, NULL};
  r->attached = dist_nccl_attach(d, &dev, no ? no : &def, r->err, sizeof r->err) == 0;
  return d;
}

static void run_threads(Rank *rk, int world, void *(*fn)(void *)) {
  pthread_t th[8];
  for (int i = 0; i < world; i++) pthread_create(&th[i], NULL, fn, &rk[i]);
  for (int i = 0; i < world; i++) pthread_join(th[i], NULL);
}

// ---------------------------------------------------------------- collectives

static float contrib(int r, size_t i) { return (float)(r + 1) * (float)(i + 1) / 4.0f; }

static void host_collectives(Dist *d, int rank, int world) {
  enum { N = 300 };
  float x[N];
  for (size_t i = 0; i < N; i++) x[i] = contrib(rank, i);
  CHECK(dist_allreduce_f32(d, x, N, DIST_MEAN, "mean") == 0, "%s", dist_error(d));
  int bad = 0;
  for (size_t i = 0; i < N; i++) {
    float want = 0;
    for (int r = 0; r < world; r++) want += contrib(r, i);
    bad += x[i] != want * (1.0f / (float)world);
  }
  CHECK(bad == 0, "rank %d: %d wrong means", rank, bad);
  double m = rank * 2.5;
  CHECK(dist_allreduce_f64(d, &m, 1, DIST_MAX, "max") == 0 && m == (world - 1) * 2.5, "max %g", m);
  char msg[32];
  snprintf(msg, sizeof msg, "root is %d", rank);
  CHECK(dist_broadcast(d, msg, sizeof msg, 1, "broadcast") == 0 && !strcmp(msg, "root is 1"), "bcast '%s'", msg);
  int all[8] = {0}, mine = 40 + rank;
  CHECK(dist_allgather(d, &mine, all, sizeof mine, "gather") == 0, "%s", dist_error(d));
  for (int r = 0; r < world; r++) CHECK(all[r] == 40 + r, "allgather[%d] = %d", r, all[r]);
  CHECK(dist_barrier(d, "barrier") == 0, "%s", dist_error(d));
  CHECK(dist_any(d, rank == 0, "any") == 1, "any");
  float slices[20];
  for (int i = 0; i < 20; i++) slices[i] = (float)(rank + i);
  DistRange rg[2] = {{2, 3}, {10, 5}};
  CHECK(dist_allreduce_ranges_f32(d, slices, rg, 2, DIST_SUM, "host slices") == 0, "%s", dist_error(d));
  for (int i = 0; i < 20; i++) {
    int in = (i >= 2 && i < 5) || (i >= 10 && i < 15);
    float want = in ? (float)(world * i + world * (world - 1) / 2) : (float)(rank + i);
    CHECK(slices[i] == want, "rank %d: host slice value %d = %g, want %g", rank, i, slices[i], want);
  }
}

// The gradient buckets' path: device slices averaged in place, then a wait.
static void device_allreduce(Dist *d, int rank, int world) {
  float *g = malloc(64 * sizeof *g);  // "device" memory of the mock
  for (int i = 0; i < 64; i++) g[i] = (float)(rank * 100 + i);
  DistRange rg[3] = {{0, 8}, {16, 16}, {40, 4}};
  long long seq = dist_seq(d);
  CHECK(dist_nccl_allreduce_device(d, g, rg, 3, DIST_MEAN, NULL, "gradient bucket") == 0, "%s", dist_error(d));
  CHECK(dist_seq(d) == seq + 1, "a bucket is one collective");
  CHECK(dist_nccl_wait(d, "gradients") == 0, "%s", dist_error(d));
  for (int i = 0; i < 64; i++) {
    int in = i < 8 || (i >= 16 && i < 32) || (i >= 40 && i < 44);
    float sum = 0;
    for (int r = 0; r < world; r++) sum += (float)(r * 100 + i);
    float want = in ? sum / (float)world : (float)(rank * 100 + i);
    CHECK(g[i] == want, "rank %d: device value %d = %g, want %g", rank, i, g[i], want);
  }
  free(g);
}

static void *collectives_rank(void *arg) {
  Rank *r = arg;
  Dist *d = open_rank(r, NULL);
  CHECK(d && r->attached, "rank %d: %s", r->rank, r->err);
  if (!d || !r->attached) return NULL;
  CHECK(dist_kind(d) == DIST_NCCL && strstr(dist_name(d), "nccl 2.21.5 over the local launcher"),
        "name '%s'", dist_name(d));
  host_collectives(d, r->rank, r->world);
  device_allreduce(d, r->rank, r->world);
  dist_close(d);
  return NULL;
}

static void test_collectives(int world) {
  NcclMockConfig c = {world, 0, -1, 0, 0, 0};
  nccl_mock_reset(&c);
  Rank rk[8];
  for (int i = 0; i < world; i++) rk[i] = (Rank){i, world, 30, 1, 0, "", 0};
  run_threads(rk, world, collectives_rank);
  NcclMockStats s = nccl_mock_stats();
  CHECK(s.inits == world && s.destroys == world && s.id_mismatch == 0, "inits %d destroys %d mismatch %d",
        s.inits, s.destroys, s.id_mismatch);
  CHECK(s.aborts[0] == 0, "an abort in a clean run");
  printf("collectives on %d ranks: %lld NCCL operations\n", world, s.collectives);
}

// ---------------------------------------------------------------- refusals

static void *attach_only(void *arg) {
  Rank *r = arg;
  Dist *d = open_rank(r, NULL);
  dist_close(d);
  return NULL;
}

static void test_refusals(void) {
  NcclMockConfig c = {2, 20903, -1, 0, 0, 0};
  nccl_mock_reset(&c);
  Rank rk[2] = {{0, 2, 5, 1, 0, "", 0}, {1, 2, 5, 1, 0, "", 0}};
  run_threads(rk, 2, attach_only);
  CHECK(!rk[0].attached && strstr(rk[0].err, "NCCL 2.9: 2.10 or later is needed"), "old NCCL: %s", rk[0].err);
  c.version = 0;
  nccl_mock_reset(&c);
  Rank one = {0, 2, 5, 0, 0, "", 0};
  attach_only(&one);
  CHECK(!one.attached && strstr(one.err, "without an NCCL unique id"), "no id: %s", one.err);
  // The real library: not installed here, or pointed at a file that is not it.
  setenv("NAOC_NCCL_LIB", "/nonexistent/libnccl.so.2", 1);
  NcclApi api;
  CudaLib lib;
  char err[2000];
  CHECK(nccl_api_load(&api, &lib, err, sizeof err) != 0 && strstr(err, "NAOC_NCCL_LIB"), "load: %s", err);
  unsetenv("NAOC_NCCL_LIB");
}

// ---------------------------------------------------------------- faults

static void *hang_rank(void *arg) {
  Rank *r = arg;
  Dist *d = open_rank(r, NULL);
  CHECK(d && r->attached, "%s", r->err);
  if (!d || !r->attached) return NULL;
  if (r->rank == 0) {  // rank 1 never reaches the all-reduce
    float *g = calloc(16, sizeof *g);
    DistRange rg = {0, 16};
    double t0 = now();
    CHECK(dist_nccl_allreduce_device(d, g, &rg, 1, DIST_MEAN, NULL, "gradient all-reduce") == 0, "%s", dist_error(d));
    int rc = dist_nccl_wait(d, "gradient all-reduce");
    double t = now() - t0;
    CHECK(rc != 0 && strstr(dist_error(d), "rank 0: gradient all-reduce (collective #1): did not complete within") &&
              strstr(dist_error(d), "the NCCL communicator was aborted"),
          "hang: %s", dist_error(d));
    CHECK(t >= 0.4 && t < 5, "the wait gave up after %.2f s (timeout 0.5 s)", t);
    CHECK(dist_barrier(d, "after the failure") != 0, "a failed communicator went on");
    free(g);
  }
  dist_close(d);
  return NULL;
}

static void *async_rank(void *arg) {
  Rank *r = arg;
  Dist *d = open_rank(r, NULL);
  CHECK(d && r->attached, "%s", r->err);
  if (!d || !r->attached) return NULL;
  float g[4] = {1, 2, 3, 4};
  DistRange rg = {0, 4};
  dist_nccl_allreduce_device(d, g, &rg, 1, DIST_SUM, NULL, "gradient all-reduce");
  int rc = dist_nccl_wait(d, "gradient all-reduce");
  if (r->rank == 0)
    CHECK(rc != 0 && strstr(dist_error(d), "asynchronous error: an NCCL operation failed: remote process "
                                           "exited or there was a network error (6): mock: injected"),
          "async: %s", dist_error(d));
  else
    CHECK(rc == 0, "rank 1: %s", dist_error(d));
  dist_close(d);
  return NULL;
}

static int fired;
static char fired_msg[700];
static void on_init_timeout(void *user, const char *msg) {
  (void)user;
  fired++;
  snprintf(fired_msg, sizeof fired_msg, "%s", msg);
  nccl_mock_release_init();  // a test cannot exit: let the blocked init fail
}

static void test_faults(void) {
  NcclMockConfig c = {2, 0, -1, 0, 0, 0};
  nccl_mock_reset(&c);
  Rank rk[2] = {{0, 2, 0.5, 1, 0, "", 0}, {1, 2, 0.5, 1, 0, "", 0}};
  run_threads(rk, 2, hang_rank);
  CHECK(nccl_mock_stats().aborts[0] == 1 && nccl_mock_stats().aborts[1] == 0, "aborts %d %d",
        nccl_mock_stats().aborts[0], nccl_mock_stats().aborts[1]);

  c.async_error_rank = 0, c.async_error_after = 1;
  nccl_mock_reset(&c);
  rk[0].timeout = rk[1].timeout = 5;
  run_threads(rk, 2, async_rank);
  CHECK(nccl_mock_stats().aborts[0] == 1, "no abort after an asynchronous error");

  // Rank 1 never calls ncclCommInitRank: the watchdog fires after 0.3 s.
  c.async_error_rank = -1;
  nccl_mock_reset(&c);
  Rank lone = {0, 2, 0.3, 1, 0, "", 0};
  DistNcclOptions no = {nccl_mock_api(), on_init_timeout, NULL};
  double t0 = now();
  Dist *d = open_rank(&lone, &no);
  double t = now() - t0;
  CHECK(fired == 1 && strstr(fired_msg, "rank 0: NCCL initialisation (ncclCommInitRank, 2 ranks) did not "
                                        "complete within 0.3 s: a rank did not join"),
        "watchdog: %d '%s'", fired, fired_msg);
  CHECK(!lone.attached && strstr(lone.err, "ncclCommInitRank failed: unhandled system error"), "%s", lone.err);
  CHECK(t < 5, "init gave up after %.2f s", t);
  dist_close(d);
}

// The real library where it is installed (the CUDA image, this project's CI
// machine): the table loads, the result codes mean what nccl.h says they
// mean (the values dist_nccl.h mirrors), and the launcher's unique id is made
// without a GPU.
static void test_real_library(void) {
  NcclApi api;
  CudaLib lib;
  char err[2000];
  if (nccl_api_load(&api, &lib, err, sizeof err) != 0) {
    printf("no libnccl here, skipping its checks: %s\n", err);
    return;
  }
  int v = 0;
  CHECK(api.get_version(&v) == NCCLAPI_SUCCESS && v >= NCCLAPI_MIN_VERSION, "%s: version %d", api.name, v);
  CHECK(strstr(api.get_error_string(NCCLAPI_REMOTE_ERROR), "remote"), "code 6: %s",
        api.get_error_string(NCCLAPI_REMOTE_ERROR));
  CHECK(strstr(api.get_error_string(NCCLAPI_IN_PROGRESS), "in progress"), "code 7: %s",
        api.get_error_string(NCCLAPI_IN_PROGRESS));
  CHECK(strstr(api.get_error_string(NCCLAPI_INVALID_ARGUMENT), "invalid argument"), "code 4");
  CHECK(!strcmp(api.get_error_string(NCCLAPI_SUCCESS), "no error"), "code 0");
  unsigned char a[DIST_NCCL_ID_BYTES], b[DIST_NCCL_ID_BYTES];
  CHECK(dist_nccl_unique_id(a, err, sizeof err) == 0 && dist_nccl_unique_id(b, err, sizeof err) == 0,
        "unique id: %s", err);
  CHECK(memcmp(a, b, sizeof a) != 0, "two unique ids are equal");
  printf("%s: NCCL %d.%d.%d, unique ids made\n", api.name, v / 10000, v / 100 % 100, v % 100);
  cuda_lib_close(&lib);
}

int main(void) {
  test_real_library();
  test_collectives(2);
  test_collectives(3);
  test_refusals();
  test_faults();
  printf("test_dist_nccl: %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
