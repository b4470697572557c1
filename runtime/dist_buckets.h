// runtime/dist_buckets.h — gradient buckets for the data-parallel all-reduce:
// which slices of the flat gradient array are reduced together, and after
// which step of the training plan each slice is final, so that a bucket's
// all-reduce can start while the backward pass goes on (docs/distributed.md,
// "Buckets").
//
// A bucket is a set of whole ParamTable entries, all active (written by the
// train graph; the others are never reduced), taken in the order their
// gradients become final in the backward pass: the first bucket holds the
// first gradients to finish, up to first_cap bytes (so communication starts
// early), the next ones up to cap bytes each; an entry larger than the cap is
// a bucket of its own. A bucket is ready after the latest plan step that
// writes one of its gradients, and is reduced as one collective over its
// slices of the flat array: its entries sorted by offset, adjacent ones
// merged (the state_dict order is close to the forward order, so a bucket is
// one slice or a few). Buckets are listed in the order they become ready,
// which is the order every rank launches them in.
#ifndef NAO_DIST_BUCKETS_H
#define NAO_DIST_BUCKETS_H

#include <stddef.h>

#include "compiler/ir.h"
#include "compiler/plan.h"
#include "runtime/dist.h"

typedef struct {
  int first_range, n_ranges;  // its slices: ranges[first_range ..]
  size_t count;             // floats
  int ready_step;           // index into plan->steps after which it is final
  int n_entries;            // ParamTable entries in it
} DistBucket;

typedef struct {
  int n;
  DistBucket *b;            // in launch order
  int n_ranges;
  DistRange *ranges;        // floats of the trainable array, increasing within a bucket
  size_t floats;            // floats covered (the active gradients)
  int backward_steps;       // plan steps of the backward pass (for overlap figures)
  int first_backward_step;  // index of the plan's first backward step
} DistBuckets;

enum {
  DIST_BUCKET_CAP_DEFAULT = 25 << 20,       // bytes (PyTorch DDP's default)
  DIST_BUCKET_FIRST_CAP_DEFAULT = 1 << 20,
  DIST_BUCKET_CAP_GPU = 8 << 20,            // the cuda runtime's: more, smaller buckets overlap
                                            //   more of the backward pass (docs/distributed.md)
};

// Builds the buckets of g's gradients under plan p. active: (g->params->n)
// entries the train graph writes (NetBuild.grad_written). Returns 0, or -1
// with a message (an active entry no plan step writes).
int dist_buckets_build(const IrGraph *g, const Plan *p, const unsigned char *active,
                       size_t cap_bytes, size_t first_cap_bytes, DistBuckets *out, char *err,
                       size_t errlen);
void dist_buckets_free(DistBuckets *b);

// The plan step (index into p->steps) after which each trainable entry's
// gradient is final: done[e] for every ParamTable entry, -1 where no step
// writes it. Returns the number of entries written.
int dist_grad_done_steps(const IrGraph *g, const Plan *p, int *done);

// All-reduces (op: SUM or MEAN) every bucket of grads (host memory), in launch
// order: the CPU backend's path, after its backward pass. Returns 0, or -1
// with dist_error(d) set.
int dist_buckets_allreduce(Dist *d, const DistBuckets *b, float *grads, DistOp op);

// After a rank's step on n samples: loss (its mean), top1 and top5 become
// those of every rank's samples, *images their count. One collective.
int dist_step_metrics(Dist *d, double *loss, int *top1, int *top5, int n, long long *images);

#endif
