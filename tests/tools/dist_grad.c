// tests/tools/dist_grad.c — the data-parallel gradient, checked under
// `mpirun -np 2` (tests/e2e/dist_grad.sh).
//
//   dist_grad NET.nao [--bn-eval]
//
// Every rank builds the network's training graph (BN with batch statistics,
// or in eval mode with --bn-eval), the same initial weights and the same 2B
// random images and labels. Rank r computes the gradient of its half alone
// and all-reduces it (mean) over the gradient buckets, exactly as the cpu
// backend does (dist_buckets_allreduce). Independently, each rank computes
// both halves' gradients itself and averages them. Checks:
//  - the all-reduced gradient equals the mean of the two halves' gradients
//    computed separately, bit for bit (a sum of two floats does not depend on
//    their order; halving is exact);
//  - it differs from this rank's own half's gradient (the check is not empty);
//  - with --bn-eval, it equals the gradient of the whole batch 2B computed in
//    one process within float rounding (the loss is a mean over samples), and
//    the two halves' gradients differ from it by far more than that.
// Prints "ok: ..." on rank 0; exit status 1 when a check failed.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/frontend.h"
#include "compiler/util.h"
#include "runtime/dist.h"
#include "runtime/dist_buckets.h"
#include "runtime/exec_cpu.h"
#include "runtime/model_state.h"
#include "runtime/netbuild.h"

enum { B = 8 };

static int rank_g;

static double max_rel(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]) / (1e-3 + fabs((double)b[i]));
    if (d > m) m = d;
  }
  return m;
}

// Gradient of samples [first, first + n) of the batch into g (buffers copied:
// the running statistics a training graph updates do not carry over).
static int grad_of(const NetBuild *nb, const ModelState *m, const float *images,
                   const int32_t *labels, int first, int n, float *g) {
  const NetSpec *ns = &nb->spec;
  size_t per = (size_t)ns->in_channels * (size_t)ns->in_height * (size_t)ns->in_width;
  char err[400];
  CpuExec *ex = cpu_exec_create(&nb->train, &nb->train_plan, n, 1, err, sizeof err);
  if (!ex) {
    fprintf(stderr, "dist_grad: %s\n", err);
    return -1;
  }
  float *buffers = xmalloc((nb->params.n_buffer + 1) * sizeof *buffers);
  memcpy(buffers, m->buffers, nb->params.n_buffer * sizeof *buffers);
  memset(g, 0, nb->params.n_trainable * sizeof *g);
  cpu_exec_set_input(ex, images + (size_t)first * per, n);
  cpu_exec_set_labels(ex, labels + first, n);
  RunState rs = {0, 100, 7, 1};
  int rc = cpu_exec_run(ex, n, &rs, m->params, g, buffers);
  if (rc != 0) fprintf(stderr, "dist_grad: %s\n", cpu_exec_error(ex));
  cpu_exec_free(ex);
  free(buffers);
  return rc;
}

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "dist_grad: rank %d: check failed: ", rank_g);       \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
      fails++;                                                             \
    }                                                                      \
  } while (0)

static int run(Dist *d, const NetBuild *nb, const ModelState *m, int bn_eval) {
  int fails = 0, rank = dist_rank(d);
  const NetSpec *ns = &nb->spec;
  size_t per = (size_t)ns->in_channels * (size_t)ns->in_height * (size_t)ns->in_width;
  size_t np = nb->params.n_trainable;
  float *images = xmalloc(2 * B * per * sizeof *images);
  int32_t labels[2 * B];
  Rng rng;
  rng_derive(&rng, 42, 1);
  for (size_t i = 0; i < 2 * B * per; i++) images[i] = (float)rng_normal(&rng);
  for (int i = 0; i < 2 * B; i++) labels[i] = (int32_t)(rng_uniform(&rng) * ns->classes);
  float *mine = xmalloc(np * sizeof(float)), *g0 = xmalloc(np * sizeof(float));
  float *g1 = xmalloc(np * sizeof(float)), *ref = xmalloc(np * sizeof(float));
  float *whole = xmalloc(np * sizeof(float)), *own = xmalloc(np * sizeof(float));
  char err[400];
  DistBuckets bk;
  if (grad_of(nb, m, images, labels, rank * B, B, mine) || grad_of(nb, m, images, labels, 0, B, g0) ||
      grad_of(nb, m, images, labels, B, B, g1) || grad_of(nb, m, images, labels, 0, 2 * B, whole) ||
      dist_buckets_build(&nb->train, &nb->train_plan, nb->grad_written, 4096, 1024, &bk, err, sizeof err)) {
    fprintf(stderr, "dist_grad: setup failed %s\n", err);
    return 1;
  }
  memcpy(own, mine, np * sizeof *own);
  if (dist_buckets_allreduce(d, &bk, mine, DIST_MEAN) != 0) {
    fprintf(stderr, "dist_grad: %s\n", dist_error(d));
    dist_abort(d, 70);
  }
  for (size_t i = 0; i < np; i++) ref[i] = (g0[i] + g1[i]) * 0.5f;
  size_t differ = 0, first = np;
  for (size_t i = 0; i < np; i++)
    if (memcmp(&mine[i], &ref[i], sizeof(float)) != 0) differ++, first = first < i ? first : i;
  CHECK(differ == 0, "the all-reduced gradient differs from the mean of the halves in %zu of %zu "
        "values (first %zu: %.9g vs %.9g)", differ, np, first, first < np ? mine[first] : 0.0,
        first < np ? ref[first] : 0.0);
  double own_rel = max_rel(own, mine, np);
  CHECK(own_rel > 1e-2, "the mean equals this rank's own gradient (max rel. difference %g)", own_rel);
  double whole_rel = max_rel(mine, whole, np), half_rel = max_rel(g0, whole, np);
  if (bn_eval) {
    CHECK(whole_rel < 1e-4, "the mean differs from the whole batch's gradient by %g (rel.)", whole_rel);
    CHECK(half_rel > 100 * whole_rel && half_rel > 1e-2,
          "a half's gradient is as close to the whole batch's (%g) as the mean (%g)", half_rel, whole_rel);
  }
  double norm = 0;
  for (size_t i = 0; i < np; i++) norm += (double)mine[i] * mine[i];
  if (rank == 0 && fails == 0)
    printf("ok: %d ranks, %zu gradient values in %d buckets, norm %.6g; vs own half %.3g, vs whole "
           "batch %.3g (half vs whole %.3g)\n",
           dist_world(d), np, bk.n, sqrt(norm), own_rel, whole_rel, half_rel);
  dist_buckets_free(&bk);
  free(images), free(mine), free(g0), free(g1), free(ref), free(whole), free(own);
  return fails ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: dist_grad NET.nao [--bn-eval]\n");
    return 2;
  }
  int bn_eval = argc > 2 && !strcmp(argv[2], "--bn-eval");
  char err[1024];
  Dist *d = dist_open(NULL, NULL, err, sizeof err);
  if (!d) {
    fprintf(stderr, "dist_grad: %s\n", err);
    return 1;
  }
  rank_g = dist_rank(d);
  if (dist_world(d) != 2) {
    fprintf(stderr, "dist_grad: run me on 2 ranks (mpirun -np 2), not %d\n", dist_world(d));
    dist_close(d);
    return 2;
  }
  NetSpec spec;
  if (nao_frontend_file(argv[1], &spec, stderr) != 0) return 1;
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.eval = 0;
  o.train_bn_eval = bn_eval;
  o.drop_path_keep = 1, o.dropout_keep = 1;  // no masks: a sample's result is its own
  NetBuild nb;
  if (netbuild_create(&spec, &o, &nb, err, sizeof err) != 0) {
    fprintf(stderr, "dist_grad: %s\n", err);
    return 1;
  }
  ModelState m;
  model_state_init(&m, &nb.params);
  Rng rng;
  rng_derive(&rng, 3, 5);
  model_state_init_weights(&m, &rng);
  // Running statistics that are not the identity, so eval-mode BN matters.
  for (size_t i = 0; i < nb.params.n_buffer; i++) m.buffers[i] += 0.25f * (float)rng_uniform(&rng);
  int rc = run(d, &nb, &m, bn_eval);
  model_state_free(&m);
  netbuild_free(&nb);
  if (rc) dist_abort(d, rc);
  dist_close(d);
  return 0;
}
