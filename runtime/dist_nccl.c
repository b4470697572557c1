// runtime/dist_nccl.c — the NCCL transport (dist_nccl.h): the function table,
// attaching to a Dist (unique id, init under a watchdog), device all-reduces,
// the polled wait with asynchronous error checks and abort, and the host
// collectives (over MPI when there is MPI, else staged through the device).
//
// Invariants: after attach, d->ops is nccl_ops and d->host_ops the ops it
// replaced (their state, MPI's, stays in d->impl); every NCCL call's result is
// checked and reported as "CALL failed: NCCL's string (code): last error".
#include "runtime/dist_nccl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/dist_impl.h"

typedef struct {
  const NcclApi *api;
  NcclApi own;          // the table when loaded here
  CudaLib lib;
  NcclComm comm;
  DistDevice dev;
  void *stage;          // device staging buffer of the host collectives
  size_t stage_bytes;
  int version;
  int aborted;
} NcclState;

// ---------------------------------------------------------------- the table

static const char *const nccl_names[] = {"libnccl.so.2", NULL};
static const CudaLibSpec nccl_spec = {"NCCL 2 (libnccl)", "NAOC_NCCL_LIB", nccl_names, NULL, 1, 0, 1};

#define SYM(field, name)                                                                  \
  do {                                                                                    \
    *(void **)(&api->field) = cuda_lib_sym(lib, name);                                   \
    if (!api->field && required) {                                                        \
      snprintf(err, errlen, "%s has no symbol %s (NCCL 2.10 or later is needed)", lib->path, name); \
      cuda_lib_close(lib);                                                                \
      return -1;                                                                          \
    }                                                                                     \
  } while (0)

int nccl_api_load(NcclApi *api, CudaLib *lib, char *err, size_t errlen) {
  memset(api, 0, sizeof *api);
  if (cuda_lib_open(&nccl_spec, lib, err, errlen) != 0) return -1;
  api->name = lib->path;
  int required = 1;
  SYM(get_version, "ncclGetVersion");
  SYM(get_unique_id, "ncclGetUniqueId");
  SYM(comm_init_rank, "ncclCommInitRank");
  SYM(comm_destroy, "ncclCommDestroy");
  SYM(comm_abort, "ncclCommAbort");
  SYM(comm_get_async_error, "ncclCommGetAsyncError");
  SYM(all_reduce, "ncclAllReduce");
  SYM(broadcast, "ncclBroadcast");
  SYM(all_gather, "ncclAllGather");
  SYM(group_start, "ncclGroupStart");
  SYM(group_end, "ncclGroupEnd");
  SYM(get_error_string, "ncclGetErrorString");
  required = 0;
  SYM(get_last_error, "ncclGetLastError");
  return 0;
}
#undef SYM

// "CALL failed: string (code)[: last error]" into buf.
static void nccl_describe(const NcclApi *api, NcclComm comm, NcclResult r, const char *call,
                          char *buf, size_t len) {
  const char *s = api->get_error_string ? api->get_error_string(r) : NULL;
  const char *last = api->get_last_error ? api->get_last_error(comm) : NULL;
  snprintf(buf, len, "%s failed: %s (%d)%s%s", call, s ? s : "unknown NCCL error", r,
           last && *last ? ": " : "", last && *last ? last : "");
}

static int check_version(const NcclApi *api, int *version, char *err, size_t errlen) {
  NcclResult r = api->get_version(version);
  if (r != NCCLAPI_SUCCESS) {
    nccl_describe(api, NULL, r, "ncclGetVersion", err, errlen);
    return -1;
  }
  if (*version < NCCLAPI_MIN_VERSION) {
    // NCCL_VERSION: X*1000 + Y*100 + Z up to 2.8, X*10000 + Y*100 + Z from 2.9
    int old = *version < 20900;
    snprintf(err, errlen, "%s is NCCL %d.%d: 2.10 or later is needed (ncclAvg)", api->name,
             old ? *version / 1000 : *version / 10000, old ? *version / 100 % 10 : *version / 100 % 100);
    return -1;
  }
  return 0;
}

int dist_nccl_unique_id(unsigned char id[DIST_NCCL_ID_BYTES], char *err, size_t errlen) {
  // The library stays open: ncclGetUniqueId started its bootstrap root in this
  // process, and the children join it.
  static NcclApi api;
  static CudaLib lib;
  static int loaded;
  int version;
  if (!loaded && nccl_api_load(&api, &lib, err, errlen) != 0) return -1;
  loaded = 1;
  if (check_version(&api, &version, err, errlen) != 0) return -1;
  NcclUniqueId u;
  NcclResult r = api.get_unique_id(&u);
  if (r != NCCLAPI_SUCCESS) {
    nccl_describe(&api, NULL, r, "ncclGetUniqueId", err, errlen);
    return -1;
  }
  memcpy(id, u.internal, DIST_NCCL_ID_BYTES);
  return 0;
}

// ---------------------------------------------------------------- init watchdog

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  double timeout;
  void (*fire)(void *user, const char *msg);
  void *user;
  char msg[600];
} Watchdog;

static void default_fire(void *user, const char *msg) {
  (void)user;
  fprintf(stderr, "nao: %s\n", msg);
  fflush(stderr);
  _exit(70);
}

static void *watchdog_main(void *arg) {
  Watchdog *w = arg;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (time_t)w->timeout;
  until.tv_nsec += (long)((w->timeout - (double)(time_t)w->timeout) * 1e9);
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  pthread_mutex_lock(&w->mu);
  int rc = 0;
  while (!w->done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&w->cv, &w->mu, &until);
  int fire = !w->done;
  pthread_mutex_unlock(&w->mu);
  if (fire) w->fire(w->user, w->msg);
  return NULL;
}

// ncclCommInitRank with the watchdog. Returns its result.
static NcclResult init_rank(Dist *d, NcclState *s, const NcclUniqueId *id,
                            const DistNcclOptions *o) {
  Watchdog w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  w.timeout = d->timeout;
  w.fire = o && o->init_timeout ? o->init_timeout : default_fire;
  w.user = o ? o->init_timeout_user : NULL;
  snprintf(w.msg, sizeof w.msg,
           "rank %d: NCCL initialisation (ncclCommInitRank, %d ranks) did not complete within %.3g s: "
           "a rank did not join (%s)",
           d->rank, d->world, d->timeout,
           d->launch == DIST_LAUNCH_LOCAL ? "nao-train --gpus names a rank that died"
                                          : "mpirun names a rank that died; between nodes check NCCL_SOCKET_IFNAME");
  pthread_t th;
  int have = pthread_create(&th, NULL, watchdog_main, &w) == 0;
  NcclResult r = s->api->comm_init_rank(&s->comm, d->world, *id, d->rank);
  pthread_mutex_lock(&w.mu);
  w.done = 1;
  pthread_cond_signal(&w.cv);
  pthread_mutex_unlock(&w.mu);
  if (have) pthread_join(th, NULL);
  pthread_cond_destroy(&w.cv);
  pthread_mutex_destroy(&w.mu);
  return r;
}

// ---------------------------------------------------------------- waiting

static int nccl_fail(Dist *d, NcclState *s, NcclResult r, const char *call) {
  char msg[600];
  nccl_describe(s->api, s->comm, r, call, msg, sizeof msg);
  return dist_fail(d, "%s", msg);
}

static void abort_comm(NcclState *s) {
  if (s->aborted || !s->comm) return;
  s->aborted = 1;
  s->api->comm_abort(s->comm);
}

static int poll_stream(Dist *d, void *ctx) {
  NcclState *s = ctx;
  NcclResult async = NCCLAPI_SUCCESS;
  NcclResult r = s->api->comm_get_async_error(s->comm, &async);
  if (r != NCCLAPI_SUCCESS) return nccl_fail(d, s, r, "ncclCommGetAsyncError"), -1;
  if (async != NCCLAPI_SUCCESS && async != NCCLAPI_IN_PROGRESS) {
    char msg[600];
    nccl_describe(s->api, s->comm, async, "an NCCL operation", msg, sizeof msg);
    dist_fail(d, "asynchronous error: %s", msg);
    return -1;
  }
  char why[400] = "";
  int q = s->dev.query(s->dev.user, why, sizeof why);
  if (q < 0) return dist_fail(d, "the device stream failed: %s", why), -1;
  return q > 0;
}

// Under MPI, after an NCCL timeout: which ranks do not even reach an MPI
// barrier now (dist_mpi.c's arrivals name them)? Appended to the message.
static void probe_missing(Dist *d) {
  if (!d->host_ops || !d->impl) return;
  char keep[sizeof d->err];
  memcpy(keep, d->err, sizeof keep);
  double t = d->timeout;
  d->timeout = t < 30 ? t : 30;
  d->failed = 0;
  d->seq++;
  d->what = "probe of the ranks after an NCCL timeout";
  int rc = d->host_ops->barrier(d);
  char probe[sizeof d->err];
  memcpy(probe, d->err, sizeof probe);
  memcpy(d->err, keep, sizeof keep);
  size_t n = strlen(d->err);
  const char *who = strstr(probe, ": rank");
  if (rc != 0 && who)
    snprintf(d->err + n, sizeof d->err - n, "; an MPI probe after it%s", who);
  else if (rc == 0)
    snprintf(d->err + n, sizeof d->err - n, "; every rank answered an MPI probe after it (an NCCL or network fault?)");
  d->timeout = t;
  d->failed = 1;
}

static int wait_stream(Dist *d, NcclState *s) {
  if (dist_wait(d, poll_stream, NULL, s) == 0) return 0;
  abort_comm(s);
  size_t n = strlen(d->err);
  snprintf(d->err + n, sizeof d->err - n, "; the NCCL communicator was aborted");
  probe_missing(d);
  return -1;
}

int dist_nccl_wait(Dist *d, const char *what) {
  NcclState *s = d->nccl;
  if (!s) return dist_fail(d, "NCCL is not attached");
  if (d->failed) return -1;
  d->what = what;
  return wait_stream(d, s);
}

// ---------------------------------------------------------------- device collectives

int dist_nccl_allreduce_device(Dist *d, float *dbase, const DistRange *r, int n, DistOp op,
                               void *stream, const char *what) {
  NcclState *s = d->nccl;
  if (dist_begin(d, what) != 0) return -1;
  if (!s) return dist_fail(d, "NCCL is not attached");
  if (op == DIST_MAX) return dist_fail(d, "MAX is only for f64 values");
  int nop = op == DIST_MEAN ? NCCLAPI_AVG : NCCLAPI_SUM;
  NcclResult rc = s->api->group_start();
  if (rc != NCCLAPI_SUCCESS) return nccl_fail(d, s, rc, "ncclGroupStart");
  for (int k = 0; k < n; k++) {
    float *p = dbase + r[k].offset;
    rc = s->api->all_reduce(p, p, r[k].count, NCCLAPI_FLOAT32, nop, s->comm,
                            stream ? stream : s->dev.stream);
    if (rc != NCCLAPI_SUCCESS) {
      s->api->group_end();
      return nccl_fail(d, s, rc, "ncclAllReduce");
    }
  }
  rc = s->api->group_end();
  if (rc != NCCLAPI_SUCCESS) return nccl_fail(d, s, rc, "ncclGroupEnd");
  return 0;
}

// ---------------------------------------------------------------- host collectives

static int has_mpi(const Dist *d) { return d->host_ops && d->impl; }

static int stage(Dist *d, NcclState *s, size_t bytes) {
  if (bytes <= s->stage_bytes) return 0;
  if (s->stage) s->dev.free(s->dev.user, s->stage);
  s->stage = NULL, s->stage_bytes = 0;
  size_t want = bytes < 4096 ? 4096 : bytes;
  char why[400];
  if (s->dev.alloc(s->dev.user, want, &s->stage, why, sizeof why) != 0)
    return dist_fail(d, "the staging buffer (%zu bytes): %s", want, why);
  s->stage_bytes = want;
  return 0;
}

static int copy(Dist *d, NcclState *s, int to_dev, void *dst, const void *src, size_t bytes) {
  char why[400];
  int rc = to_dev ? s->dev.h2d(s->dev.user, dst, src, bytes, why, sizeof why)
                  : s->dev.d2h(s->dev.user, dst, src, bytes, why, sizeof why);
  return rc == 0 ? 0 : dist_fail(d, "copy %s the device: %s", to_dev ? "to" : "from", why);
}

static int staged_allreduce(Dist *d, void *buf, size_t n, int is_f64, DistOp op) {
  NcclState *s = d->nccl;
  size_t bytes = n * (is_f64 ? sizeof(double) : sizeof(float));
  if (n == 0) return 0;
  if (stage(d, s, bytes) || copy(d, s, 1, s->stage, buf, bytes)) return -1;
  NcclResult r = s->api->all_reduce(s->stage, s->stage, n, is_f64 ? NCCLAPI_FLOAT64 : NCCLAPI_FLOAT32,
                                    op == DIST_MAX ? NCCLAPI_MAX : NCCLAPI_SUM, s->comm, s->dev.stream);
  if (r != NCCLAPI_SUCCESS) return nccl_fail(d, s, r, "ncclAllReduce");
  if (copy(d, s, 0, buf, s->stage, bytes)) return -1;
  return wait_stream(d, s);
}

static int nccl_allreduce(Dist *d, void *buf, size_t n, int is_f64, DistOp op) {
  if (has_mpi(d)) return d->host_ops->allreduce(d, buf, n, is_f64, op);
  return staged_allreduce(d, buf, n, is_f64, op);
}

// Host slices: packed into the staging buffer, reduced, unpacked.
static int nccl_allreduce_ranges(Dist *d, float *base, const DistRange *rg, int n) {
  if (has_mpi(d)) return d->host_ops->allreduce_ranges(d, base, rg, n);
  size_t total = 0;
  for (int k = 0; k < n; k++) total += rg[k].count;
  if (total == 0) return 0;
  float *pack = xmalloc(total * sizeof *pack);
  size_t at = 0;
  for (int k = 0; k < n; k++) memcpy(pack + at, base + rg[k].offset, rg[k].count * sizeof *pack), at += rg[k].count;
  int rc = staged_allreduce(d, pack, total, 0, DIST_SUM);
  at = 0;
  for (int k = 0; rc == 0 && k < n; k++)
    memcpy(base + rg[k].offset, pack + at, rg[k].count * sizeof *pack), at += rg[k].count;
  free(pack);
  return rc;
}

static int nccl_broadcast(Dist *d, void *buf, size_t bytes, int root) {
  if (has_mpi(d)) return d->host_ops->broadcast(d, buf, bytes, root);
  NcclState *s = d->nccl;
  if (bytes == 0) return 0;
  if (stage(d, s, bytes) || copy(d, s, 1, s->stage, buf, bytes)) return -1;
  NcclResult r = s->api->broadcast(s->stage, s->stage, bytes, NCCLAPI_UINT8, root, s->comm, s->dev.stream);
  if (r != NCCLAPI_SUCCESS) return nccl_fail(d, s, r, "ncclBroadcast");
  if (copy(d, s, 0, buf, s->stage, bytes)) return -1;
  return wait_stream(d, s);
}

static int nccl_allgather(Dist *d, const void *mine, void *all, size_t bytes) {
  if (has_mpi(d)) return d->host_ops->allgather(d, mine, all, bytes);
  NcclState *s = d->nccl;
  size_t total = bytes * (size_t)d->world;
  if (bytes == 0) return 0;
  char *slot;
  if (stage(d, s, total)) return -1;
  slot = (char *)s->stage + bytes * (size_t)d->rank;  // in place: send = recv + rank * count
  if (copy(d, s, 1, slot, mine, bytes)) return -1;
  NcclResult r = s->api->all_gather(slot, s->stage, bytes, NCCLAPI_UINT8, s->comm, s->dev.stream);
  if (r != NCCLAPI_SUCCESS) return nccl_fail(d, s, r, "ncclAllGather");
  if (copy(d, s, 0, all, s->stage, total)) return -1;
  return wait_stream(d, s);
}

static int nccl_barrier(Dist *d) {
  if (has_mpi(d)) return d->host_ops->barrier(d);
  float one = 1;
  return staged_allreduce(d, &one, 1, 0, DIST_SUM);
}

static void nccl_abort(Dist *d, int code) {
  NcclState *s = d->nccl;
  if (s) abort_comm(s);
  d->host_ops->abort(d, code);  // MPI_Abort, or _exit under the local launcher
  _exit(code);
}

void dist_nccl_detach(Dist *d) {
  NcclState *s = d->nccl;
  if (!s) return;
  if (!d->failed) {
    // Everything enqueued is done before the communicator goes.
    d->what = "closing NCCL";
    if (wait_stream(d, s) != 0) fprintf(stderr, "nao: warning: %s\n", d->err);
  }
  if (s->stage) s->dev.free(s->dev.user, s->stage);
  if (s->comm) {
    if (d->failed) abort_comm(s);
    else s->api->comm_destroy(s->comm);
  }
  if (s->api == &s->own) cuda_lib_close(&s->lib);
  free(s);
  d->nccl = NULL;
  d->ops = d->host_ops;
  d->host_ops = NULL;
  d->kind = d->impl ? DIST_MPI : DIST_NCCL;
}

static void nccl_close(Dist *d) {
  dist_nccl_detach(d);  // d->ops are the host ops again
  d->ops->close(d);
}

static const DistImplOps nccl_ops = {"nccl", nccl_allreduce, nccl_allreduce_ranges, nccl_broadcast,
                                     nccl_allgather, nccl_barrier, nccl_abort, nccl_close};

// ---------------------------------------------------------------- attach

// The unique id: the local launcher's, or rank 0's sent over MPI.
static int unique_id(Dist *d, NcclState *s, NcclUniqueId *id, char *err, size_t errlen) {
  if (d->launch == DIST_LAUNCH_LOCAL) {
    if (!d->has_nccl_id) {
      snprintf(err, errlen, "started by nao-train --gpus without an NCCL unique id (NAO_DIST_NCCL_ID)");
      return -1;
    }
    memcpy(id->internal, d->nccl_id, sizeof id->internal);
    return 0;
  }
  memset(id, 0, sizeof *id);
  NcclResult r = d->rank == 0 ? s->api->get_unique_id(id) : NCCLAPI_SUCCESS;
  double ok = r == NCCLAPI_SUCCESS ? 0 : 1;
  // Rank 0's failure reaches everyone before they wait for its id.
  if (dist_allreduce_f64(d, &ok, 1, DIST_MAX, "NCCL unique id made by rank 0") != 0 ||
      (ok == 0 && dist_broadcast(d, id, sizeof *id, 0, "NCCL unique id from rank 0") != 0)) {
    snprintf(err, errlen, "%s", d->err);
    return -1;
  }
  if (ok != 0) {
    if (d->rank == 0) nccl_describe(s->api, NULL, r, "ncclGetUniqueId", err, errlen);
    else snprintf(err, errlen, "rank 0 could not make the NCCL unique id");
    return -1;
  }
  return 0;
}

int dist_nccl_attached(const Dist *d) { return d->nccl != NULL; }

int dist_nccl_attach(Dist *d, const DistDevice *dev, const DistNcclOptions *o, char *err,
                     size_t errlen) {
  if (d->nccl) return 0;
  if (d->world < 2 || (d->launch != DIST_LAUNCH_LOCAL && d->kind != DIST_MPI)) {
    snprintf(err, errlen, "NCCL attaches to a communicator of several processes (this one: %s, %d)",
             d->name, d->world);
    return -1;
  }
  NcclState *s = xcalloc(1, sizeof *s);
  s->dev = *dev;
  s->api = o && o->api ? o->api : d->nccl_api ? d->nccl_api : &s->own;
  NcclUniqueId id;
  int rc = (s->api == &s->own && nccl_api_load(&s->own, &s->lib, err, errlen) != 0) ||
                   check_version(s->api, &s->version, err, errlen) != 0 ||
                   unique_id(d, s, &id, err, errlen) != 0
               ? -1
               : 0;
  if (rc == 0) {
    NcclResult r = init_rank(d, s, &id, o);
    if (r != NCCLAPI_SUCCESS) {
      nccl_describe(s->api, NULL, r, "ncclCommInitRank", err, errlen);
      rc = -1;
    }
  }
  if (rc != 0) {
    if (s->api == &s->own && s->lib.handle) cuda_lib_close(&s->lib);
    free(s);
    return -1;
  }
  d->host_ops = d->ops;
  d->ops = &nccl_ops;
  d->nccl = s;
  d->kind = DIST_NCCL;
  char host[200];
  snprintf(host, sizeof host, "%.199s", has_mpi(d) ? d->name : "the local launcher");
  snprintf(d->name, sizeof d->name, "nccl %d.%d.%d over %.200s", s->version / 10000,
           s->version / 100 % 100, s->version % 100, host);
  return 0;
}
