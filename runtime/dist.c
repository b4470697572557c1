// runtime/dist.c — the communicator's common part (dist.h): launcher
// detection from the environment, the collectives' wrappers (sequence
// numbers, heartbeats to the local launcher, MEAN), the timed wait every
// implementation polls through, and the single-process implementation.
//
// The local launcher's children (DIST_LAUNCH_LOCAL) get a Dist whose
// collectives fail until the NCCL transport is attached (dist_nccl.h): they
// have no other way to talk.
#include "runtime/dist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/dist_impl.h"

// ---------------------------------------------------------------- environment

static const char *env_get(DistGetenv get, void *user, const char *name) {
  const char *v = get ? get(user, name) : getenv(name);
  return v && *v ? v : NULL;
}

// Parses a non-negative integer variable; -1 when unset. -2 when malformed.
static int env_int(DistGetenv get, void *user, const char *name, long max) {
  const char *v = env_get(get, user, name);
  if (!v) return -1;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < 0 || x > max) return -2;
  return (int)x;
}

const char *dist_launch_name(DistLaunch l) {
  switch (l) {
    case DIST_LAUNCH_NONE: return "none";
    case DIST_LAUNCH_MPIRUN: return "mpirun";
    case DIST_LAUNCH_PMI: return "pmi";
    case DIST_LAUNCH_SLURM: return "srun";
    case DIST_LAUNCH_LOCAL: return "nao-train --gpus";
  }
  return "?";
}

typedef struct {
  const char *rank, *world, *local_rank, *local_world;
} EnvNames;

// Reads one launcher's four variables. Returns 0, or -1 with a message.
static int read_quad(DistGetenv get, void *user, const EnvNames *n, DistEnv *e, char *err,
                     size_t errlen) {
  const int max = 1 << 24;
  e->rank = env_int(get, user, n->rank, max);
  e->world = n->world ? env_int(get, user, n->world, max) : -1;
  e->local_rank = n->local_rank ? env_int(get, user, n->local_rank, max) : -1;
  e->local_world = n->local_world ? env_int(get, user, n->local_world, max) : -1;
  const char *bad = e->rank == -2 ? n->rank : e->world == -2 ? n->world
                  : e->local_rank == -2 ? n->local_rank : e->local_world == -2 ? n->local_world : NULL;
  if (bad) {
    snprintf(err, errlen, "environment: %s='%s' is not a non-negative integer", bad,
             env_get(get, user, bad));
    return -1;
  }
  if (e->world == 0 || (e->world > 0 && e->rank >= e->world)) {
    snprintf(err, errlen, "environment: %s=%d is not a rank of %s=%d", n->rank, e->rank, n->world,
             e->world);
    return -1;
  }
  if (e->local_world > 0 && e->local_rank >= e->local_world) {
    snprintf(err, errlen, "environment: %s=%d is not a rank of %s=%d", n->local_rank,
             e->local_rank, n->local_world, e->local_world);
    return -1;
  }
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The local launcher's variables (launch.h sets them).
static int detect_local(DistGetenv get, void *user, DistEnv *e, char *err, size_t errlen) {
  static const EnvNames n = {"NAO_DIST_RANK", "NAO_DIST_WORLD", "NAO_DIST_LOCAL_RANK",
                             "NAO_DIST_LOCAL_WORLD"};
  if (read_quad(get, user, &n, e, err, errlen) != 0) return -1;
  if (e->rank < 0 || e->world < 1) {
    snprintf(err, errlen, "environment: NAO_DIST_RANK and NAO_DIST_WORLD go together (set by nao-train --gpus)");
    return -1;
  }
  if (e->local_rank < 0) e->local_rank = e->rank;
  if (e->local_world < 0) e->local_world = e->world;
  const char *id = env_get(get, user, "NAO_DIST_NCCL_ID");
  if (id) {
    if (strlen(id) != 2 * DIST_NCCL_ID_BYTES) {
      snprintf(err, errlen, "environment: NAO_DIST_NCCL_ID has %zu characters, not %d hex digits",
               strlen(id), 2 * DIST_NCCL_ID_BYTES);
      return -1;
    }
    for (int i = 0; i < DIST_NCCL_ID_BYTES; i++) {
      int hi = hexval(id[2 * i]), lo = hexval(id[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        snprintf(err, errlen, "environment: NAO_DIST_NCCL_ID is not hexadecimal (character %d)", 2 * i + (hi >= 0));
        return -1;
      }
      e->nccl_id[i] = (unsigned char)(hi << 4 | lo);
    }
    e->has_nccl_id = 1;
  }
  int fd = env_int(get, user, "NAO_DIST_HEARTBEAT_FD", 1 << 20);
  if (fd == -2) {
    snprintf(err, errlen, "environment: NAO_DIST_HEARTBEAT_FD is not a file descriptor number");
    return -1;
  }
  e->heartbeat_fd = fd;
  return 0;
}

static int detect_timeout(DistGetenv get, void *user, DistEnv *e, char *err, size_t errlen) {
  const char *v = env_get(get, user, "NAO_DIST_TIMEOUT");
  if (!v) return 0;
  char *end;
  double t = strtod(v, &end);
  if (end == v || *end || !(t > 0 && t < 1e7)) {
    snprintf(err, errlen, "environment: NAO_DIST_TIMEOUT='%s' is not a number of seconds > 0", v);
    return -1;
  }
  e->timeout = t;
  return 0;
}

int dist_env_detect(DistGetenv get, void *user, DistEnv *e, char *err, size_t errlen) {
  memset(e, 0, sizeof *e);
  e->rank = e->local_rank = 0;
  e->world = e->local_world = 1;
  e->heartbeat_fd = -1;
  if (detect_timeout(get, user, e, err, errlen) != 0) return -1;
  int local = env_get(get, user, "NAO_DIST_RANK") || env_get(get, user, "NAO_DIST_WORLD");
  int ompi = env_get(get, user, "OMPI_COMM_WORLD_SIZE") != NULL;
  int pmi = env_get(get, user, "PMIX_RANK") || env_get(get, user, "PMI_RANK");
  int slurm_tasks = env_int(get, user, "SLURM_STEP_NUM_TASKS", 1 << 24);
  if (local && (ompi || pmi)) {
    snprintf(err, errlen, "environment: both nao-train --gpus (NAO_DIST_RANK) and an MPI launcher (%s) started this process",
             ompi ? "OMPI_COMM_WORLD_SIZE" : "PMI/PMIx variables");
    return -1;
  }
  if (local) {
    e->launch = DIST_LAUNCH_LOCAL;
    return detect_local(get, user, e, err, errlen);
  }
  if (ompi) {
    static const EnvNames n = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                               "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"};
    e->launch = DIST_LAUNCH_MPIRUN;
    return read_quad(get, user, &n, e, err, errlen);
  }
  if (pmi) {
    // PMIx (srun --mpi=pmix, OpenMPI's prterun) or PMI-1/2 (hydra, srun --mpi=pmi2):
    // the world may be unknown here; MPI says it at dist_open.
    static const EnvNames x = {"PMIX_RANK", NULL, NULL, NULL};
    static const EnvNames p = {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"};
    e->launch = DIST_LAUNCH_PMI;
    int rc = read_quad(get, user, env_get(get, user, "PMIX_RANK") ? &x : &p, e, err, errlen);
    if (rc == 0 && e->world < 0) e->world = env_int(get, user, "SLURM_STEP_NUM_TASKS", 1 << 24);
    if (rc == 0 && e->local_rank < 0) e->local_rank = env_int(get, user, "SLURM_LOCALID", 1 << 24);
    return rc;
  }
  if (slurm_tasks > 1) {
    e->launch = DIST_LAUNCH_SLURM;
    snprintf(err, errlen,
             "srun started %d tasks without an MPI process manager (no PMI/PMIx variables): "
             "run `srun --mpi=pmix nao-train ...` (see `srun --mpi=list`), or mpirun",
             slurm_tasks);
    return -1;
  }
  return 0;
}

// ---------------------------------------------------------------- common

double dist_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dist_options_default(DistOptions *o) {
  memset(o, 0, sizeof *o);
  o->timeout = 600;
  o->stop_grace = 10;
}

int dist_fail(Dist *d, const char *fmt, ...) {
  char msg[700];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(d->err, sizeof d->err, "rank %d: %s (collective #%lld): %s", d->rank,
           d->what ? d->what : "collective", d->seq, msg);
  d->failed = 1;
  return -1;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

int dist_wait(Dist *d, DistPollFn poll, DistMissingFn missing, void *ctx) {
  double start = dist_now(), deadline = start + d->timeout, stop_deadline = -1;
  double nap = 0;
  for (long it = 0;; it++) {
    int r = poll(d, ctx);
    if (r != 0) {
      if (r < 0) d->failed = 1;
      return r > 0 ? 0 : -1;
    }
    double now = dist_now();
    if (d->stop && *d->stop && stop_deadline < 0) {
      stop_deadline = now + d->stop_grace;
      if (stop_deadline < deadline) deadline = stop_deadline;
    }
    if (now >= deadline) {
      char who[400] = "";
      if (missing) missing(d, ctx, d->seq, who, sizeof who);
      int stopped = stop_deadline >= 0 && deadline == stop_deadline;
      dist_fail(d, "did not complete within %.3g s%s%s%s", now - start,
                stopped ? " after a stop was requested" : "", who[0] ? ": " : "", who);
      return -1;
    }
    // Spin for the first ~100 us (a peer about to arrive), then sleep in
    // growing naps up to 1 ms.
    if (it < 64) continue;
    nap = nap <= 0 ? 20e-6 : nap * 1.5;
    if (nap > 1e-3) nap = 1e-3;
    sleep_s(nap);
  }
}

// Tells the local launcher that this rank reached collective d->seq.
static void heartbeat(Dist *d) {
  if (d->heartbeat_fd < 0) return;
  long long s = d->seq;
  ssize_t w = write(d->heartbeat_fd, &s, sizeof s);
  (void)w;  // a full pipe (a parent not reading) only loses heartbeats
}

int dist_begin(Dist *d, const char *what) {
  d->seq++;
  d->what = what;
  heartbeat(d);
  return d->failed ? -1 : 0;  // d->err keeps the first failure
}

static int finish(Dist *d, int rc) {
  if (rc != 0) d->failed = 1;
  return rc;
}

// ---------------------------------------------------------------- single process

static int single_allreduce(Dist *d, void *buf, size_t n, int is_f64, DistOp op) {
  (void)d, (void)buf, (void)n, (void)is_f64, (void)op;
  return 0;
}
static int single_allreduce_ranges(Dist *d, float *base, const DistRange *r, int n) {
  (void)d, (void)base, (void)r, (void)n;
  return 0;
}
static int single_broadcast(Dist *d, void *buf, size_t bytes, int root) {
  (void)d, (void)buf, (void)bytes, (void)root;
  return 0;
}
static int single_allgather(Dist *d, const void *mine, void *all, size_t bytes) {
  (void)d;
  if (bytes) memmove(all, mine, bytes);
  return 0;
}
static int single_barrier(Dist *d) {
  (void)d;
  return 0;
}
static void single_abort(Dist *d, int code) {
  (void)d;
  fflush(stdout);
  fflush(stderr);
  _exit(code);
}
static void single_close(Dist *d) { (void)d; }

static const DistImplOps single_ops = {"single", single_allreduce, single_allreduce_ranges, single_broadcast,
                                       single_allgather, single_barrier, single_abort,
                                       single_close};

// ---------------------------------------------------------------- local launch, before NCCL

static int pending(Dist *d) {
  return dist_fail(d, "processes started by nao-train --gpus communicate through NCCL, "
                      "which the cuda backend attaches; nothing is attached yet");
}
static int pending_allreduce(Dist *d, void *buf, size_t n, int is_f64, DistOp op) {
  (void)buf, (void)n, (void)is_f64, (void)op;
  return pending(d);
}
static int pending_allreduce_ranges(Dist *d, float *base, const DistRange *r, int n) {
  (void)base, (void)r, (void)n;
  return pending(d);
}
static int pending_broadcast(Dist *d, void *buf, size_t bytes, int root) {
  (void)buf, (void)bytes, (void)root;
  return pending(d);
}
static int pending_allgather(Dist *d, const void *mine, void *all, size_t bytes) {
  (void)mine, (void)all, (void)bytes;
  return pending(d);
}

static const DistImplOps pending_ops = {"local (no transport yet)", pending_allreduce, pending_allreduce_ranges,
                                        pending_broadcast, pending_allgather, pending,
                                        single_abort, single_close};

// ---------------------------------------------------------------- opening

static Dist *dist_new(void) {
  Dist *d = xcalloc(1, sizeof *d);
  d->ops = &single_ops;
  d->kind = DIST_SINGLE;
  d->world = d->local_world = 1;
  d->heartbeat_fd = -1;
  d->timeout = 600;
  d->stop_grace = 10;
  snprintf(d->name, sizeof d->name, "single");
  return d;
}

Dist *dist_open_single(void) { return dist_new(); }

static void apply_options(Dist *d, const DistEnv *env, const DistOptions *o) {
  DistOptions def;
  dist_options_default(&def);
  if (!o) o = &def;
  d->timeout = o->timeout > 0 ? o->timeout : env->timeout > 0 ? env->timeout : def.timeout;
  d->stop_grace = o->stop_grace > 0 ? o->stop_grace : def.stop_grace;
  if (d->stop_grace > d->timeout) d->stop_grace = d->timeout;
  d->stop = o->stop;
  d->verbose = o->verbose;
  d->nccl_api = o->nccl_api;
}

Dist *dist_open(const DistEnv *env_in, const DistOptions *o, char *err, size_t errlen) {
  DistEnv env;
  if (env_in) env = *env_in;
  else if (dist_env_detect(NULL, NULL, &env, err, errlen) != 0) return NULL;
  Dist *d = dist_new();
  apply_options(d, &env, o);
  d->launch = env.launch;
  switch (env.launch) {
    case DIST_LAUNCH_NONE:
      return d;
    case DIST_LAUNCH_LOCAL:
      d->rank = env.rank, d->world = env.world;
      d->local_rank = env.local_rank, d->local_world = env.local_world;
      d->heartbeat_fd = env.heartbeat_fd;
      d->has_nccl_id = env.has_nccl_id;
      memcpy(d->nccl_id, env.nccl_id, sizeof d->nccl_id);
      if (d->heartbeat_fd >= 0 && fcntl(d->heartbeat_fd, F_SETFL, O_NONBLOCK) != 0) d->heartbeat_fd = -1;
      if (d->world > 1) d->ops = &pending_ops, d->kind = DIST_NCCL;
      snprintf(d->name, sizeof d->name, "%s", d->world > 1 ? "local (nccl pending)" : "single");
      return d;
    case DIST_LAUNCH_MPIRUN:
    case DIST_LAUNCH_PMI:
      if (dist_mpi_open(d, &env, o, err, errlen) != 0) {
        free(d);
        return NULL;
      }
      return d;
    case DIST_LAUNCH_SLURM:
      break;
  }
  snprintf(err, errlen, "launcher %s: not supported", dist_launch_name(env.launch));
  free(d);
  return NULL;
}

void dist_close(Dist *d) {
  if (!d) return;
  d->ops->close(d);  // NCCL's closes the ops it replaced too
  free(d);
}

DistKind dist_kind(const Dist *d) { return d->kind; }
const char *dist_name(const Dist *d) { return d->name; }
DistLaunch dist_launch(const Dist *d) { return d->launch; }
int dist_rank(const Dist *d) { return d->rank; }
int dist_world(const Dist *d) { return d->world; }
int dist_local_rank(const Dist *d) { return d->local_rank; }
int dist_local_world(const Dist *d) { return d->local_world; }
double dist_timeout(const Dist *d) { return d->timeout; }
const char *dist_error(const Dist *d) { return d->err; }
long long dist_seq(const Dist *d) { return d->seq; }

// ---------------------------------------------------------------- collectives

int dist_allreduce_f32(Dist *d, float *buf, size_t n, DistOp op, const char *what) {
  if (dist_begin(d, what) != 0) return -1;
  if (op == DIST_MAX) return dist_fail(d, "MAX is only for f64 values");
  int rc = d->ops->allreduce(d, buf, n, 0, DIST_SUM);
  if (rc == 0 && op == DIST_MEAN && d->world > 1) {
    float s = 1.0f / (float)d->world;
    for (size_t i = 0; i < n; i++) buf[i] *= s;
  }
  return finish(d, rc);
}

int dist_allreduce_f64(Dist *d, double *buf, size_t n, DistOp op, const char *what) {
  if (dist_begin(d, what) != 0) return -1;
  int rc = d->ops->allreduce(d, buf, n, 1, op == DIST_MAX ? DIST_MAX : DIST_SUM);
  if (rc == 0 && op == DIST_MEAN && d->world > 1)
    for (size_t i = 0; i < n; i++) buf[i] /= (double)d->world;
  return finish(d, rc);
}

int dist_allreduce_ranges_f32(Dist *d, float *base, const DistRange *r, int n, DistOp op,
                              const char *what) {
  if (dist_begin(d, what) != 0) return -1;
  if (op == DIST_MAX) return dist_fail(d, "MAX is only for f64 values");
  int rc = d->ops->allreduce_ranges(d, base, r, n);
  if (rc == 0 && op == DIST_MEAN && d->world > 1) {
    float s = 1.0f / (float)d->world;
    for (int k = 0; k < n; k++)
      for (size_t i = 0; i < r[k].count; i++) base[r[k].offset + i] *= s;
  }
  return finish(d, rc);
}

int dist_broadcast(Dist *d, void *buf, size_t bytes, int root, const char *what) {
  if (dist_begin(d, what) != 0) return -1;
  if (root < 0 || root >= d->world) return dist_fail(d, "root %d is not a rank of %d", root, d->world);
  return finish(d, d->ops->broadcast(d, buf, bytes, root));
}

int dist_allgather(Dist *d, const void *mine, void *all, size_t bytes, const char *what) {
  if (dist_begin(d, what) != 0) return -1;
  return finish(d, d->ops->allgather(d, mine, all, bytes));
}

int dist_barrier(Dist *d, const char *what) {
  if (dist_begin(d, what) != 0) return -1;
  return finish(d, d->ops->barrier(d));
}

void dist_abort(Dist *d, int code) {
  fflush(stdout);
  fflush(stderr);
  if (!d) _exit(code);
  d->ops->abort(d, code);
  _exit(code);  // the implementations do not return; this is for the compiler
}

int dist_any(Dist *d, int flag, const char *what) {
  double v = flag ? 1 : 0;
  if (dist_allreduce_f64(d, &v, 1, DIST_MAX, what) != 0) return -1;
  return v > 0;
}

uint64_t dist_hash(const void *data, size_t bytes, uint64_t h) {
  const unsigned char *p = data;
  if (!h) h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

int dist_check_equal(Dist *d, const void *data, size_t bytes, const char *what) {
  uint64_t mine = dist_hash(data, bytes, 0);
  uint64_t *all = xcalloc((size_t)d->world, sizeof *all);
  int rc = dist_allgather(d, &mine, all, sizeof mine, what);
  if (rc == 0) {
    char who[300] = "";
    size_t len = 0;
    int n = 0;
    for (int r = 1; r < d->world; r++) {
      if (all[r] == all[0]) continue;
      if (n++ < 16 && len < sizeof who) len += (size_t)snprintf(who + len, sizeof who - len, "%s%d", n > 1 ? ", " : "", r);
    }
    if (n > 0) {
      snprintf(d->err, sizeof d->err, "%s differs between ranks: rank%s %s%s differ%s from rank 0",
               what, n > 1 ? "s" : "", who, n > 16 ? ", ..." : "", n > 1 ? "" : "s");
      rc = 1;
    }
  }
  free(all);
  return rc;
}
