// runtime/dist_impl.h — the inside of a Dist, shared by its implementations
// (dist.c: common part and the single process; dist_mpi.c; dist_nccl.c).
// Not for other parts: dist.h is the interface.
//
// Invariants: seq counts the collectives this rank issued (every rank issues
// the same ones in the same order, so equal seq means the same collective);
// `what` names the collective in progress for messages; after a failed
// collective `failed` is set and every later collective fails at once.
#ifndef NAO_DIST_IMPL_H
#define NAO_DIST_IMPL_H

#include "runtime/dist.h"

typedef struct {
  const char *name;
  // Host buffers. is_f64: double, else float. op: SUM or MAX (MEAN is a SUM
  // scaled by the caller).
  int (*allreduce)(Dist *d, void *buf, size_t n, int is_f64, DistOp op);
  // float slices of base, summed as one collective
  int (*allreduce_ranges)(Dist *d, float *base, const DistRange *r, int n);
  int (*broadcast)(Dist *d, void *buf, size_t bytes, int root);
  int (*allgather)(Dist *d, const void *mine, void *all, size_t bytes);
  int (*barrier)(Dist *d);
  void (*abort)(Dist *d, int code);   // ends the job; must not return
  void (*close)(Dist *d);             // frees impl (and finalizes)
} DistImplOps;

struct Dist {
  const DistImplOps *ops;
  void *impl;               // the implementation's state (MPI's under NCCL too)
  const DistImplOps *host_ops;  // NCCL attached: the ops it replaced (MPI's, or the
                                //   local launcher's placeholder); else NULL
  void *nccl;               // NCCL's state once attached (dist_nccl.c)
  const struct NcclApi *nccl_api;  // DistOptions.nccl_api
  int has_nccl_id;          // the local launcher's unique id
  unsigned char nccl_id[DIST_NCCL_ID_BYTES];
  DistKind kind;
  DistLaunch launch;
  int rank, world, local_rank, local_world;
  double timeout, stop_grace;
  volatile sig_atomic_t *stop;
  int heartbeat_fd;         // -1: none
  long long seq;
  const char *what;         // the collective in progress
  int failed;
  int verbose;
  char name[256];
  char err[1024];
};

// Polls a pending operation until it completes: 1 done, 0 not yet, -1 failed
// (message in d->err).
typedef int (*DistPollFn)(Dist *d, void *ctx);
// Who has not reached collective `seq` yet: writes ranks into `out` ("1, 3"),
// or nothing when unknown.
typedef void (*DistMissingFn)(Dist *d, void *ctx, long long seq, char *out, size_t outlen);

// Waits for poll() with the timeout and the stop grace; on timeout writes
// "rank R: WHAT (collective #SEQ) did not complete within T s[: rank(s) X did
// not reach it]" into d->err and returns -1. Spins briefly, then sleeps in
// growing steps (at most 1 ms), so a long wait costs no CPU.
int dist_wait(Dist *d, DistPollFn poll, DistMissingFn missing, void *ctx);

// Starts a collective the way the public wrappers do (sequence number,
// heartbeat); 0, or -1 when d failed before. Used by dist_nccl.c.
int dist_begin(Dist *d, const char *what);

// Sets d->err to "rank R: WHAT (collective #SEQ): MESSAGE", marks d failed,
// returns -1.
int dist_fail(Dist *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Seconds on the monotonic clock.
double dist_now(void);

// The implementations' openers (dist_open dispatches).
int dist_mpi_open(Dist *d, const DistEnv *env, const DistOptions *o, char *err, size_t errlen);

#endif
