// runtime/dist_buckets.c — gradient buckets (dist_buckets.h).
//
// Which node writes which gradient follows ir.h's contract: CONV_BWD_FILTER
// writes g(param 0), BN_BWD and LINEAR_BWD write g(param 0) and g(param 1).
// Accumulating writers (a parameter serving several nodes) make the gradient
// final only after the last of them, which is what "latest step" takes.
#include "runtime/dist_buckets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"

// Gradient slots a node writes: their ParamTable entries into out; returns how many.
static int grads_written(const IrNode *n, int out[2]) {
  switch (n->kind) {
    case IR_CONV_BWD_FILTER:
      out[0] = n->param[0];
      return 1;
    case IR_BN_BWD:
    case IR_LINEAR_BWD:
      out[0] = n->param[0], out[1] = n->param[1];
      return 2;
    default:
      return 0;
  }
}

int dist_grad_done_steps(const IrGraph *g, const Plan *p, int *done) {
  const ParamTable *t = g->params;
  for (int e = 0; e < t->n; e++) done[e] = -1;
  for (int s = 0; s < p->n_steps; s++) {
    int w[2];
    int k = grads_written(&g->nodes[p->steps[s]], w);
    for (int j = 0; j < k; j++)
      if (w[j] >= 0 && w[j] < t->n) done[w[j]] = s;
  }
  int n = 0;
  for (int e = 0; e < t->n; e++) n += done[e] >= 0;
  return n;
}

// Active trainable entries in the order their gradients become final (ties:
// higher offset first).
typedef struct {
  int e, done;
  size_t offset;
} EntryDone;

static int cmp_done(const void *a, const void *b) {
  const EntryDone *x = a, *y = b;
  if (x->done != y->done) return x->done < y->done ? -1 : 1;
  return x->offset > y->offset ? -1 : x->offset < y->offset ? 1 : 0;
}

static EntryDone *entries_by_done(const ParamTable *t, const unsigned char *active, const int *done,
                                  int *n_out) {
  EntryDone *v = xmalloc((size_t)(t->n + 1) * sizeof *v);
  int n = 0;
  for (int e = 0; e < t->n; e++)
    if (active[e] && t->items[e].trainable && t->items[e].numel > 0)
      v[n++] = (EntryDone){e, done[e], t->items[e].offset};
  qsort(v, (size_t)n, sizeof *v, cmp_done);
  *n_out = n;
  return v;
}

static int cmp_offset(const void *a, const void *b) {
  const EntryDone *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

// Closes the bucket of entries v[0..n): its slices, its readiness.
static void add_bucket(const ParamTable *t, EntryDone *v, int n, DistBuckets *out, int *cap_b,
                       int *cap_r) {
  if (out->n == *cap_b) {
    *cap_b = *cap_b ? 2 * *cap_b : 16;
    out->b = xrealloc(out->b, (size_t)*cap_b * sizeof *out->b);
  }
  DistBucket *b = &out->b[out->n++];
  memset(b, 0, sizeof *b);
  b->first_range = out->n_ranges;
  b->n_entries = n;
  b->ready_step = -1;
  for (int i = 0; i < n; i++)
    if (v[i].done > b->ready_step) b->ready_step = v[i].done;
  qsort(v, (size_t)n, sizeof *v, cmp_offset);
  for (int i = 0; i < n; i++) {
    size_t numel = t->items[v[i].e].numel;
    DistRange *last = b->n_ranges ? &out->ranges[out->n_ranges - 1] : NULL;
    b->count += numel;
    if (last && last->offset + last->count == v[i].offset) {
      last->count += numel;
      continue;
    }
    if (out->n_ranges == *cap_r) {
      *cap_r = *cap_r ? 2 * *cap_r : 32;
      out->ranges = xrealloc(out->ranges, (size_t)*cap_r * sizeof *out->ranges);
    }
    out->ranges[out->n_ranges++] = (DistRange){v[i].offset, numel};
    b->n_ranges++;
  }
  out->floats += b->count;
}

static void backward_extent(const IrGraph *g, const Plan *p, DistBuckets *out) {
  out->first_backward_step = p->n_steps;
  for (int s = 0; s < p->n_steps; s++)
    if (p->steps[s] >= g->n_fwd_nodes) {
      out->first_backward_step = s;
      break;
    }
  out->backward_steps = p->n_steps - out->first_backward_step;
}

int dist_buckets_build(const IrGraph *g, const Plan *p, const unsigned char *active,
                       size_t cap_bytes, size_t first_cap_bytes, DistBuckets *out, char *err,
                       size_t errlen) {
  memset(out, 0, sizeof *out);
  const ParamTable *t = g->params;
  int *done = xmalloc((size_t)(t->n + 1) * sizeof *done);
  dist_grad_done_steps(g, p, done);
  for (int e = 0; e < t->n; e++)
    if (active[e] && t->items[e].trainable && done[e] < 0) {
      snprintf(err, errlen, "gradient buckets: no step of the plan writes the gradient of %s",
               t->items[e].name);
      free(done);
      return -1;
    }
  int n, cap_b = 0, cap_r = 0;
  EntryDone *v = entries_by_done(t, active, done, &n);
  size_t limit = first_cap_bytes ? first_cap_bytes : cap_bytes, bytes = 0;
  int start = 0;
  for (int i = 0; i < n; i++) {
    bytes += t->items[v[i].e].numel * sizeof(float);
    if (bytes >= limit || i == n - 1) {
      add_bucket(t, v + start, i + 1 - start, out, &cap_b, &cap_r);
      start = i + 1, bytes = 0, limit = cap_bytes;
    }
  }
  backward_extent(g, p, out);
  free(v);
  free(done);
  return 0;
}

void dist_buckets_free(DistBuckets *b) {
  free(b->b);
  free(b->ranges);
  memset(b, 0, sizeof *b);
}

int dist_step_metrics(Dist *d, double *loss, int *top1, int *top5, int n, long long *images) {
  double v[4] = {*loss * n, *top1, *top5, n};
  if (dist_allreduce_f64(d, v, 4, DIST_SUM, "step loss and hits") != 0) return -1;
  *loss = v[3] > 0 ? v[0] / v[3] : 0;
  *top1 = (int)v[1], *top5 = (int)v[2], *images = (long long)v[3];
  return 0;
}

int dist_buckets_allreduce(Dist *d, const DistBuckets *b, float *grads, DistOp op) {
  if (dist_world(d) == 1) return 0;
  for (int i = 0; i < b->n; i++)
    if (dist_allreduce_ranges_f32(d, grads, b->ranges + b->b[i].first_range, b->b[i].n_ranges, op,
                                  "gradient all-reduce") != 0)
      return -1;
  return 0;
}
