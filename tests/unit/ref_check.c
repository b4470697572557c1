// tests/unit/ref_check.c — finite-difference and plan-versus-reference checks
// (ref_check.h).
#include "tests/unit/ref_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/plan.h"
#include "runtime/rng.h"
#include "tests/unit/graph_builders.h"

void fd_defaults(FdOptions *o) {
  // h = 1e-5 on values of order 1: truncation error h^2/6 * f''' ~ 1e-10 * f''',
  // rounding error ~ 1e-15 * |loss| / h ~ 1e-10. Observed |fd - ad| stays below
  // ~1e-9 on every graph of the tests; a wrong backward is off by a sizeable
  // fraction of the gradient. So 1e-7 absolute plus 1e-5 relative leaves two
  // orders of magnitude to noise and still catches any real mistake on
  // elements whose gradient is above ~1e-5.
  o->h = 1e-5;
  o->rtol = 1e-5;
  o->atol = 1e-7;
  o->max_elems = 12;
  o->seed = 1;
}

typedef struct {
  const IrGraph *g;
  RefState *s;
  RefRun run;
  const FdOptions *o;
  FdStats *st;
  char *err;
  size_t errlen;
} Fd;

// Loss and discrete choices of a forward run of nodes [from, n_fwd).
static int forward(Fd *f, int from, double *loss, uint64_t *dec) {
  f->s->decisions = 0;
  if (ref_run(f->s, &f->run, from, f->g->n_fwd_nodes, f->err, f->errlen) < 0) return -1;
  *loss = *ref_at(f->s, f->g->loss, 0, 0);
  *dec = f->s->decisions;
  return 0;
}

// Difference quotient of the loss at *v (a parameter or an activation),
// re-running from node `from`. *skip when the discrete choices changed.
static int quotient(Fd *f, double *v, int from, uint64_t dec0, double *fd, int *skip) {
  double keep = *v, lp, lm = 0.0;
  uint64_t dp, dm = 0;
  *v = keep + f->o->h;
  int rc = forward(f, from, &lp, &dp);
  *v = keep - f->o->h;
  if (rc == 0) rc = forward(f, from, &lm, &dm);
  *v = keep;
  *fd = (lp - lm) / (2 * f->o->h);
  *skip = dp != dec0 || dm != dec0;
  return rc;
}

static int compare(Fd *f, const char *what, size_t j, double fd, double ad) {
  double tol = f->o->atol + f->o->rtol * fmax(fabs(fd), fabs(ad));
  double ratio = fabs(fd - ad) / tol;
  if (!(ratio <= 1)) {
    snprintf(f->err, f->errlen, "gradient of %s[%zu]: backward %.12g, finite difference %.12g",
             what, j, ad, fd);
    return -1;
  }
  f->st->checked++;
  if (ratio > f->st->max_err) f->st->max_err = ratio;
  if (fabs(ad) > f->st->max_grad) f->st->max_grad = fabs(ad);
  return 0;
}

static size_t pick(Rng *r, size_t numel, int max, int k) {
  return numel <= (size_t)max ? (size_t)k : (size_t)rng_below(r, numel);
}

static int check_param(Fd *f, int p, const double *ad, int written, uint64_t dec0, Rng *r) {
  const ParamInfo *pi = &f->g->params->items[p];
  int n = pi->numel <= (size_t)f->o->max_elems ? (int)pi->numel : f->o->max_elems;
  for (int k = 0; k < n; k++) {
    size_t j = pick(r, pi->numel, f->o->max_elems, k);
    double fd;
    int skip;
    if (quotient(f, f->s->params + pi->offset + j, 0, dec0, &fd, &skip) < 0) return -1;
    if (skip) {
      f->st->skipped++;
      continue;
    }
    if (!written) {
      if (fabs(fd) > f->o->atol) {
        snprintf(f->err, f->errlen, "%s[%zu] has no gradient but the loss depends on it (%g)",
                 pi->name, j, fd);
        return -1;
      }
      f->st->zero_checked++;
      continue;
    }
    if (compare(f, pi->name, j, fd, ad[pi->offset + j]) < 0) return -1;
  }
  return 0;
}

static int grad_tensor_of(const IrGraph *g, int t) {
  int found = -1;
  for (int u = 0; u < g->n_tensors; u++)
    if (g->tensors[u].grad_of == t) {
      if (found >= 0) return -2;
      found = u;
    }
  return found;
}

// Loss of a forward run of nodes [from, n_fwd) starting from the state in
// `snap` with *v set to `value`.
static int rerun_from(Fd *f, const double *snap, int from, double *v, double value, double *loss,
                      uint64_t *dec) {
  memcpy(f->s->store, snap, sizeof(double) * f->s->store_len);
  *v = value;
  return forward(f, from, loss, dec);
}

// An activation t: the state right after its producer is saved once; every
// evaluation restores it, perturbs t and runs the nodes after the producer.
// (Re-running earlier nodes would rewrite t, and nodes that add into a
// tensor written earlier, like the second head's loss, need the sum as it
// stood after the producer.)
static int check_tensor(Fd *f, int t, Rng *r) {
  const IrGraph *g = f->g;
  int gt = grad_tensor_of(g, t);
  if (gt < 0) {
    snprintf(f->err, f->errlen, "tensor %s has %s gradient tensor", g->tensors[t].name,
             gt == -1 ? "no" : "more than one");
    return -1;
  }
  size_t per = ir_tensor_numel(&g->tensors[t]), total = per * (size_t)f->s->batch;
  double *ad = xmalloc(sizeof(double) * total);
  double *snap = xmalloc(sizeof(double) * (f->s->store_len + 1));
  ref_read(f->s, gt, ad);
  int from = g->tensors[t].producer + 1;
  int rc = ref_run(f->s, &f->run, 0, from, f->err, f->errlen);
  memcpy(snap, f->s->store, sizeof(double) * f->s->store_len);
  double l0, lp, lm;
  uint64_t dec0 = 0, dp, dm;
  if (rc == 0) rc = forward(f, from, &l0, &dec0);
  int n = total <= (size_t)f->o->max_elems ? (int)total : f->o->max_elems;
  for (int k = 0; k < n && rc == 0; k++) {
    size_t j = pick(r, total, f->o->max_elems, k);
    double *v = ref_at(f->s, t, (int)(j / per), j % per), keep = *v;
    rc = rerun_from(f, snap, from, v, keep + f->o->h, &lp, &dp);
    if (rc == 0) rc = rerun_from(f, snap, from, v, keep - f->o->h, &lm, &dm);
    if (rc < 0) break;
    if (dp != dec0 || dm != dec0) f->st->skipped++;
    else rc = compare(f, g->tensors[t].name, j, (lp - lm) / (2 * f->o->h), ad[j]);
  }
  memcpy(f->s->store, snap, sizeof(double) * f->s->store_len);
  free(snap);
  free(ad);
  return rc;
}

int fd_check(const IrGraph *g, RefState *s, const RefRun *run, const int *tensors, int n_tensors,
             const FdOptions *o, FdStats *st, char *err, size_t errlen) {
  Fd f = {g, s, *run, o, st, err, errlen};
  f.run.freeze_buffers = 1;
  memset(st, 0, sizeof *st);
  if (ref_run(s, &f.run, 0, g->n_nodes, err, errlen) < 0) return -1;
  // Analytic gradients, taken before any re-run.
  size_t np = g->params->n_trainable;
  double *ad = xmalloc(sizeof(double) * (np + 1));
  memcpy(ad, s->grads, sizeof(double) * np);
  unsigned char *written = xcalloc((size_t)g->params->n + 1, 1);
  unsigned char *used = xcalloc((size_t)g->params->n + 1, 1);
  ir_grad_params_written(g, written);
  for (int i = 0; i < g->n_fwd_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_param; k++) used[g->nodes[i].param[k]] = 1;
  Rng r;
  rng_seed(&r, o->seed);
  double l0;
  uint64_t dec0;
  int rc = forward(&f, 0, &l0, &dec0);
  for (int p = 0; p < g->params->n && rc == 0; p++)
    if (used[p] && g->params->items[p].trainable) rc = check_param(&f, p, ad, written[p], dec0, &r);
  // Tensor checks need the analytic activation gradients: run backward again.
  if (rc == 0 && n_tensors > 0) rc = ref_run(s, &f.run, 0, g->n_nodes, err, errlen);
  for (int k = 0; k < n_tensors && rc == 0; k++) rc = check_tensor(&f, tensors[k], &r);
  free(ad);
  free(written);
  free(used);
  return rc;
}

// ---------------------------------------------------------------- plan vs reference

static int same_values(const char *what, const double *a, const double *b, size_t n, char *err,
                       size_t errlen) {
  for (size_t j = 0; j < n; j++)
    if (!isfinite(a[j]) || a[j] != b[j]) {
      snprintf(err, errlen, "%s[%zu]: reference %.17g, through the plan %.17g", what, j, a[j], b[j]);
      return -1;
    }
  return 0;
}

static int same_tensor(const IrGraph *g, const RefState *a, const RefState *b, int t, char *err,
                       size_t errlen) {
  if (t < 0) return 0;
  size_t n = ir_tensor_numel(&g->tensors[t]) * (size_t)(a->stride[t] ? a->batch : 1);
  double *va = xmalloc(sizeof(double) * n), *vb = xmalloc(sizeof(double) * n);
  ref_read(a, t, va);
  ref_read(b, t, vb);
  int rc = same_values(g->tensors[t].name, va, vb, n, err, errlen);
  free(va);
  free(vb);
  return rc;
}

static int same_grads(const IrGraph *g, const RefState *a, const RefState *b, char *err,
                      size_t errlen) {
  unsigned char *written = xcalloc((size_t)g->params->n + 1, 1);
  ir_grad_params_written(g, written);
  int rc = 0;
  for (int p = 0; p < g->params->n && rc == 0; p++) {
    const ParamInfo *pi = &g->params->items[p];
    if (!pi->trainable) continue;
    const double *ga = a->grads + pi->offset, *gb = b->grads + pi->offset;
    if (written[p]) {
      rc = same_values(pi->name, ga, gb, pi->numel, err, errlen);
    } else {
      for (size_t j = 0; j < pi->numel && rc == 0; j++)
        if (!isnan(ga[j]) || !isnan(gb[j])) {
          snprintf(err, errlen, "gradient of %s written by no node changed", pi->name);
          rc = -1;
        }
    }
  }
  free(written);
  return rc;
}

static void copy_inputs(const IrGraph *g, const RefState *a, RefState *b) {
  memcpy(b->params, a->params, sizeof(double) * g->params->n_trainable);
  memcpy(b->buffers, a->buffers, sizeof(double) * g->params->n_buffer);
  int ts[2] = {g->input, g->labels};
  for (int k = 0; k < 2; k++) {
    if (ts[k] < 0) continue;
    size_t n = ir_tensor_numel(&g->tensors[ts[k]]) * (size_t)a->batch;
    double *v = xmalloc(sizeof(double) * n);
    ref_read(a, ts[k], v);
    ref_write(b, ts[k], v);
    free(v);
  }
}

int pc_plan_matches_ref(const IrGraph *g, int reuse, int batch, uint64_t seed, const RefRun *run,
                        char *err, size_t errlen) {
  Plan p;
  PlanOptions opt = {reuse};
  if (plan_build(g, &opt, &p, err, errlen) < 0) return -1;
  int rc = plan_verify(g, &p, err, errlen);
  RefState a, b;
  ref_init(&a, g, batch);
  ref_init_planned(&b, g, &p, batch);
  gb_random_params(g, &a, seed);
  gb_random_data(g, &a, seed + 1);
  copy_inputs(g, &a, &b);
  // Dead nodes (ir_dead_nodes) compute nothing anyone reads; the plan leaves
  // them out, so does the separate-storage run (their ReLU signs would enter
  // the decisions hash).
  unsigned char *dead = ir_dead_nodes(g);
  for (int i = 0; i < g->n_nodes && rc == 0; i++)
    if (!dead[i]) rc = ref_run_node(&a, run, i, err, errlen);
  free(dead);
  if (rc == 0) rc = ref_run_plan(&b, run, &p, err, errlen);
  int outs[3] = {g->logits, g->aux_logits, g->loss};
  for (int k = 0; k < 3 && rc == 0; k++) rc = same_tensor(g, &a, &b, outs[k], err, errlen);
  if (rc == 0) rc = same_grads(g, &a, &b, err, errlen);
  if (rc == 0)
    rc = same_values("buffers", a.buffers, b.buffers, g->params->n_buffer, err, errlen);
  if (rc == 0 && a.decisions != b.decisions) {
    snprintf(err, errlen, "discrete choices differ between the runs");
    rc = -1;
  }
  ref_free(&a);
  ref_free(&b);
  plan_free(&p);
  return rc;
}
