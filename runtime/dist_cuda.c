// runtime/dist_cuda.c — data parallelism in the cuda runtime (dist_cuda.h):
// bucket placement in the training program, a DistDevice over the driver
// API, and the hooks that run the bucket all-reduces on a second stream.
//
// Invariants: every driver call's result is checked (cuda_api_fail names the
// call); the host never blocks on a stream that NCCL work is queued on (it
// polls, dist_nccl_wait), so a dead peer turns into the timeout's error.
#include "runtime/dist_cuda.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"

// ---------------------------------------------------------------- placement

// Which bucket each trainable entry is in (-1: none), from the buckets' slices.
static int *bucket_of_entries(const DistBuckets *b, const ParamTable *t) {
  int *of = xmalloc((size_t)(t->n + 1) * sizeof *of);
  for (int e = 0; e < t->n; e++) {
    of[e] = -1;
    if (!t->items[e].trainable) continue;
    for (int k = 0; k < b->n && of[e] < 0; k++)
      for (int r = b->b[k].first_range; r < b->b[k].first_range + b->b[k].n_ranges; r++)
        if (t->items[e].offset >= b->ranges[r].offset &&
            t->items[e].offset < b->ranges[r].offset + b->ranges[r].count)
          of[e] = k;
  }
  return of;
}

int dist_cuda_bucket_steps(const DistBuckets *b, const ParamTable *t, const CudaProgram *p, int *after) {
  int *of = bucket_of_entries(b, t);
  int all = -1;  // the last step that touches the whole gradient array
  for (int k = 0; k < b->n; k++) after[k] = -1;
  for (int s = 0; s < p->n_steps; s++) {
    const CudaStep *st = &p->steps[s];
    for (int a = 0; a < st->n_args; a++) {
      const CudaArg *arg = &p->args[st->arg0 + a];
      if (arg->kind == CUDA_ARG_GRADS_ALL) all = s;
      if (arg->kind == CUDA_ARG_GRAD && arg->id >= 0 && arg->id < t->n && of[arg->id] >= 0)
        after[of[arg->id]] = s;
    }
  }
  int last = p->n_steps - 1, early = 0;
  for (int k = 0; k < b->n; k++) {
    if (after[k] < 0) after[k] = last;  // no step names its gradients: after everything
    if (after[k] < all) after[k] = all;
    if (k > 0 && after[k] < after[k - 1]) after[k] = after[k - 1];
    early += after[k] < last;
  }
  free(of);
  return early;
}

// ---------------------------------------------------------------- the device

typedef struct {
  void *dst;
  size_t off, bytes;  // in the pinned buffer
} HostCopy;

struct DistCudaDev {
  const CudaApi *cu;
  CuStream stream;
  void *pinned;         // bounce buffer of device -> host copies
  size_t pinned_bytes, pinned_used;
  HostCopy *copies;
  int n_copies, cap_copies;
};

static int dev_fail(const DistCudaDev *dd, CuResult r, const char *call, const char *what, char *err,
                    size_t errlen) {
  return cuda_api_fail(dd->cu, r, call, what, err, errlen);
}

static int dev_alloc(void *user, size_t bytes, void **dptr, char *err, size_t errlen) {
  DistCudaDev *dd = user;
  CuDevptr p = 0;
  CuResult r = dd->cu->mem_alloc(&p, bytes);
  if (r != CUAPI_SUCCESS) return dev_fail(dd, r, "cuMemAlloc", "allocating the NCCL staging buffer", err, errlen);
  *dptr = (void *)(uintptr_t)p;
  return 0;
}

static void dev_free(void *user, void *dptr) {
  DistCudaDev *dd = user;
  if (dptr) dd->cu->mem_free((CuDevptr)(uintptr_t)dptr);
}

static int dev_h2d(void *user, void *dst, const void *src, size_t bytes, char *err, size_t errlen) {
  DistCudaDev *dd = user;
  CuResult r = dd->cu->memcpy_htod_async((CuDevptr)(uintptr_t)dst, src, bytes, dd->stream);
  return r == CUAPI_SUCCESS ? 0 : dev_fail(dd, r, "cuMemcpyHtoDAsync", "staging a host collective", err, errlen);
}

// Into the pinned buffer (an asynchronous copy to pageable memory would block
// the host until the stream got there); copied on to dst once the stream is
// done (dev_query).
static int dev_d2h(void *user, void *dst, const void *src, size_t bytes, char *err, size_t errlen) {
  DistCudaDev *dd = user;
  if (dd->pinned_used + bytes > dd->pinned_bytes) {
    if (dd->n_copies) {
      snprintf(err, errlen, "internal: the NCCL bounce buffer is in use");
      return -1;
    }
    if (dd->pinned) dd->cu->mem_free_host(dd->pinned);
    dd->pinned = NULL;
    size_t want = bytes < 65536 ? 65536 : bytes;
    CuResult r = dd->cu->mem_host_alloc(&dd->pinned, want, CUAPI_MEMHOSTALLOC_PORTABLE);
    if (r != CUAPI_SUCCESS) {
      dd->pinned_bytes = 0;
      return dev_fail(dd, r, "cuMemHostAlloc", "the NCCL bounce buffer", err, errlen);
    }
    dd->pinned_bytes = want, dd->pinned_used = 0;
  }
  CuResult r = dd->cu->memcpy_dtoh_async((char *)dd->pinned + dd->pinned_used,
                                         (CuDevptr)(uintptr_t)src, bytes, dd->stream);
  if (r != CUAPI_SUCCESS) return dev_fail(dd, r, "cuMemcpyDtoHAsync", "reading a host collective", err, errlen);
  if (dd->n_copies == dd->cap_copies) {
    dd->cap_copies = dd->cap_copies ? 2 * dd->cap_copies : 8;
    dd->copies = xrealloc(dd->copies, (size_t)dd->cap_copies * sizeof *dd->copies);
  }
  dd->copies[dd->n_copies++] = (HostCopy){dst, dd->pinned_used, bytes};
  dd->pinned_used += bytes;
  return 0;
}

static int dev_query(void *user, char *err, size_t errlen) {
  DistCudaDev *dd = user;
  CuResult r = dd->cu->stream_query(dd->stream);
  if (r == CUAPI_ERROR_NOT_READY) return 0;
  if (r != CUAPI_SUCCESS) return dev_fail(dd, r, "cuStreamQuery", "waiting for a collective", err, errlen);
  for (int i = 0; i < dd->n_copies; i++)
    memcpy(dd->copies[i].dst, (char *)dd->pinned + dd->copies[i].off, dd->copies[i].bytes);
  dd->n_copies = 0, dd->pinned_used = 0;
  return 1;
}

DistCudaDev *dist_cuda_device(const CudaApi *cu, CuStream stream, DistDevice *out) {
  DistCudaDev *dd = xcalloc(1, sizeof *dd);
  dd->cu = cu;
  dd->stream = stream;
  memset(out, 0, sizeof *out);
  out->user = dd;
  out->stream = stream;
  out->alloc = dev_alloc;
  out->free = dev_free;
  out->h2d = dev_h2d;
  out->d2h = dev_d2h;
  out->query = dev_query;
  return dd;
}

void dist_cuda_device_free(DistCudaDev *dd) {
  if (!dd) return;
  if (dd->pinned) dd->cu->mem_free_host(dd->pinned);
  free(dd->copies);
  free(dd);
}

// ---------------------------------------------------------------- the hooks

struct DistCudaComm {
  Dist *d;
  const CudaApi *cu;
  DistCudaDev *dev;
  DistBuckets buckets;
  int *after;           // (buckets.n) program step after which bucket b is launched
  float *grads;         // device gradient array
  int overlap;
  CuStream comm;        // overlap: the stream the all-reduces run on
  CuEvent *ready;       // (buckets.n) recorded on the main stream before bucket b
  CuEvent done;         // recorded on the comm stream after the last bucket
  char err[1200];
};

int dist_cuda_n_buckets(const DistCudaComm *c) { return c->buckets.n; }
const int *dist_cuda_after_steps(const DistCudaComm *c) { return c->after; }
int dist_cuda_overlaps(const DistCudaComm *c) { return c->overlap; }
const char *dist_cuda_error(const void *c) { return ((const DistCudaComm *)c)->err; }

static int comm_cu(DistCudaComm *c, CuResult r, const char *call, const char *what) {
  return cuda_api_fail(c->cu, r, call, what, c->err, sizeof c->err);
}

int dist_cuda_launch(void *user, int bucket, CuStream main) {
  DistCudaComm *c = user;
  if (bucket < 0 || bucket >= c->buckets.n) {
    snprintf(c->err, sizeof c->err, "internal: gradient bucket %d of %d", bucket, c->buckets.n);
    return -1;
  }
  void *stream = main;
  if (c->overlap) {  // fork: the comm stream starts where the main stream is now
    CuResult r = c->cu->event_record(c->ready[bucket], main);
    if (r != CUAPI_SUCCESS) return comm_cu(c, r, "cuEventRecord", "marking a gradient bucket ready");
    r = c->cu->stream_wait_event(c->comm, c->ready[bucket], 0);
    if (r != CUAPI_SUCCESS) return comm_cu(c, r, "cuStreamWaitEvent", "starting a gradient all-reduce");
    stream = c->comm;
  }
  const DistBucket *k = &c->buckets.b[bucket];
  if (dist_nccl_allreduce_device(c->d, c->grads, c->buckets.ranges + k->first_range, k->n_ranges,
                                 DIST_MEAN, stream, "gradient all-reduce") != 0) {
    snprintf(c->err, sizeof c->err, "%s", dist_error(c->d));
    return -1;
  }
  return 0;
}

int dist_cuda_join(void *user, CuStream main) {
  DistCudaComm *c = user;
  if (!c->overlap) return 0;
  CuResult r = c->cu->event_record(c->done, c->comm);
  if (r != CUAPI_SUCCESS) return comm_cu(c, r, "cuEventRecord", "ending the gradient all-reduces");
  r = c->cu->stream_wait_event(main, c->done, 0);
  if (r != CUAPI_SUCCESS) return comm_cu(c, r, "cuStreamWaitEvent", "joining the gradient all-reduces");
  return 0;
}

int dist_cuda_wait(void *user) {
  DistCudaComm *c = user;
  if (dist_nccl_wait(c->d, "gradient all-reduce") == 0) return 0;
  snprintf(c->err, sizeof c->err, "%s", dist_error(c->d));
  return -1;
}

// The comm stream and its events; overlap stays off when the driver table
// cannot make a stream wait for an event or NAO_DIST_OVERLAP=0.
static int setup_overlap(DistCudaComm *c) {
  const char *env = getenv("NAO_DIST_OVERLAP");
  if (!c->cu->stream_wait_event || (env && !strcmp(env, "0"))) return 0;
  CuResult r = c->cu->stream_create(&c->comm, CUAPI_STREAM_NON_BLOCKING);
  if (r != CUAPI_SUCCESS) return comm_cu(c, r, "cuStreamCreate", "the gradient all-reduce stream");
  c->ready = xcalloc((size_t)c->buckets.n + 1, sizeof *c->ready);
  for (int k = 0; k <= c->buckets.n; k++) {
    CuEvent *e = k < c->buckets.n ? &c->ready[k] : &c->done;
    r = c->cu->event_create(e, CUAPI_EVENT_DISABLE_TIMING);
    if (r != CUAPI_SUCCESS) return comm_cu(c, r, "cuEventCreate", "the gradient all-reduce events");
  }
  c->overlap = 1;
  return 0;
}

DistCudaComm *dist_cuda_comm_create(Dist *d, const CudaApi *cu, CuStream main, CuDevptr grads,
                                    const NetBuild *nb, const CudaProgram *p,
                                    const DistNcclOptions *no, char *err, size_t errlen) {
  DistCudaComm *c = xcalloc(1, sizeof *c);
  c->d = d;
  c->cu = cu;
  c->grads = (float *)(uintptr_t)grads;
  DistDevice dev;
  c->dev = dist_cuda_device(cu, main, &dev);
  char why[1000];
  int rc = dist_nccl_attach(d, &dev, no, why, sizeof why);
  if (rc != 0) snprintf(c->err, sizeof c->err, "NCCL: %s", why);
  const char *mb = getenv("NAO_DIST_BUCKET_MB");
  size_t cap = mb && atof(mb) > 0 ? (size_t)(atof(mb) * (1 << 20)) : (size_t)DIST_BUCKET_CAP_GPU;
  if (rc == 0 && !p) return c;  // no training program: NCCL only (evaluation)
  if (rc == 0 && dist_buckets_build(&nb->train, &nb->train_plan, nb->grad_written, cap,
                                    DIST_BUCKET_FIRST_CAP_DEFAULT, &c->buckets, why, sizeof why) != 0)
    rc = -1, snprintf(c->err, sizeof c->err, "%s", why);
  if (rc == 0) {
    c->after = xcalloc((size_t)c->buckets.n + 1, sizeof *c->after);
    dist_cuda_bucket_steps(&c->buckets, &nb->params, p, c->after);
    rc = setup_overlap(c);
  }
  if (rc != 0) {
    snprintf(err, errlen, "data parallel: %s", c->err);
    dist_cuda_comm_free(c);
    return NULL;
  }
  return c;
}

void dist_cuda_comm_free(DistCudaComm *c) {
  if (!c) return;
  if (c->ready)
    for (int k = 0; k < c->buckets.n; k++)
      if (c->ready[k]) c->cu->event_destroy(c->ready[k]);
  if (c->done) c->cu->event_destroy(c->done);
  if (c->comm) c->cu->stream_destroy(c->comm);
  free(c->ready);
  free(c->after);
  dist_buckets_free(&c->buckets);
  dist_nccl_detach(c->d);  // NCCL leaves before the device it runs on
  dist_cuda_device_free(c->dev);
  free(c);
}
