// runtime/dist_mpi.c — the MPI communicator (dist.h): OpenMPI's libmpi opened
// at run time with dlopen, so nao-train builds and runs where no MPI is
// installed and only a multi-process launch needs it (docs/distributed.md,
// "Why dlopen").
//
// ABI: Open MPI's. Its handles (MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request,
// MPI_Info, MPI_Errhandler) are pointers to objects the library exports
// (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, ...),
// so the predefined ones are found with dlsym and passed as void pointers;
// MPI_IN_PLACE is (void *)1, MPI_STATUS_IGNORE NULL, MPI_THREAD_FUNNELED 1,
// MPI_COMM_TYPE_SHARED 0 (mpi.h of Open MPI 4 and 5). MPICH's handles are
// integers: a library without ompi_mpi_comm_world is refused with a message.
//
// Every collective is nonblocking (MPI_Iallreduce, ...) and polled through
// dist_wait, so a peer that never arrives turns into an error after the
// timeout instead of a hang. To name that peer, every rank tells every other
// that it reached collective #k (an 8-byte MPI_Isend on a duplicate of the
// world communicator, tag ARRIVE) and keeps a receive posted from each peer;
// on a timeout the peers whose last arrival is below k are the ones missing.
// Errors return (MPI_ERRORS_RETURN on our communicators) and are reported with
// MPI_Error_string.
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/dist_impl.h"

typedef void *MpiH;  // an Open MPI handle

enum {
  MPI_OK = 0,
  MPI_THREAD_FUNNELED_ = 1,
  MPI_COMM_TYPE_SHARED_ = 0,
  TAG_ARRIVE = 0x4e41,
  MPI_CHUNK = 1 << 30,  // elements per call (MPI counts are int)
};
#define MPI_IN_PLACE_ ((void *)1)

typedef struct {
  void *lib;
  char path[512];
  int (*initialized)(int *);
  int (*finalized)(int *);
  int (*init_thread)(int *, char ***, int, int *);
  int (*finalize)(void);
  int (*abort)(MpiH, int);
  int (*comm_rank)(MpiH, int *);
  int (*comm_size)(MpiH, int *);
  int (*comm_dup)(MpiH, MpiH *);
  int (*comm_split_type)(MpiH, int, int, MpiH, MpiH *);
  int (*comm_free)(MpiH *);
  int (*comm_set_errhandler)(MpiH, MpiH);
  int (*iallreduce)(const void *, void *, int, MpiH, MpiH, MpiH, MpiH *);
  int (*ibcast)(void *, int, MpiH, int, MpiH, MpiH *);
  int (*iallgather)(const void *, int, MpiH, void *, int, MpiH, MpiH, MpiH *);
  int (*ibarrier)(MpiH, MpiH *);
  int (*isend)(const void *, int, MpiH, int, int, MpiH, MpiH *);
  int (*irecv)(void *, int, MpiH, int, int, MpiH, MpiH *);
  int (*test)(MpiH *, int *, void *);
  int (*cancel)(MpiH *);
  int (*request_free)(MpiH *);
  int (*error_string)(int, char *, int *);
  int (*get_library_version)(char *, int *);
  MpiH comm_world, t_float, t_double, t_byte, op_sum, op_max, info_null, errors_return,
      request_null;
} MpiApi;

typedef struct {
  MpiApi api;
  MpiH comm;            // collectives (a duplicate of MPI_COMM_WORLD)
  MpiH beat;            // arrival messages (another duplicate)
  MpiH *reqs;           // the collective's requests in flight
  int n_reqs, cap_reqs;
  int we_initialized;
  long long *arrived;   // (world) the last collective each peer said it reached
  long long *recv_buf;  // (world) one posted receive per peer
  MpiH *recv_req;
  long long *send_buf;  // (world) the last arrival sent to each peer
  MpiH *send_req;
  double *heard;        // (world) when each peer's last arrival message came (dist_now)
  double last_beat;     // when this rank last repeated its arrival while waiting
} MpiState;

// While a collective waits, each rank repeats its arrival message every
// BEAT_S seconds, so a peer that reached the collective and then stopped (a
// SIGSTOP, a stuck driver) is told apart from one that is still there: at the
// timeout, a peer silent for SILENT_S is named as the one that hangs.
#define BEAT_S 0.25
#define SILENT_S 1.0

// ---------------------------------------------------------------- loading

#define SYM(field, name)                                                  \
  do {                                                                    \
    *(void **)(&a->field) = dlsym(a->lib, name);                          \
    if (!a->field) {                                                      \
      snprintf(err, errlen, "%s has no symbol %s%s", a->path, name, hint); \
      return -1;                                                          \
    }                                                                     \
  } while (0)

static int mpi_load(MpiApi *a, const char *want, char *err, size_t errlen) {
  const char *env = getenv("NAO_MPI_LIB");
  const char *name = want ? want : env && *env ? env : "libmpi.so.40";
  snprintf(a->path, sizeof a->path, "%s", name);
  // RTLD_GLOBAL: Open MPI's components (mca_*.so) resolve libmpi's symbols.
  a->lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
  if (!a->lib) {
    snprintf(err, errlen,
             "this process was started by an MPI launcher but %s cannot be opened (%s): install "
             "Open MPI (Debian: openmpi-bin) or point NAO_MPI_LIB at its libmpi.so",
             name, dlerror());
    return -1;
  }
  const char *hint = " (nao-train speaks Open MPI's ABI: point NAO_MPI_LIB at Open MPI's libmpi.so.40)";
  SYM(initialized, "MPI_Initialized");
  SYM(finalized, "MPI_Finalized");
  SYM(init_thread, "MPI_Init_thread");
  SYM(finalize, "MPI_Finalize");
  SYM(abort, "MPI_Abort");
  SYM(comm_rank, "MPI_Comm_rank");
  SYM(comm_size, "MPI_Comm_size");
  SYM(comm_dup, "MPI_Comm_dup");
  SYM(comm_split_type, "MPI_Comm_split_type");
  SYM(comm_free, "MPI_Comm_free");
  SYM(comm_set_errhandler, "MPI_Comm_set_errhandler");
  SYM(iallreduce, "MPI_Iallreduce");
  SYM(ibcast, "MPI_Ibcast");
  SYM(iallgather, "MPI_Iallgather");
  SYM(ibarrier, "MPI_Ibarrier");
  SYM(isend, "MPI_Isend");
  SYM(irecv, "MPI_Irecv");
  SYM(test, "MPI_Test");
  SYM(cancel, "MPI_Cancel");
  SYM(request_free, "MPI_Request_free");
  SYM(error_string, "MPI_Error_string");
  SYM(get_library_version, "MPI_Get_library_version");
  SYM(comm_world, "ompi_mpi_comm_world");
  SYM(t_float, "ompi_mpi_float");
  SYM(t_double, "ompi_mpi_double");
  SYM(t_byte, "ompi_mpi_byte");
  SYM(op_sum, "ompi_mpi_op_sum");
  SYM(op_max, "ompi_mpi_op_max");
  SYM(info_null, "ompi_mpi_info_null");
  SYM(errors_return, "ompi_mpi_errors_return");
  SYM(request_null, "ompi_request_null");
  return 0;
}
#undef SYM

// "MPI_X failed: <the library's message> (code)"
static int mpi_err(Dist *d, const MpiApi *a, int code, const char *call) {
  char msg[512] = "";  // MPI_MAX_ERROR_STRING is 256 in Open MPI
  int len = 0;
  if (a->error_string(code, msg, &len) != MPI_OK) snprintf(msg, sizeof msg, "unknown error");
  return dist_fail(d, "%s failed: %s (%d)", call, msg, code);
}

// ---------------------------------------------------------------- arrivals

static int done_req(const MpiState *s, MpiH r) { return r == NULL || r == s->api.request_null; }

static int post_recv(Dist *d, MpiState *s, int peer) {
  int rc = s->api.irecv(&s->recv_buf[peer], (int)sizeof(long long), s->api.t_byte, peer,
                        TAG_ARRIVE, s->beat, &s->recv_req[peer]);
  return rc == MPI_OK ? 0 : mpi_err(d, &s->api, rc, "MPI_Irecv (arrivals)");
}

// Takes in every arrival message that came; reposts the receives.
static int drain_arrivals(Dist *d, MpiState *s) {
  for (int p = 0; p < d->world; p++) {
    while (p != d->rank) {
      int flag = 0;
      int rc = s->api.test(&s->recv_req[p], &flag, NULL);
      if (rc != MPI_OK) return mpi_err(d, &s->api, rc, "MPI_Test (arrivals)");
      if (!flag) break;
      if (s->recv_buf[p] > s->arrived[p]) s->arrived[p] = s->recv_buf[p];
      s->heard[p] = dist_now();
      if (post_recv(d, s, p) != 0) return -1;
    }
  }
  return 0;
}

// Tells every peer this rank reached collective d->seq. A peer whose previous
// message is still in flight is skipped (it learns at the next one).
static int announce(Dist *d, MpiState *s) {
  for (int p = 0; p < d->world; p++) {
    if (p == d->rank) continue;
    if (!done_req(s, s->send_req[p])) {
      int flag = 0;
      int rc = s->api.test(&s->send_req[p], &flag, NULL);
      if (rc != MPI_OK) return mpi_err(d, &s->api, rc, "MPI_Test (arrivals)");
      if (!flag) continue;
    }
    s->send_buf[p] = d->seq;
    int rc = s->api.isend(&s->send_buf[p], (int)sizeof(long long), s->api.t_byte, p, TAG_ARRIVE,
                          s->beat, &s->send_req[p]);
    if (rc != MPI_OK) return mpi_err(d, &s->api, rc, "MPI_Isend (arrivals)");
  }
  return drain_arrivals(d, s);
}

static void missing_ranks(Dist *d, void *ctx, long long seq, char *out, size_t outlen) {
  MpiState *s = ctx;
  char keep[sizeof d->err];
  memcpy(keep, d->err, sizeof keep);
  int failed = d->failed;
  drain_arrivals(d, s);  // best effort: the timeout is the message
  memcpy(d->err, keep, sizeof keep);
  d->failed = failed;
  const double now = dist_now();
  char list[300] = "", silent[300] = "";
  size_t len = 0, slen = 0;
  int n = 0, ns = 0;
  for (int p = 0; p < d->world; p++) {
    if (p == d->rank) continue;
    if (s->arrived[p] >= seq) {  // there, but is it still alive?
      if (now - s->heard[p] >= SILENT_S && slen < sizeof silent)
        slen += (size_t)snprintf(silent + slen, sizeof silent - slen, "%s%d (silent for %.1f s)",
                                 ns++ ? ", " : "", p, now - s->heard[p]);
      continue;
    }
    if (len < sizeof list)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%d (last reached #%lld)",
                              n ? ", " : "", p, s->arrived[p]);
    n++;
  }
  if (n > 0 && ns > 0)
    snprintf(out, outlen, "rank%s %s did not reach it; rank%s %s reached it and stopped responding",
             n > 1 ? "s" : "", list, ns > 1 ? "s" : "", silent);
  else if (n > 0) snprintf(out, outlen, "rank%s %s did not reach it", n > 1 ? "s" : "", list);
  else if (ns > 0) snprintf(out, outlen, "rank%s %s reached it and stopped responding", ns > 1 ? "s" : "", silent);
  else snprintf(out, outlen, "every rank reached it and is alive (MPI made no progress: network?)");
}

// ---------------------------------------------------------------- collectives

// A fresh request slot of the collective being started.
static MpiH *new_req(MpiState *s) {
  if (s->n_reqs == s->cap_reqs) {
    s->cap_reqs = s->cap_reqs ? 2 * s->cap_reqs : 8;
    s->reqs = xrealloc(s->reqs, (size_t)s->cap_reqs * sizeof *s->reqs);
  }
  s->reqs[s->n_reqs] = NULL;
  return &s->reqs[s->n_reqs++];
}

static int poll_reqs(Dist *d, void *ctx) {
  MpiState *s = ctx;
  const double now = dist_now();
  if (now - s->last_beat >= BEAT_S) {  // still here: repeat the arrival
    s->last_beat = now;
    if (announce(d, s) != 0) return -1;
  }
  int all = 1;
  for (int i = 0; i < s->n_reqs; i++) {
    if (done_req(s, s->reqs[i])) continue;
    int flag = 0;
    int rc = s->api.test(&s->reqs[i], &flag, NULL);
    if (rc != MPI_OK) return mpi_err(d, &s->api, rc, "MPI_Test"), -1;
    all &= flag != 0;
  }
  return all;
}

// Waits for the requests started (rc: the last start's code).
static int run_reqs(Dist *d, MpiState *s, int rc, const char *call) {
  if (rc != MPI_OK) return mpi_err(d, &s->api, rc, call);
  rc = dist_wait(d, poll_reqs, missing_ranks, s);
  s->n_reqs = 0;
  return rc;
}

static int mpi_allreduce(Dist *d, void *buf, size_t n, int is_f64, DistOp op) {
  MpiState *s = d->impl;
  if (announce(d, s) != 0) return -1;
  size_t esz = is_f64 ? sizeof(double) : sizeof(float);
  MpiH type = is_f64 ? s->api.t_double : s->api.t_float;
  MpiH mop = op == DIST_MAX ? s->api.op_max : s->api.op_sum;
  int rc = MPI_OK;
  for (size_t at = 0; at < n && rc == MPI_OK; at += MPI_CHUNK) {
    int cnt = (int)(n - at < MPI_CHUNK ? n - at : MPI_CHUNK);
    rc = s->api.iallreduce(MPI_IN_PLACE_, (char *)buf + at * esz, cnt, type, mop, s->comm, new_req(s));
  }
  return run_reqs(d, s, rc, "MPI_Iallreduce");
}

// One request per slice (and per 2^30 floats), all in flight at once.
static int mpi_allreduce_ranges(Dist *d, float *base, const DistRange *r, int n) {
  MpiState *s = d->impl;
  if (announce(d, s) != 0) return -1;
  int rc = MPI_OK;
  for (int k = 0; k < n && rc == MPI_OK; k++)
    for (size_t at = 0; at < r[k].count && rc == MPI_OK; at += MPI_CHUNK) {
      size_t left = r[k].count - at;
      int cnt = (int)(left < MPI_CHUNK ? left : MPI_CHUNK);
      rc = s->api.iallreduce(MPI_IN_PLACE_, base + r[k].offset + at, cnt, s->api.t_float,
                             s->api.op_sum, s->comm, new_req(s));
    }
  return run_reqs(d, s, rc, "MPI_Iallreduce");
}

static int mpi_broadcast(Dist *d, void *buf, size_t bytes, int root) {
  MpiState *s = d->impl;
  if (announce(d, s) != 0) return -1;
  int rc = MPI_OK;
  for (size_t at = 0; at < bytes && rc == MPI_OK; at += MPI_CHUNK) {
    int cnt = (int)(bytes - at < MPI_CHUNK ? bytes - at : MPI_CHUNK);
    rc = s->api.ibcast((char *)buf + at, cnt, s->api.t_byte, root, s->comm, new_req(s));
  }
  return run_reqs(d, s, rc, "MPI_Ibcast");
}

static int mpi_allgather(Dist *d, const void *mine, void *all, size_t bytes) {
  MpiState *s = d->impl;
  if (bytes > INT_MAX) return dist_fail(d, "all-gather of %zu bytes per rank: too large", bytes);
  if (announce(d, s) != 0) return -1;
  int rc = s->api.iallgather(mine, (int)bytes, s->api.t_byte, all, (int)bytes, s->api.t_byte,
                             s->comm, new_req(s));
  return run_reqs(d, s, rc, "MPI_Iallgather");
}

static int mpi_barrier(Dist *d) {
  MpiState *s = d->impl;
  if (announce(d, s) != 0) return -1;
  return run_reqs(d, s, s->api.ibarrier(s->comm, new_req(s)), "MPI_Ibarrier");
}

static void mpi_abort(Dist *d, int code) {
  MpiState *s = d->impl;
  fflush(stdout);
  fflush(stderr);
  s->api.abort(s->api.comm_world, code);
  _exit(code);
}

// Lets the arrival requests go: the receives are cancelled, the sends
// (matched by the peers' posted receives) completed or released. Best
// effort: the process is ending, and a failure here changes nothing.
static void release_arrivals(Dist *d, MpiState *s) {
  for (int p = 0; p < d->world; p++) {
    if (p == d->rank) continue;
    if (s->recv_req && !done_req(s, s->recv_req[p])) {
      int flag = 0;
      s->api.cancel(&s->recv_req[p]);
      s->api.test(&s->recv_req[p], &flag, NULL);
      if (!flag) s->api.request_free(&s->recv_req[p]);
    }
    if (s->send_req && !done_req(s, s->send_req[p])) {
      int flag = 0;
      s->api.test(&s->send_req[p], &flag, NULL);
      if (!flag) s->api.request_free(&s->send_req[p]);
    }
  }
}

static void mpi_close(Dist *d) {
  MpiState *s = d->impl;
  if (!s) return;
  if (!d->failed) {
    // Everyone reaches the end before the arrival receives go away.
    d->seq++, d->what = "closing barrier";
    if (mpi_barrier(d) != 0) fprintf(stderr, "nao: warning: %s\n", d->err);
  }
  release_arrivals(d, s);
  if (s->beat) s->api.comm_free(&s->beat);
  if (s->comm) s->api.comm_free(&s->comm);
  int fin = 1;
  if (s->we_initialized && s->api.finalized(&fin) == MPI_OK && !fin) s->api.finalize();
  // The library stays loaded: Open MPI does not support being unloaded.
  free(s->arrived), free(s->recv_buf), free(s->recv_req), free(s->send_buf), free(s->send_req), free(s->heard);
  free(s->reqs);
  free(s);
  d->impl = NULL;
}

static const DistImplOps mpi_ops = {"mpi", mpi_allreduce, mpi_allreduce_ranges, mpi_broadcast, mpi_allgather,
                                    mpi_barrier, mpi_abort, mpi_close};

// ---------------------------------------------------------------- opening

static int mpi_start(Dist *d, MpiState *s, char *err, size_t errlen) {
  MpiApi *a = &s->api;
  int inited = 0, provided = 0, rc;
  a->initialized(&inited);
  if (!inited) {
    if ((rc = a->init_thread(NULL, NULL, MPI_THREAD_FUNNELED_, &provided)) != MPI_OK) {
      snprintf(err, errlen, "MPI_Init_thread failed (%d): is this the launcher's MPI (%s)?", rc, a->path);
      return -1;
    }
    s->we_initialized = 1;
    if (provided < MPI_THREAD_FUNNELED_)
      fprintf(stderr, "nao: warning: MPI provides thread level %d < FUNNELED; only the main thread calls MPI\n", provided);
  }
  if ((rc = a->comm_dup(a->comm_world, &s->comm)) != MPI_OK || (rc = a->comm_dup(a->comm_world, &s->beat)) != MPI_OK) {
    snprintf(err, errlen, "MPI_Comm_dup failed (%d)", rc);
    return -1;
  }
  if ((rc = a->comm_set_errhandler(s->comm, a->errors_return)) != MPI_OK ||
      (rc = a->comm_set_errhandler(s->beat, a->errors_return)) != MPI_OK ||
      (rc = a->comm_rank(s->comm, &d->rank)) != MPI_OK || (rc = a->comm_size(s->comm, &d->world)) != MPI_OK) {
    snprintf(err, errlen, "MPI_Comm_set_errhandler / MPI_Comm_rank / MPI_Comm_size failed (%d)", rc);
    return -1;
  }
  MpiH node = NULL;
  if ((rc = a->comm_split_type(s->comm, MPI_COMM_TYPE_SHARED_, d->rank, a->info_null, &node)) != MPI_OK) {
    snprintf(err, errlen, "MPI_Comm_split_type (the ranks of this node) failed (%d)", rc);
    return -1;
  }
  if ((rc = a->comm_rank(node, &d->local_rank)) != MPI_OK || (rc = a->comm_size(node, &d->local_world)) != MPI_OK) {
    snprintf(err, errlen, "MPI_Comm_rank / MPI_Comm_size of this node's ranks failed (%d)", rc);
    return -1;
  }
  a->comm_free(&node);
  return 0;
}

static int mpi_arrivals_init(Dist *d, MpiState *s, char *err, size_t errlen) {
  size_t w = (size_t)d->world;
  s->arrived = xcalloc(w, sizeof *s->arrived);
  s->recv_buf = xcalloc(w, sizeof *s->recv_buf);
  s->recv_req = xcalloc(w, sizeof *s->recv_req);
  s->send_buf = xcalloc(w, sizeof *s->send_buf);
  s->send_req = xcalloc(w, sizeof *s->send_req);
  s->heard = xcalloc(w, sizeof *s->heard);
  for (int p = 0; p < d->world; p++)
    if (p != d->rank && post_recv(d, s, p) != 0) {
      snprintf(err, errlen, "%s", d->err);
      return -1;
    }
  return 0;
}

int dist_mpi_open(Dist *d, const DistEnv *env, const DistOptions *o, char *err, size_t errlen) {
  MpiState *s = xcalloc(1, sizeof *s);
  d->impl = s;
  d->ops = &mpi_ops;
  d->kind = DIST_MPI;
  if (mpi_load(&s->api, o ? o->mpi_lib : NULL, err, errlen) != 0 || mpi_start(d, s, err, errlen) != 0 ||
      mpi_arrivals_init(d, s, err, errlen) != 0) {
    if (s->api.lib && s->we_initialized) s->api.abort(s->api.comm_world, 70);
    free(s->arrived), free(s->recv_buf), free(s->recv_req), free(s->send_buf), free(s->send_req), free(s->heard);
    free(s);
    d->impl = NULL;
    return -1;
  }
  if (env->world > 0 && env->world != d->world) {
    snprintf(err, errlen,
             "the launcher (%s) started %d processes but MPI (%s) sees %d: is %s the launcher's "
             "MPI? (NAO_MPI_LIB selects another)",
             dist_launch_name(env->launch), env->world, s->api.path, d->world, s->api.path);
    s->api.abort(s->api.comm_world, 1);
    return -1;
  }
  char ver[512] = "";  // MPI_MAX_LIBRARY_VERSION_STRING is 256
  int len = 0;
  s->api.get_library_version(ver, &len);
  ver[strcspn(ver, ",\n")] = 0;
  ver[sizeof d->name - 16] = 0;
  snprintf(d->name, sizeof d->name, "mpi (%.200s)", ver[0] ? ver : s->api.path);
  return 0;
}
