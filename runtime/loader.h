// runtime/loader.h — batches of samples from a DataSet: per-epoch shuffling,
// sharding across ranks, worker threads filling prefetched batch buffers.
//
// Order: epoch e visits a permutation of the set's n items (seeded by (seed,
// e); the identity without shuffle). Rank r of `world` takes positions r,
// r + world, r + 2 world, ... of that order; when world does not divide n the
// order is extended by wrapping around to its start so every rank gets
// ceil(n / world) samples (torch's DistributedSampler; pad_shards = 0 gives
// ranks floor or ceil instead, no item twice: for evaluation). The rank's
// samples form batches of `batch` in order; the last batch is partial and
// kept (the reference's DataLoader has drop_last = False) unless drop_last.
//
// Determinism: sample k of a batch is a pure function of (seed, epoch, item):
// its augmentation stream is rng_derive(seed, (epoch << 32) | item). The
// number of workers, their timing and the prefetch depth change nothing.
//
// Unreadable images (imagenet): the sample is skipped with a warning naming
// the file (once per file per loader) and replaced by the next item of the
// epoch's whole order (before sharding) that decodes, with the skipped
// sample's own augmentation stream mixed with the attempt number; no batch
// gets shorter. The epoch's count of skipped samples is reported through the
// warning callback when the epoch ends and by loader_stats. Only if no item
// of the set decodes is it an error.
//
// Memory: `prefetch` batch slots (2: double buffering), each images (batch,
// c, h, w) float32 and labels (batch) int32, allocated once through the
// caller's provider (e.g. pinned host memory for the GPU), 64-byte aligned
// by the default provider. Workers fill slots in order; the caller holds
// batches it got from loader_next until it releases them (a held slot is
// never written). Workers 0: samples are made in the caller's thread inside
// loader_next (no threads).
//
// Errors: -1 with a message (path and what) in err; nothing aborts.
#ifndef NAO_LOADER_H
#define NAO_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/augment.h"
#include "runtime/data.h"

typedef void *(*LoaderAllocFn)(void *user, size_t bytes);
typedef void (*LoaderFreeFn)(void *user, void *p, size_t bytes);
typedef void (*LoaderWarnFn)(void *user, const char *msg);

typedef struct {
  int batch;            // samples per batch (>= 1)
  int workers;          // threads; -1: online CPUs; 0: the caller's thread
  int prefetch;         // batch slots (>= 2; 0: 2)
  int shuffle;          // reshuffle every epoch
  int drop_last;        // drop the epoch's last, partial batch
  int pad_shards;       // wrap around so every rank gets ceil(n / world) samples
  uint64_t seed;        // shuffling and augmentation
  int rank, world;      // this process's shard
  AugmentSpec aug;
  LoaderAllocFn alloc;  // batch memory provider (NULL: aligned malloc)
  LoaderFreeFn free_fn;
  void *alloc_user;
  LoaderWarnFn warn;    // warnings (NULL: "nao: warning: MSG" on stderr)
  void *warn_user;
} LoaderOptions;

// batch 1, workers -1, prefetch 2, shuffle 1, pad_shards 1, world 1, the
// kind's train preset (eval preset when !train, which also turns off shuffle).
void loader_options_default(LoaderOptions *o, DataKind kind, int train);

typedef struct {
  float *images;      // (n, c, h, w)
  int32_t *labels;    // (n)
  int32_t *items;     // (n) the item each sample came from (after replacements)
  int n;              // samples: the batch size, fewer in a partial last batch
  int index;          // batch number within the epoch
  int epoch;
  int slot;           // internal
} LoaderBatch;

typedef struct {
  int epoch;
  long long samples;      // samples delivered this epoch so far
  long long skipped;      // unreadable items replaced this epoch
  long long skipped_total;
} LoaderStats;

typedef struct Loader Loader;

int loader_open(const DataSet *ds, const LoaderOptions *opt, Loader **out, char *err, size_t errlen);
// Stops the workers and frees the slots (batches still held become invalid).
void loader_close(Loader *ld);
void loader_sample_shape(const Loader *ld, int *c, int *h, int *w);
int loader_samples_per_epoch(const Loader *ld);  // this rank's, after drop_last
int loader_batches_per_epoch(const Loader *ld);

// Starts (or restarts) an epoch: cancels the current one, forgets batches
// still held, shuffles, and lets the workers fill the first slots.
int loader_start_epoch(Loader *ld, int epoch, char *err, size_t errlen);
// The same, beginning at batch first_batch (0..batches): the batches are the
// very ones a whole epoch would give from there on, without making the
// earlier ones (resuming in the middle of an epoch).
int loader_start_epoch_at(Loader *ld, int epoch, int first_batch, char *err, size_t errlen);
// The epoch's next batch, in order: 1 and *out set; 0 at the end of the
// epoch; -1 on error (message in err).
int loader_next(Loader *ld, LoaderBatch **out, char *err, size_t errlen);
// Hands a batch's slot back to the workers.
void loader_release(Loader *ld, LoaderBatch *b);
LoaderStats loader_stats(const Loader *ld);

#endif
