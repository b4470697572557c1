// tests/unit/test_dist_buckets.c — gradient buckets (runtime/dist_buckets.h) of
// real lowered networks (NAONet-A ImageNet and CIFAR, training graphs with
// autodiff and plan, as the trainer builds them): every active gradient in
// exactly one bucket, buckets contiguous and made of whole entries, each
// ready after the last step that writes one of its gradients, launched in
// that order, within the caps, and early enough to overlap the backward pass.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/frontend.h"
#include "compiler/lower.h"
#include "compiler/util.h"
#include "runtime/dist_buckets.h"
#include "tests/unit/check.h"

typedef struct {
  NetSpec spec;
  ParamTable params;
  IrGraph g;
  Plan p;
  unsigned char *active;
} Net;

static int net_build(Net *n, const char *path, IrMode mode) {
  memset(n, 0, sizeof *n);
  if (nao_frontend_file(path, &n->spec, stderr) != 0) return -1;
  char err[400];
  params_init(&n->params);
  if (lower_declare_params(&n->spec, &n->params, err, sizeof err) != 0) return -1;
  ir_init(&n->g, &n->params, mode);
  LowerOptions lo;
  lower_options_init(&lo, mode);
  lo.with_loss = 1;
  PlanOptions po = {1};
  if (lower_network(&n->spec, &lo, &n->params, &n->g, err, sizeof err) != 0 ||
      ir_concat_to_views(&n->g, err, sizeof err) < 0 || ir_autodiff(&n->g, err, sizeof err) != 0 ||
      plan_build(&n->g, &po, &n->p, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", path, err);
    return -1;
  }
  n->active = xcalloc((size_t)n->params.n + 1, 1);
  ir_grad_params_written(&n->g, n->active);
  return 0;
}

static void net_free(Net *n) {
  plan_free(&n->p);
  ir_free(&n->g);
  params_free(&n->params);
  free(n->active);
}

// The invariants of dist_buckets.h, checked against the graph independently of
// the builder's walk.
static void check_buckets(const Net *n, const DistBuckets *b, size_t cap, size_t first_cap,
                          const char *what) {
  const ParamTable *t = &n->params;
  int *done = xmalloc((size_t)t->n * sizeof *done);
  int written = dist_grad_done_steps(&n->g, &n->p, done);
  int n_active = 0;
  size_t active_floats = 0;
  for (int e = 0; e < t->n; e++) {
    CHECK((done[e] >= 0) == (n->active[e] != 0), "%s: %s: done %d, active %d", what,
          t->items[e].name, done[e], n->active[e]);
    n_active += n->active[e] != 0;
    if (n->active[e]) active_floats += t->items[e].numel;
  }
  CHECK(written == n_active, "%s: %d written, %d active", what, written, n_active);
  CHECK(b->floats == active_floats, "%s: buckets cover %zu floats, active %zu", what, b->floats,
        active_floats);
  unsigned char *seen = xcalloc((size_t)t->n + 1, 1);
  int prev_ready = -1;
  for (int i = 0; i < b->n; i++) {
    const DistBucket *k = &b->b[i];
    size_t covered = 0, largest = 0;
    int ready = -1, min_done = 1 << 30, entries = 0;
    for (int r = k->first_range; r < k->first_range + k->n_ranges; r++) {
      size_t lo = b->ranges[r].offset, hi = lo + b->ranges[r].count;
      if (r > k->first_range)
        CHECK(b->ranges[r - 1].offset + b->ranges[r - 1].count < lo,
              "%s: bucket %d: slices %d and %d overlap, touch or are out of order", what, i, r - 1, r);
      for (int e = 0; e < t->n; e++) {
        const ParamInfo *pi = &t->items[e];
        if (!pi->trainable || pi->numel == 0) continue;
        size_t a = pi->offset, z = pi->offset + pi->numel;
        if (z <= lo || a >= hi) continue;
        CHECK(a >= lo && z <= hi, "%s: bucket %d slice [%zu, %zu) cuts %s", what, i, lo, hi, pi->name);
        CHECK(n->active[e], "%s: bucket %d holds inactive %s", what, i, pi->name);
        CHECK(!seen[e], "%s: %s in two buckets", what, pi->name);
        seen[e] = 1;
        covered += pi->numel;
        entries++;
        if (pi->numel > largest) largest = pi->numel;
        if (done[e] > ready) ready = done[e];
        if (done[e] < min_done) min_done = done[e];
      }
    }
    CHECK(covered == k->count, "%s: bucket %d holds %zu of its %zu floats in entries", what, i,
          covered, k->count);
    CHECK(entries == k->n_entries, "%s: bucket %d: %d entries, says %d", what, i, entries, k->n_entries);
    CHECK(ready == k->ready_step, "%s: bucket %d ready at %d, its gradients at %d", what, i,
          k->ready_step, ready);
    // Buckets follow the backward order: nothing in bucket i finishes after
    // something in bucket i + 1.
    CHECK(prev_ready <= min_done, "%s: bucket %d starts at step %d before bucket %d's end %d", what,
          i, min_done, i - 1, prev_ready);
    prev_ready = ready;
    // Under the cap but for one entry.
    CHECK((k->count - largest) * sizeof(float) < (first_cap > cap ? first_cap : cap),
          "%s: bucket %d has %zu floats, over the cap", what, i, k->count);
  }
  for (int e = 0; e < t->n; e++)
    if (n->active[e]) CHECK(seen[e], "%s: %s in no bucket", what, t->items[e].name);
  free(seen);
  free(done);
}

static void report(const Net *n, const DistBuckets *b, const char *what) {
  printf("%s: %zu gradient floats (%.1f MB), %d buckets in %d slices; backward steps %d..%d; "
         "MB@ready:", what, b->floats, (double)b->floats * 4 / 1e6, b->n, b->n_ranges,
         b->first_backward_step, n->p.n_steps - 1);
  for (int i = 0; i < b->n && i < 12; i++)
    printf(" %.1f@%.0f%%", (double)b->b[i].count * 4 / 1e6,
           100.0 * (b->b[i].ready_step - b->first_backward_step + 1) / b->backward_steps);
  printf("%s\n", b->n > 12 ? " ..." : "");
}

static void test_net(const char *path, IrMode mode) {
  Net n;
  if (net_build(&n, path, mode) != 0) {
    CHECK(0, "building %s", path);
    return;
  }
  char err[400];
  DistBuckets b;
  // Default caps.
  int rc = dist_buckets_build(&n.g, &n.p, n.active, DIST_BUCKET_CAP_DEFAULT,
                              DIST_BUCKET_FIRST_CAP_DEFAULT, &b, err, sizeof err);
  CHECK(rc == 0, "%s: %s", path, err);
  if (rc == 0) {
    check_buckets(&n, &b, DIST_BUCKET_CAP_DEFAULT, DIST_BUCKET_FIRST_CAP_DEFAULT, path);
    report(&n, &b, path);
    // Overlap: the first bucket is final within the first quarter of the
    // backward pass (networks larger than the first cap).
    CHECK(b.n >= 2 || b.floats * 4 < DIST_BUCKET_FIRST_CAP_DEFAULT, "%s: %d buckets", path, b.n);
    CHECK(b.n < 2 || b.b[0].ready_step - b.first_backward_step < b.backward_steps / 4,
          "%s: first bucket ready at backward step %d of %d", path,
          b.b[0].ready_step - b.first_backward_step, b.backward_steps);
    // The classifier (the last entries) is in the first bucket.
    const DistRange *r0 = &b.ranges[b.b[0].first_range + b.b[0].n_ranges - 1];
    CHECK(r0->offset + r0->count == n.params.n_trainable || !n.active[n.params.n - 1],
          "%s: the first bucket does not hold the array's end", path);
    dist_buckets_free(&b);
  }
  // Small caps: many buckets, same invariants.
  rc = dist_buckets_build(&n.g, &n.p, n.active, 64 << 10, 8 << 10, &b, err, sizeof err);
  CHECK(rc == 0, "%s: %s", path, err);
  if (rc == 0) {
    check_buckets(&n, &b, 64 << 10, 8 << 10, path);
    // Every bucket but the last holds at least the cap.
    CHECK(b.n >= 8 && (size_t)b.n <= b.floats * 4 / (64 << 10) + 1, "%s: %d small buckets", path, b.n);
    dist_buckets_free(&b);
  }
  // An inactive entry in the middle splits the buckets around it.
  int mid = -1;
  for (int e = n.params.n / 2; e < n.params.n; e++)
    if (n.active[e]) {
      mid = e;
      break;
    }
  if (mid >= 0) {
    n.active[mid] = 0;
    rc = dist_buckets_build(&n.g, &n.p, n.active, DIST_BUCKET_CAP_DEFAULT,
                            DIST_BUCKET_FIRST_CAP_DEFAULT, &b, err, sizeof err);
    CHECK(rc == 0, "%s: %s", path, err);
    // check_buckets asserts done == active, which no longer holds for mid:
    // check its exclusion directly.
    const ParamInfo *pi = &n.params.items[mid];
    for (int i = 0; rc == 0 && i < b.n_ranges; i++)
      CHECK(b.ranges[i].offset >= pi->offset + pi->numel || b.ranges[i].offset + b.ranges[i].count <= pi->offset,
            "%s: slice %d holds the inactive %s", path, i, pi->name);
    if (rc == 0) dist_buckets_free(&b);
  }
  net_free(&n);
}

// The host all-reduce over a single process changes nothing; over buckets
// of a gradient array it touches only the buckets' ranges (checked by
// dist_check under mpirun, tests/e2e/dist_collectives.sh).
static void test_single_allreduce(void) {
  Net n;
  if (net_build(&n, "generated/naonet-fashion-mnist.nao", IR_MODE_TRAIN) != 0) {
    CHECK(0, "building the fashion-mnist net");
    return;
  }
  DistBuckets b;
  char err[400];
  CHECK(dist_buckets_build(&n.g, &n.p, n.active, 4096, 1024, &b, err, sizeof err) == 0, "%s", err);
  size_t nf = n.params.n_trainable;
  float *g = xmalloc(nf * sizeof *g), *g0 = xmalloc(nf * sizeof *g0);
  for (size_t i = 0; i < nf; i++) g[i] = g0[i] = (float)i * 0.5f;
  Dist *d = dist_open_single();
  CHECK(dist_buckets_allreduce(d, &b, g, DIST_MEAN) == 0, "single all-reduce: %s", dist_error(d));
  CHECK(!memcmp(g, g0, nf * sizeof *g), "a single process's mean changed the gradients");
  CHECK(dist_seq(d) == 0, "a single process issued %lld collectives", dist_seq(d));
  dist_close(d);
  free(g), free(g0);
  dist_buckets_free(&b);
  net_free(&n);
}

int main(void) {
  test_net("generated/naonet-a-imagenet.nao", IR_MODE_TRAIN);
  test_net("generated/naonet-b-cifar10.nao", IR_MODE_TRAIN);
  test_net("generated/naonet-fashion-mnist.nao", IR_MODE_EVAL);  // no aux head: its entries inactive
  test_single_allreduce();
  return check_done("test_dist_buckets");
}
