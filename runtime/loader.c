// runtime/loader.c — batching with worker threads and prefetched slots
// (loader.h).
//
// Scheduling: the rank's samples of an epoch are positions 0..per_rank-1;
// batch b is positions [b * batch, ...) and lives in slot b % n_slots. A
// worker claims a chunk of consecutive positions of the lowest unfinished
// batch whose slot is free or already filling that batch, makes the samples
// without the lock, then counts them in; the slot turns READY when full. The
// consumer waits for its next batch's slot to be READY, marks it HELD, and
// frees it on release. Everything shared is guarded by one mutex; the
// samples themselves are written by exactly one worker each.
//
// Restarting an epoch stops the hand-out, waits until no chunk is in
// flight, then resets the slots, so no worker ever writes a slot that was
// handed back or reused.
#include "runtime/loader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/rng.h"

enum { SHUFFLE_PURPOSE = 0x0e90c4 };

typedef enum { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY, SLOT_HELD } SlotState;

typedef struct {
  LoaderBatch b;
  SlotState state;
  int filled;
} Slot;

struct Loader {
  const DataSet *ds;
  LoaderOptions opt;
  int c, h, w;
  size_t sample_floats;
  int per_rank, n_batches, chunk;
  int32_t *order;              // (ds->n) the epoch's permutation of the set's items
  Slot *slots;
  int n_slots;
  atomic_uchar *warned;        // (part size) a warning was printed for this item
  atomic_int distinct_bad;
  pthread_mutex_t mu;
  pthread_cond_t work_cv, ready_cv;
  // guarded by mu
  int epoch, running, stop, next_pos, next_batch, inflight, reported, failed;
  long long skipped, skipped_total, delivered;
  char error[512];
  // threads
  pthread_t *threads;
  int n_threads;
  DataScratch **scratch;       // one per worker; [0] also serves workers == 0
};

// ---------------------------------------------------------------- options

void loader_options_default(LoaderOptions *o, DataKind kind, int train) {
  memset(o, 0, sizeof *o);
  o->batch = 1;
  o->workers = -1;
  o->prefetch = 2;
  o->shuffle = train;
  o->pad_shards = 1;
  o->world = 1;
  augment_preset(&o->aug, kind, train);
}

static void *default_alloc(void *user, size_t bytes) {
  (void)user;
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) nao_internal("out of memory for a %zu-byte batch", bytes);
  return p;
}

static void default_free(void *user, void *p, size_t bytes) {
  (void)user, (void)bytes;
  free(p);
}

static void default_warn(void *user, const char *msg) {
  (void)user;
  fprintf(stderr, "nao: warning: %s\n", msg);
}

// ---------------------------------------------------------------- samples

static int global_pos(const Loader *ld, int k) { return ld->opt.rank + k * ld->opt.world; }

static void warn_once(Loader *ld, int32_t item, const char *msg) {
  if (atomic_exchange(&ld->warned[item], 1) == 0) {
    atomic_fetch_add(&ld->distinct_bad, 1);
    char line[768];
    snprintf(line, sizeof line, "%s (skipped; replaced by the next readable image)", msg);
    ld->opt.warn(ld->opt.warn_user, line);
  }
}

// Sample at rank-local position k into slot s; counts replaced samples in
// *skipped. -1 (message in err) when no item of the set decodes.
static int make_sample(Loader *ld, Slot *s, int k, int epoch, DataScratch *scratch, long long *skipped, char *err,
                       size_t errlen) {
  const DataSet *ds = ld->ds;
  int n = ds->n, g = global_pos(ld, k) % n, j = k - s->b.index * ld->opt.batch;
  int32_t item = ld->order[g], label = 0;
  uint64_t key = (uint64_t)(uint32_t)epoch << 32 | (uint32_t)item;
  float *dst = s->b.images + (size_t)j * ld->sample_floats;
  char msg[640];
  DataSampleStatus st = data_sample(ds, item, &ld->opt.aug, ld->opt.seed, key, dst, &label, scratch, msg, sizeof msg);
  if (st != DATA_SAMPLE_OK) {
    warn_once(ld, item, msg);
    (*skipped)++;
    for (int a = 1; a < n && st != DATA_SAMPLE_OK; a++) {
      int32_t cand = ld->order[(g + a) % n];
      uint64_t k2 = key ^ rng_mix64((uint64_t)a * 0x9e3779b97f4a7c15ULL);
      st = data_sample(ds, cand, &ld->opt.aug, ld->opt.seed, k2, dst, &label, scratch, msg, sizeof msg);
      if (st == DATA_SAMPLE_OK) item = cand;
      else warn_once(ld, cand, msg);
    }
    if (st != DATA_SAMPLE_OK)
      return snprintf(err, errlen, "%s: none of the %d images of the %s split can be read", data_source_dir(ds->src),
                      n, data_split_name(ds->split)), -1;
  }
  s->b.labels[j] = label;
  s->b.items[j] = item;
  return 0;
}

// ---------------------------------------------------------------- scheduling (mu held)

static void slot_assign(Loader *ld, Slot *s, int b) {
  s->state = SLOT_FILLING;
  s->filled = 0;
  s->b.index = b;
  s->b.epoch = ld->epoch;
  int first = b * ld->opt.batch, left = ld->per_rank - first;
  s->b.n = left < ld->opt.batch ? left : ld->opt.batch;
}

// Claims positions [*pos, *pos + *cnt) of the next batch that can be filled.
static int claim(Loader *ld, int *pos, int *cnt, Slot **slot) {
  if (!ld->running || ld->failed || ld->next_pos >= ld->per_rank) return 0;
  int b = ld->next_pos / ld->opt.batch;
  Slot *s = &ld->slots[b % ld->n_slots];
  if (s->state == SLOT_FREE) slot_assign(ld, s, b);
  else if (s->state != SLOT_FILLING || s->b.index != b) return 0;
  int end = b * ld->opt.batch + s->b.n;
  *pos = ld->next_pos;
  *cnt = end - *pos < ld->chunk ? end - *pos : ld->chunk;
  *slot = s;
  ld->next_pos += *cnt;
  ld->inflight++;
  return 1;
}

// Counts a finished chunk in (mu held).
static void chunk_done(Loader *ld, Slot *s, int cnt, long long skipped, int rc, const char *err) {
  ld->inflight--;
  ld->skipped += skipped;
  ld->skipped_total += skipped;
  if (rc != 0 && !ld->failed) {
    ld->failed = 1;
    snprintf(ld->error, sizeof ld->error, "%s", err);
  }
  s->filled += cnt;
  if (s->filled == s->b.n) s->state = SLOT_READY;
  pthread_cond_broadcast(&ld->ready_cv);
}

static int fill_chunk(Loader *ld, Slot *s, int pos, int cnt, int epoch, DataScratch *scratch, long long *skipped,
                      char *err, size_t errlen) {
  for (int k = pos; k < pos + cnt; k++)
    if (make_sample(ld, s, k, epoch, scratch, skipped, err, errlen) != 0) return -1;
  return 0;
}

typedef struct {
  Loader *ld;
  int index;
} WorkerArg;

static void *worker_main(void *p) {
  WorkerArg *wa = p;
  Loader *ld = wa->ld;
  DataScratch *scratch = ld->scratch[wa->index];
  free(wa);
  char err[512];
  pthread_mutex_lock(&ld->mu);
  for (;;) {
    int pos, cnt;
    Slot *s;
    while (!ld->stop && !claim(ld, &pos, &cnt, &s)) pthread_cond_wait(&ld->work_cv, &ld->mu);
    if (ld->stop) break;
    int epoch = ld->epoch;
    pthread_mutex_unlock(&ld->mu);
    long long skipped = 0;
    int rc = fill_chunk(ld, s, pos, cnt, epoch, scratch, &skipped, err, sizeof err);
    pthread_mutex_lock(&ld->mu);
    chunk_done(ld, s, cnt, skipped, rc, err);
  }
  pthread_mutex_unlock(&ld->mu);
  return NULL;
}

// ---------------------------------------------------------------- open / close

static int rank_samples(const LoaderOptions *o, int n) {
  if (o->pad_shards) return (n + o->world - 1) / o->world;
  return o->rank < n ? (n - o->rank + o->world - 1) / o->world : 0;
}

static int check_options(const DataSet *ds, const LoaderOptions *o, char *err, size_t errlen) {
  const char *dir = data_source_dir(ds->src);
  if (o->batch < 1 || o->batch > (1 << 24)) return snprintf(err, errlen, "batch size %d out of range", o->batch), -1;
  if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
    return snprintf(err, errlen, "rank %d of world %d out of range", o->rank, o->world), -1;
  if (o->workers < -1 || o->workers > 1024) return snprintf(err, errlen, "%d workers out of range", o->workers), -1;
  if (o->prefetch < 0 || o->prefetch == 1 || o->prefetch > 64)
    return snprintf(err, errlen, "prefetch %d out of range (2..64)", o->prefetch), -1;
  if (ds->n < 1) return snprintf(err, errlen, "%s: the %s split is empty", dir, data_split_name(ds->split)), -1;
  return 0;
}

static void alloc_slots(Loader *ld) {
  size_t img = (size_t)ld->opt.batch * ld->sample_floats * sizeof(float);
  size_t lab = (size_t)ld->opt.batch * sizeof(int32_t);
  ld->slots = xcalloc((size_t)ld->n_slots, sizeof *ld->slots);
  for (int i = 0; i < ld->n_slots; i++) {
    Slot *s = &ld->slots[i];
    s->b.images = ld->opt.alloc(ld->opt.alloc_user, img);
    s->b.labels = ld->opt.alloc(ld->opt.alloc_user, lab);
    if (!s->b.images || !s->b.labels) nao_internal("batch memory provider returned NULL");
    s->b.items = xmalloc(lab);
    s->b.slot = i;
  }
}

static int start_threads(Loader *ld, char *err, size_t errlen) {
  ld->threads = xcalloc((size_t)ld->n_threads + 1, sizeof *ld->threads);
  for (int i = 0; i < ld->n_threads; i++) {
    WorkerArg *wa = xmalloc(sizeof *wa);
    *wa = (WorkerArg){ld, i};
    int rc = pthread_create(&ld->threads[i], NULL, worker_main, wa);
    if (rc != 0) {
      free(wa);
      ld->n_threads = i;
      return snprintf(err, errlen, "pthread_create (loader worker %d): %s", i, strerror(rc)), -1;
    }
  }
  return 0;
}

int loader_open(const DataSet *ds, const LoaderOptions *opt, Loader **out, char *err, size_t errlen) {
  *out = NULL;
  if (check_options(ds, opt, err, errlen) != 0) return -1;
  Loader *ld = xcalloc(1, sizeof *ld);
  ld->ds = ds;
  ld->opt = *opt;
  if (data_sample_shape(ds, &ld->opt.aug, &ld->c, &ld->h, &ld->w, err, errlen) != 0) {
    free(ld);
    return -1;
  }
  if (!ld->opt.alloc || !ld->opt.free_fn) ld->opt.alloc = default_alloc, ld->opt.free_fn = default_free;
  if (!ld->opt.warn) ld->opt.warn = default_warn;
  if (ld->opt.prefetch == 0) ld->opt.prefetch = 2;
  if (ld->opt.workers < 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    ld->opt.workers = n < 1 ? 1 : n > 256 ? 256 : (int)n;
  }
  ld->sample_floats = (size_t)ld->c * ld->h * ld->w;
  ld->chunk = ld->sample_floats < 16384 ? 32 : 1;
  ld->per_rank = rank_samples(&ld->opt, ds->n);
  if (ld->opt.drop_last) ld->per_rank -= ld->per_rank % ld->opt.batch;
  ld->n_batches = (ld->per_rank + ld->opt.batch - 1) / ld->opt.batch;
  ld->n_slots = ld->opt.prefetch;
  ld->order = xmalloc((size_t)ds->n * sizeof *ld->order);
  int part_n = 0;
  for (int i = 0; i < ds->n; i++) part_n = ds->items[i] + 1 > part_n ? ds->items[i] + 1 : part_n;
  ld->warned = xcalloc((size_t)part_n, sizeof *ld->warned);
  alloc_slots(ld);
  ld->n_threads = ld->opt.workers;
  ld->scratch = xcalloc((size_t)ld->n_threads + 1, sizeof *ld->scratch);
  for (int i = 0; i < ld->n_threads + 1; i++) ld->scratch[i] = data_scratch_new();
  pthread_mutex_init(&ld->mu, NULL);
  pthread_cond_init(&ld->work_cv, NULL);
  pthread_cond_init(&ld->ready_cv, NULL);
  ld->epoch = -1;
  if (start_threads(ld, err, errlen) != 0) {
    loader_close(ld);
    return -1;
  }
  *out = ld;
  return 0;
}

void loader_close(Loader *ld) {
  if (!ld) return;
  pthread_mutex_lock(&ld->mu);
  ld->stop = 1;
  ld->running = 0;
  pthread_cond_broadcast(&ld->work_cv);
  pthread_mutex_unlock(&ld->mu);
  for (int i = 0; i < ld->n_threads; i++) pthread_join(ld->threads[i], NULL);
  size_t img = (size_t)ld->opt.batch * ld->sample_floats * sizeof(float);
  size_t lab = (size_t)ld->opt.batch * sizeof(int32_t);
  for (int i = 0; i < ld->n_slots; i++) {
    ld->opt.free_fn(ld->opt.alloc_user, ld->slots[i].b.images, img);
    ld->opt.free_fn(ld->opt.alloc_user, ld->slots[i].b.labels, lab);
    free(ld->slots[i].b.items);
  }
  for (int i = 0; ld->scratch && i < ld->n_threads + 1; i++) data_scratch_free(ld->scratch[i]);
  pthread_mutex_destroy(&ld->mu);
  pthread_cond_destroy(&ld->work_cv);
  pthread_cond_destroy(&ld->ready_cv);
  free(ld->scratch);
  free(ld->threads);
  free(ld->slots);
  free(ld->order);
  free((void *)ld->warned);
  free(ld);
}

void loader_sample_shape(const Loader *ld, int *c, int *h, int *w) { *c = ld->c, *h = ld->h, *w = ld->w; }
int loader_samples_per_epoch(const Loader *ld) { return ld->per_rank; }
int loader_batches_per_epoch(const Loader *ld) { return ld->n_batches; }

// ---------------------------------------------------------------- epochs

int loader_start_epoch(Loader *ld, int epoch, char *err, size_t errlen) {
  return loader_start_epoch_at(ld, epoch, 0, err, errlen);
}

int loader_start_epoch_at(Loader *ld, int epoch, int first_batch, char *err, size_t errlen) {
  if (epoch < 0) return snprintf(err, errlen, "epoch %d is negative", epoch), -1;
  if (first_batch < 0 || first_batch > ld->n_batches)
    return snprintf(err, errlen, "batch %d out of range: the epoch has %d batches", first_batch, ld->n_batches), -1;
  pthread_mutex_lock(&ld->mu);
  ld->running = 0;
  while (ld->inflight > 0) pthread_cond_wait(&ld->ready_cv, &ld->mu);
  for (int i = 0; i < ld->n_slots; i++) ld->slots[i].state = SLOT_FREE;
  memcpy(ld->order, ld->ds->items, (size_t)ld->ds->n * sizeof *ld->order);
  if (ld->opt.shuffle) {
    Rng r;
    rng_derive(&r, ld->opt.seed ^ SHUFFLE_PURPOSE, (uint64_t)epoch);
    rng_shuffle(&r, ld->order, ld->ds->n);
  }
  ld->epoch = epoch;
  ld->next_batch = first_batch;
  ld->next_pos = first_batch * ld->opt.batch;
  ld->skipped = ld->delivered = 0;
  ld->reported = ld->failed = 0;
  ld->running = 1;
  pthread_cond_broadcast(&ld->work_cv);
  pthread_mutex_unlock(&ld->mu);
  return 0;
}

// workers == 0: the batch is made here, in the caller's thread.
static int next_inline(Loader *ld, Slot *s, char *err, size_t errlen) {
  int pos, cnt;
  if (!claim(ld, &pos, &cnt, &s)) nao_internal("inline loader could not claim batch %d", ld->next_batch);
  do {
    long long skipped = 0;
    int rc = fill_chunk(ld, s, pos, cnt, ld->epoch, ld->scratch[0], &skipped, err, errlen);
    chunk_done(ld, s, cnt, skipped, rc, err);
    if (rc != 0) return -1;
  } while (s->state != SLOT_READY && claim(ld, &pos, &cnt, &s));
  return 0;
}

static void report_epoch(Loader *ld) {
  if (ld->reported || ld->skipped == 0) return;
  ld->reported = 1;
  char line[256];
  snprintf(line, sizeof line, "epoch %d: %lld unreadable image%s skipped and replaced (%d distinct files so far)",
           ld->epoch, ld->skipped, ld->skipped == 1 ? "" : "s", atomic_load(&ld->distinct_bad));
  ld->opt.warn(ld->opt.warn_user, line);
}

int loader_next(Loader *ld, LoaderBatch **out, char *err, size_t errlen) {
  *out = NULL;
  pthread_mutex_lock(&ld->mu);
  int rc = 1;
  if (ld->epoch < 0) rc = (snprintf(err, errlen, "loader_next before loader_start_epoch"), -1);
  else if (ld->next_batch >= ld->n_batches) {
    report_epoch(ld);
    rc = 0;
  }
  Slot *s = rc == 1 ? &ld->slots[ld->next_batch % ld->n_slots] : NULL;
  if (s && s->state == SLOT_HELD)
    rc = (snprintf(err, errlen, "all %d batch slots are held: release a batch before asking for the next", ld->n_slots), -1);
  else if (s && ld->n_threads == 0 && next_inline(ld, s, err, errlen) != 0)
    rc = -1;
  while (rc == 1 && !ld->failed && !(s->state == SLOT_READY && s->b.index == ld->next_batch))
    pthread_cond_wait(&ld->ready_cv, &ld->mu);
  if (rc == 1 && ld->failed) rc = (snprintf(err, errlen, "%s", ld->error), -1);
  if (rc == 1) {
    s->state = SLOT_HELD;
    ld->next_batch++;
    ld->delivered += s->b.n;
    *out = &s->b;
  }
  pthread_mutex_unlock(&ld->mu);
  return rc;
}

void loader_release(Loader *ld, LoaderBatch *b) {
  pthread_mutex_lock(&ld->mu);
  Slot *s = &ld->slots[b->slot];
  if (s->state == SLOT_HELD && s->b.epoch == ld->epoch) s->state = SLOT_FREE;
  pthread_cond_broadcast(&ld->work_cv);
  pthread_mutex_unlock(&ld->mu);
}

LoaderStats loader_stats(const Loader *ld) {
  Loader *m = (Loader *)ld;  // the mutex only
  pthread_mutex_lock(&m->mu);
  LoaderStats st = {ld->epoch, ld->delivered, ld->skipped, ld->skipped_total};
  pthread_mutex_unlock(&m->mu);
  return st;
}
