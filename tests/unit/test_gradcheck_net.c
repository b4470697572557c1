// tests/unit/test_gradcheck_net.c — gradient checks of whole small networks in
// the shape of NAO's (graph_nets.c: stem, normal and reduction cells with
// calibration, FR with cropping convs, node adds, identities, every pool
// flavour, drop-path on every branch, loose-end concat, aux head, dropout,
// label smoothing), in training and in evaluation mode, with and without the
// concat-as-views pass (before or after autodiff).
//
// Every trainable parameter is checked on sampled elements against central
// differences (tolerances: fd_defaults in ref_check.c), plus the gradients of
// the stem's output and of each cell's output. The three pass orders must give
// the same gradients up to rounding (they sum the same terms in other orders:
// relative 1e-12, far above double rounding of these sums, far below any
// mistake); so only one of them needs the (slow) finite differences.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "tests/unit/graph_builders.h"
#include "tests/unit/ref_check.h"

static int t_failures;

enum { VIEWS_NONE, VIEWS_BEFORE, VIEWS_AFTER };

typedef struct {
  ParamTable pt;
  IrGraph g;
} Net;

static int build(Net *n, const GbNet *o, int views, char *err, size_t errlen) {
  params_init(&n->pt);
  ir_init(&n->g, &n->pt, o->train ? IR_MODE_TRAIN : IR_MODE_EVAL);
  gb_nao_net(&n->g, o);
  if (views == VIEWS_BEFORE && ir_concat_to_views(&n->g, err, errlen) < 0) return -1;
  if (ir_autodiff(&n->g, err, errlen) < 0) return -1;
  if (views == VIEWS_AFTER && ir_concat_to_views(&n->g, err, errlen) < 0) return -1;
  return 0;
}

static void net_free(Net *n) {
  ir_free(&n->g);
  params_free(&n->pt);
}

// Forward tensors whose gradients are checked: the stem's output and every
// cell's output (the concat nodes named cells.I.concat).
static int pick_tensors(const IrGraph *g, int *ts, int max) {
  int n = 0;
  for (int i = 0; i < g->n_fwd_nodes && n < max; i++) {
    const IrNode *nd = &g->nodes[i];
    if ((nd->kind == IR_BN && strcmp(nd->name, "stem.1") == 0) ||
        (nd->kind == IR_CONCAT && strstr(nd->name, ".concat")))
      ts[n++] = nd->out[0];
  }
  return n;
}

// Gradient check of one variant (finite differences when fd), plan checks;
// returns its analytic gradients (caller frees).
static double *check_variant(const GbNet *o, int views, const char *what, const RefRun *run,
                             int fd) {
  char err[512];
  Net n;
  if (build(&n, o, views, err, sizeof err) < 0) {
    T_CHECK(0, "%s: %s", what, err);
    net_free(&n);
    return NULL;
  }
  const IrGraph *g = &n.g;
  RefState s;
  ref_init(&s, g, 3);
  gb_random_params(g, &s, 101);
  gb_random_data(g, &s, 102);
  int ts[8];
  int nts = pick_tensors(g, ts, 8);
  FdOptions fo;
  fd_defaults(&fo);
  fo.max_elems = 4;
  FdStats st;
  int rc = 0;
  if (fd) {
    rc = fd_check(g, &s, run, ts, nts, &fo, &st, err, sizeof err);
    T_CHECK(rc == 0, "%s: %s", what, err);
    T_CHECK(st.checked > 300 && st.max_grad > 1e-2, "%s: %d checked, max gradient %g", what,
            st.checked, st.max_grad);
    T_CHECK(st.skipped * 10 <= st.checked, "%s: %d skipped of %d", what, st.skipped,
            st.checked + st.skipped);
    printf("%-34s %3d params, %4d nodes: checked %4d skipped %2d max err/tol %.2e max |g| %.3g\n",
           what, n.pt.n, g->n_nodes, st.checked, st.skipped, st.max_err, st.max_grad);
  }
  // Gradients of the full run (fd_check leaves the analytic ones in s.grads
  // only for parameters; re-run to be sure nothing was perturbed).
  RefRun frozen = *run;
  frozen.freeze_buffers = 1;
  double *grads = NULL;
  if (ref_run(&s, &frozen, 0, g->n_nodes, err, sizeof err) == 0) {
    grads = xmalloc(sizeof(double) * n.pt.n_trainable);
    memcpy(grads, s.grads, sizeof(double) * n.pt.n_trainable);
  }
  for (int b = 1; b <= 3; b += 2)
    for (int reuse = 0; reuse <= 1; reuse++) {
      rc = pc_plan_matches_ref(g, reuse, b, 31, run, err, sizeof err);
      T_CHECK(rc == 0, "%s: plan (batch %d, reuse %d): %s", what, b, reuse, err);
    }
  ref_free(&s);
  net_free(&n);
  return grads;
}

static void same_grads(const double *a, const double *b, size_t n, const char *what) {
  if (!a || !b) return;
  double worst = 0;
  for (size_t j = 0; j < n; j++) {
    double d = fabs(a[j] - b[j]) / fmax(1e-6, fabs(a[j]));
    if (d > worst) worst = d;
  }
  T_CHECK(worst < 1e-12, "%s: gradients differ by %g (relative)", what, worst);
}

static void test_train(void) {
  GbNet o;
  gb_net_defaults(&o);
  // Step 500 of 1000: drop-path keep in cell i is 1 - 0.501 * (i+1)/3 * 0.3,
  // below 1, so paths can drop.
  RefRun run = {.step = 500, .total_steps = 1000, .seed = 3};
  ParamTable pt;
  params_init(&pt);
  IrGraph probe;
  ir_init(&probe, &pt, IR_MODE_TRAIN);
  gb_nao_net(&probe, &o);
  size_t n = pt.n_trainable;
  ir_free(&probe);
  params_free(&pt);
  // The variants with views are tied to the checked one by equal gradients.
  double *plain = check_variant(&o, VIEWS_NONE, "train", &run, 1);
  double *before = check_variant(&o, VIEWS_BEFORE, "train, views before autodiff", &run, 0);
  double *after = check_variant(&o, VIEWS_AFTER, "train, views after autodiff", &run, 0);
  same_grads(plain, before, n, "views before autodiff");
  same_grads(plain, after, n, "views after autodiff");
  free(plain);
  free(before);
  free(after);
}

static void test_eval(void) {
  GbNet o;
  gb_net_defaults(&o);
  o.train = 0;
  RefRun run = {.step = 0, .total_steps = 1, .seed = 3};
  free(check_variant(&o, VIEWS_BEFORE, "eval (running statistics), views", &run, 1));
}

static void test_wider(void) {
  // Two reductions (N R N R N) from 8x8: the second aux-free variant reaches 2x2.
  GbNet o;
  gb_net_defaults(&o);
  o.n_cells = 5;
  o.reduce = 2u | 8u;
  o.c = 2;
  RefRun run = {.step = 999, .total_steps = 1000, .seed = 9};
  free(check_variant(&o, VIEWS_BEFORE, "train, 5 cells, 2 reductions", &run, 1));
}

int main(void) {
  test_train();
  test_eval();
  test_wider();
  if (t_failures) {
    fprintf(stderr, "test_gradcheck_net: %d checks failed\n", t_failures);
    return 1;
  }
  printf("test_gradcheck_net: ok\n");
  return 0;
}
