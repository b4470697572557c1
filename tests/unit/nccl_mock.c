// tests/unit/nccl_mock.c — NCCL on the CPU (nccl_mock.h).
//
// Invariants: op k of every rank is kept in slot k % MAX_OPS until it ran;
// ops run in order, by the last rank to enqueue them, under the mutex;
// `executed` counts them, so a rank's stream is done when executed >= the
// number it enqueued.
#include "tests/unit/nccl_mock.h"

#include "compiler/util.h"
#include "tests/unit/cuda_mock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_RANKS = 16, MAX_OPS = 256, MAX_COPIES = 8 };
typedef enum { OP_ALLREDUCE, OP_BROADCAST, OP_ALLGATHER } OpKind;

typedef struct {
  OpKind kind;
  const void *send;
  void *recv;
  size_t count;
  int dtype, op, root;
} RankOp;

typedef struct {
  RankOp r[MAX_RANKS];
  int arrived;
} Slot;

typedef struct {
  void *dst;
  const void *src;
  size_t bytes;
} Copy;

struct NcclCommSt {
  int rank;
};

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  NcclMockConfig cfg;
  NcclMockStats st;
  int init_arrived, release;
  NcclUniqueId id;
  int have_id;
  Slot slots[MAX_OPS];
  long long posted[MAX_RANKS];
  long long executed;
  struct NcclCommSt comms[MAX_RANKS];
  Copy copies[MAX_RANKS][MAX_COPIES];
  int n_copies[MAX_RANKS];
} M = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void nccl_mock_reset(const NcclMockConfig *cfg) {
  pthread_mutex_lock(&M.mu);
  memset(&M.st, 0, sizeof M.st);
  M.cfg = *cfg;
  if (!M.cfg.version) M.cfg.version = 22105;
  M.init_arrived = M.release = M.have_id = 0;
  memset(M.slots, 0, sizeof M.slots);
  memset(M.posted, 0, sizeof M.posted);
  memset(M.n_copies, 0, sizeof M.n_copies);
  M.executed = 0;
  pthread_mutex_unlock(&M.mu);
}

NcclMockStats nccl_mock_stats(void) {
  pthread_mutex_lock(&M.mu);
  NcclMockStats s = M.st;
  pthread_mutex_unlock(&M.mu);
  return s;
}

void nccl_mock_release_init(void) {
  pthread_mutex_lock(&M.mu);
  M.release = 1;
  pthread_cond_broadcast(&M.cv);
  pthread_mutex_unlock(&M.mu);
}

// ---------------------------------------------------------------- setup calls

static NcclResult m_version(int *v) {
  *v = M.cfg.version;
  return NCCLAPI_SUCCESS;
}

static NcclResult m_unique_id(NcclUniqueId *id) {
  for (int i = 0; i < DIST_NCCL_ID_BYTES; i++) id->internal[i] = (char)(i * 13 + 5);
  return NCCLAPI_SUCCESS;
}

static NcclResult m_init(NcclComm *comm, int nranks, NcclUniqueId id, int rank) {
  if (nranks != M.cfg.world || rank < 0 || rank >= nranks) return NCCLAPI_INVALID_ARGUMENT;
  pthread_mutex_lock(&M.mu);
  if (!M.have_id) M.id = id, M.have_id = 1;
  else if (memcmp(&M.id, &id, sizeof id)) M.st.id_mismatch++;
  M.init_arrived += M.cfg.mirror ? M.cfg.world : 1;
  pthread_cond_broadcast(&M.cv);
  while (M.init_arrived < M.cfg.world && !M.release) pthread_cond_wait(&M.cv, &M.mu);
  int ok = M.init_arrived >= M.cfg.world;
  if (ok) M.st.inits++;
  M.comms[rank].rank = rank;
  pthread_mutex_unlock(&M.mu);
  if (!ok) return NCCLAPI_SYSTEM_ERROR;
  *comm = &M.comms[rank];
  return NCCLAPI_SUCCESS;
}

static NcclResult m_destroy(NcclComm c) {
  (void)c;
  pthread_mutex_lock(&M.mu);
  M.st.destroys++;
  pthread_mutex_unlock(&M.mu);
  return NCCLAPI_SUCCESS;
}

static NcclResult m_abort(NcclComm c) {
  pthread_mutex_lock(&M.mu);
  M.st.aborts[c->rank]++;
  pthread_mutex_unlock(&M.mu);
  return NCCLAPI_SUCCESS;
}

static NcclResult m_async(NcclComm c, NcclResult *e) {
  pthread_mutex_lock(&M.mu);
  int n = ++M.st.polls[c->rank];
  *e = c->rank == M.cfg.async_error_rank && n >= M.cfg.async_error_after ? NCCLAPI_REMOTE_ERROR
                                                                          : NCCLAPI_SUCCESS;
  pthread_mutex_unlock(&M.mu);
  return NCCLAPI_SUCCESS;
}

static const char *m_string(NcclResult r) {
  switch (r) {
    case NCCLAPI_SUCCESS: return "no error";
    case NCCLAPI_SYSTEM_ERROR: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case NCCLAPI_INVALID_ARGUMENT: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case NCCLAPI_REMOTE_ERROR: return "remote process exited or there was a network error";
    default: return "unknown result code";
  }
}

static const char *m_last(NcclComm c) {
  (void)c;
  return "mock: injected";
}

static NcclResult m_group(void) { return NCCLAPI_SUCCESS; }

// ---------------------------------------------------------------- collectives

static size_t esize(int dtype) {
  return dtype == NCCLAPI_FLOAT64 ? 8 : dtype == NCCLAPI_FLOAT32 ? 4 : 1;
}

static void run_allreduce(Slot *s, int w) {
  const RankOp *o = &s->r[0];
  size_t n = o->count;
  if (o->dtype == NCCLAPI_FLOAT32) {
    float *acc = xmalloc((n ? n : 1) * sizeof *acc);
    for (size_t i = 0; i < n; i++) {
      float v = ((const float *)s->r[0].send)[i];
      for (int r = 1; r < w; r++) {
        float x = ((const float *)s->r[r].send)[i];
        v = o->op == NCCLAPI_MAX ? (x > v ? x : v) : v + x;
      }
      acc[i] = o->op == NCCLAPI_AVG ? v / (float)w : v;
    }
    for (int r = 0; r < w; r++) memcpy(s->r[r].recv, acc, n * sizeof *acc);
    free(acc);
    return;
  }
  double *acc = xmalloc((n ? n : 1) * sizeof *acc);
  for (size_t i = 0; i < n; i++) {
    double v = ((const double *)s->r[0].send)[i];
    for (int r = 1; r < w; r++) {
      double x = ((const double *)s->r[r].send)[i];
      v = o->op == NCCLAPI_MAX ? (x > v ? x : v) : v + x;
    }
    acc[i] = o->op == NCCLAPI_AVG ? v / w : v;
  }
  for (int r = 0; r < w; r++) memcpy(s->r[r].recv, acc, n * sizeof *acc);
  free(acc);
}

static void run_slot(Slot *s, int w) {
  const RankOp *o = &s->r[0];
  size_t bytes = o->count * esize(o->dtype);
  if (o->kind == OP_ALLREDUCE) {
    run_allreduce(s, w);
  } else if (o->kind == OP_BROADCAST) {
    char *tmp = xmalloc(bytes + 1);
    memcpy(tmp, s->r[o->root].send, bytes);
    for (int r = 0; r < w; r++) memcpy(s->r[r].recv, tmp, bytes);
    free(tmp);
  } else {
    char *tmp = xmalloc(bytes * (size_t)w + 1);
    for (int r = 0; r < w; r++) memcpy(tmp + bytes * (size_t)r, s->r[r].send, bytes);
    for (int r = 0; r < w; r++) memcpy(s->r[r].recv, tmp, bytes * (size_t)w);
    free(tmp);
  }
}

// Mirror mode: rank 0's operation with every other rank holding its data.
typedef struct {
  RankOp op;
  int world;
} MirrorJob;

static void mirror_run(const void *payload) {
  const MirrorJob *j = payload;
  Slot s;
  memset(&s, 0, sizeof s);
  for (int r = 0; r < j->world; r++) s.r[r] = j->op;
  // Every rank's send is rank 0's: reduce from a copy (in place overwrites it).
  size_t bytes = j->op.count * esize(j->op.dtype);
  void *copy = xmalloc(bytes + 1);
  memcpy(copy, j->op.send, bytes);
  for (int r = 0; r < j->world; r++) s.r[r].send = copy;
  if (j->op.kind == OP_ALLGATHER) {
    for (int r = 0; r < j->world; r++) memcpy((char *)j->op.recv + bytes * (size_t)r, copy, bytes);
  } else {
    for (int r = 1; r < j->world; r++) s.r[r].recv = xmalloc(bytes + 1);
    run_slot(&s, j->world);
    for (int r = 1; r < j->world; r++) free(s.r[r].recv);
  }
  free(copy);
}

static NcclResult post_mirror(OpKind kind, const void *send, void *recv, size_t count, int dtype,
                              int op, int root, void *stream) {
  MirrorJob j = {{kind, send, recv, count, dtype, op, root}, M.cfg.world};
  pthread_mutex_lock(&M.mu);
  M.st.collectives++;
  pthread_mutex_unlock(&M.mu);
  if (M.cfg.cuda_streams)
    return cuda_mock_enqueue((CuStream)stream, mirror_run, &j, sizeof j) == CUAPI_SUCCESS
               ? NCCLAPI_SUCCESS : NCCLAPI_UNHANDLED_CUDA_ERROR;
  mirror_run(&j);
  return NCCLAPI_SUCCESS;
}

static NcclResult post(NcclComm c, OpKind kind, const void *send, void *recv, size_t count,
                       int dtype, int op, int root, void *stream) {
  if (M.cfg.mirror) return post_mirror(kind, send, recv, count, dtype, op, root, stream);
  pthread_mutex_lock(&M.mu);
  long long k = M.posted[c->rank]++;
  if (k - M.executed >= MAX_OPS) {
    pthread_mutex_unlock(&M.mu);
    return NCCLAPI_INTERNAL_ERROR;
  }
  Slot *s = &M.slots[k % MAX_OPS];
  s->r[c->rank] = (RankOp){kind, send, recv, count, dtype, op, root};
  s->arrived++;
  // Run every op all ranks have enqueued, in order.
  while (M.slots[M.executed % MAX_OPS].arrived == M.cfg.world) {
    Slot *x = &M.slots[M.executed % MAX_OPS];
    run_slot(x, M.cfg.world);
    memset(x, 0, sizeof *x);
    M.executed++;
    M.st.collectives++;
  }
  pthread_mutex_unlock(&M.mu);
  return NCCLAPI_SUCCESS;
}

static NcclResult m_allreduce(const void *s, void *r, size_t n, int dt, int op, NcclComm c, void *st) {
  return post(c, OP_ALLREDUCE, s, r, n, dt, op, 0, st);
}
static NcclResult m_broadcast(const void *s, void *r, size_t n, int dt, int root, NcclComm c, void *st) {
  return post(c, OP_BROADCAST, s, r, n, dt, NCCLAPI_SUM, root, st);
}
static NcclResult m_allgather(const void *s, void *r, size_t n, int dt, NcclComm c, void *st) {
  return post(c, OP_ALLGATHER, s, r, n, dt, NCCLAPI_SUM, 0, st);
}

static const NcclApi mock_api = {"mock", m_version, m_unique_id, m_init, m_destroy, m_abort,
                                 m_async, m_allreduce, m_broadcast, m_allgather, m_group, m_group,
                                 m_string, m_last};

const NcclApi *nccl_mock_api(void) { return &mock_api; }

// ---------------------------------------------------------------- the device

static int d_alloc(void *user, size_t bytes, void **p, char *err, size_t errlen) {
  (void)user, (void)err, (void)errlen;
  *p = xmalloc(bytes ? bytes : 1);
  return 0;
}
static void d_free(void *user, void *p) {
  (void)user;
  free(p);
}
static int d_copy(void *user, void *dst, const void *src, size_t bytes, char *err, size_t errlen) {
  (void)user, (void)err, (void)errlen;
  memcpy(dst, src, bytes);
  return 0;
}
// A copy to the host enqueued behind pending collectives is done when the
// rank's stream drains (in d_query), as the real stream would order it.
static int d_d2h(void *user, void *dst, const void *src, size_t bytes, char *err, size_t errlen) {
  int rank = (int)(size_t)user;
  pthread_mutex_lock(&M.mu);
  int pending = M.executed < M.posted[rank];
  if (pending) {
    if (M.n_copies[rank] == MAX_COPIES) {
      pthread_mutex_unlock(&M.mu);
      snprintf(err, errlen, "mock: too many copies queued");
      return -1;
    }
    M.copies[rank][M.n_copies[rank]++] = (Copy){dst, src, bytes};
  }
  pthread_mutex_unlock(&M.mu);
  return pending ? 0 : d_copy(user, dst, src, bytes, err, errlen);
}

static int d_query(void *user, char *err, size_t errlen) {
  (void)err, (void)errlen;
  int rank = (int)(size_t)user;
  pthread_mutex_lock(&M.mu);
  int done = M.executed >= M.posted[rank];
  if (done) {
    for (int i = 0; i < M.n_copies[rank]; i++)
      memcpy(M.copies[rank][i].dst, M.copies[rank][i].src, M.copies[rank][i].bytes);
    M.n_copies[rank] = 0;
  }
  pthread_mutex_unlock(&M.mu);
  return done;
}

void nccl_mock_device(int rank, DistDevice *dev) {
  memset(dev, 0, sizeof *dev);
  dev->user = (void *)(size_t)rank;
  dev->stream = (void *)(size_t)(0x5000 + rank);
  dev->alloc = d_alloc;
  dev->free = d_free;
  dev->h2d = d_copy;
  dev->d2h = d_d2h;
  dev->query = d_query;
}
