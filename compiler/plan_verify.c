// compiler/plan_verify.c — an independent check of a Plan against its graph
// (plan_verify in plan.h).
//
// Recomputes everything from the graph and the step list, sharing no code with
// plan.c's liveness and placement (only which nodes may be left out:
// in-place concats and ir_dead_nodes): the order (each node once; every read finds
// all the channels it reads written at an earlier step, a channel map per root
// tensor), the locations of views, and, for every pair of root tensors whose
// live step ranges meet, disjoint memory. Quadratic in the number of tensors:
// meant for tests and debugging, fast enough for whole networks.
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/plan.h"

typedef struct {
  const IrGraph *g;
  const Plan *p;
  int **first_write;  // per root: step that first wrote each channel (INT_MAX: never)
  int *lo, *hi;       // per root: live step range
  char *err;
  size_t errlen;
} Pv;

static int pv_fail(Pv *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pv_fail(Pv *v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->err, v->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static int chans(const IrTensor *t) { return t->kind == IR_T_ACT ? t->c : 1; }

static int check_steps(Pv *v) {
  const IrGraph *g = v->g;
  unsigned char *seen = xcalloc((size_t)g->n_nodes + 1, 1);
  int rc = 0;
  for (int s = 0; s < v->p->n_steps && rc == 0; s++) {
    int i = v->p->steps[s];
    if (i < 0 || i >= g->n_nodes) rc = pv_fail(v, "plan_verify: step %d: bad node index %d", s, i);
    else if (seen[i]) rc = pv_fail(v, "plan_verify: node %d (%s) runs twice", i, g->nodes[i].name);
    else seen[i] = 1;
  }
  unsigned char *dead = ir_dead_nodes(g);
  for (int i = 0; i < g->n_nodes && rc == 0; i++)
    if (!seen[i] && !ir_concat_in_place(g, i) && !dead[i])
      rc = pv_fail(v, "plan_verify: node %s (%s) is not among the steps", g->nodes[i].name,
                   ir_kind_name(g->nodes[i].kind));
  free(dead);
  free(seen);
  return rc;
}

static int check_locs(Pv *v) {
  const IrGraph *g = v->g;
  const Plan *p = v->p;
  for (int t = 0; t < g->n_tensors; t++) {
    const IrTensor *x = &g->tensors[t];
    const PlanLoc *l = &p->loc[t];
    if (v->lo[ir_root(g, t)] == INT_MAX) continue;  // never touched
    int batched = x->kind == IR_T_ACT || x->kind == IR_T_LABELS;
    if (l->region != (batched ? LOC_ARENA : LOC_FIXED))
      return pv_fail(v, "plan_verify: %s is in the wrong region", x->name);
    if (x->view_of < 0) {
      size_t per = x->kind == IR_T_LABELS ? 1 : ir_tensor_numel(x);
      int ok = batched ? l->unscaled == 0 && l->sample_stride == per &&
                             l->scaled + per <= p->arena_per_image
                       : l->unscaled + per <= p->fixed_floats;
      if (!ok) return pv_fail(v, "plan_verify: %s has a bad location", x->name);
      continue;
    }
    int r = ir_root(g, t);
    const PlanLoc *b = &p->loc[r];
    size_t want = b->unscaled + (size_t)ir_root_offset(g, t) * (size_t)x->h * (size_t)x->w;
    if (l->region != b->region || l->scaled != b->scaled || l->sample_stride != b->sample_stride ||
        l->unscaled != want)
      return pv_fail(v, "plan_verify: view %s is not at its place in %s", x->name,
                     g->tensors[r].name);
  }
  return 0;
}

// Channels [c0, c1) of root r, read at step s: all written before s.
static int check_read(Pv *v, int s, int t, const IrNode *n) {
  const IrGraph *g = v->g;
  int r = ir_root(g, t);
  int c0 = ir_root_offset(g, t), c1 = c0 + chans(&g->tensors[t]);
  for (int c = c0; c < c1; c++)
    if (v->first_write[r][c] >= s)
      return pv_fail(v, "plan_verify: %s reads %s before it is written", n->name,
                     g->tensors[t].name);
  return 0;
}

static int check_write(Pv *v, int s, int t, int adds, const IrNode *n) {
  const IrGraph *g = v->g;
  int r = ir_root(g, t);
  int c0 = ir_root_offset(g, t), c1 = c0 + chans(&g->tensors[t]);
  for (int c = c0; c < c1; c++) {
    int w = v->first_write[r][c];
    if (adds && w >= s)
      return pv_fail(v, "plan_verify: %s adds to %s before it is written", n->name,
                     g->tensors[t].name);
    if (!adds && w < s)
      return pv_fail(v, "plan_verify: %s overwrites %s", n->name, g->tensors[t].name);
    if (w > s) v->first_write[r][c] = s;
  }
  return 0;
}

static void touch(Pv *v, int t, int s) {
  int r = ir_root(v->g, t);
  if (v->lo[r] > s) v->lo[r] = s;
  if (v->hi[r] < s) v->hi[r] = s;
}

static int check_order(Pv *v) {
  const IrGraph *g = v->g;
  for (int s = 0; s < v->p->n_steps; s++) {
    const IrNode *n = &g->nodes[v->p->steps[s]];
    for (int k = 0; k < n->n_in; k++) {
      if (check_read(v, s, n->in[k], n) < 0) return -1;
      touch(v, n->in[k], s);
    }
    for (int k = 0; k < n->n_out; k++) {
      if (check_write(v, s, n->out[k], (n->accumulate >> k) & 1, n) < 0) return -1;
      touch(v, n->out[k], s);
    }
  }
  int outs[3] = {g->logits, g->aux_logits, g->loss};
  for (int k = 0; k < 3; k++)
    if (outs[k] >= 0 && v->hi[ir_root(g, outs[k])] >= 0) v->hi[ir_root(g, outs[k])] = INT_MAX;
  return 0;
}

static int check_overlap(Pv *v) {
  const IrGraph *g = v->g;
  const Plan *p = v->p;
  for (int a = 0; a < g->n_tensors; a++) {
    if (g->tensors[a].view_of >= 0 || v->lo[a] == INT_MAX) continue;
    const IrTensor *ta = &g->tensors[a];
    size_t a0 = p->loc[a].region == LOC_ARENA ? p->loc[a].scaled : p->loc[a].unscaled;
    size_t a1 = a0 + (ta->kind == IR_T_LABELS ? 1 : ir_tensor_numel(ta));
    for (int b = a + 1; b < g->n_tensors; b++) {
      if (g->tensors[b].view_of >= 0 || v->lo[b] == INT_MAX) continue;
      if (p->loc[a].region != p->loc[b].region) continue;
      if (v->lo[a] > v->hi[b] || v->lo[b] > v->hi[a]) continue;  // never live together
      const IrTensor *tb = &g->tensors[b];
      size_t b0 = p->loc[b].region == LOC_ARENA ? p->loc[b].scaled : p->loc[b].unscaled;
      size_t b1 = b0 + (tb->kind == IR_T_LABELS ? 1 : ir_tensor_numel(tb));
      if (a0 < b1 && b0 < a1)
        return pv_fail(v, "plan_verify: %s and %s are live together in the same memory",
                       ta->name, tb->name);
    }
  }
  return 0;
}

int plan_verify(const IrGraph *g, const Plan *p, char *err, size_t errlen) {
  if (ir_check_indices(g, err, errlen) < 0) return -1;
  if (!p->loc || (p->n_steps && !p->steps)) {
    snprintf(err, errlen, "plan_verify: the plan is empty");
    return -1;
  }
  Pv v;
  memset(&v, 0, sizeof v);
  v.g = g;
  v.p = p;
  v.err = err;
  v.errlen = errlen;
  int nt = g->n_tensors;
  v.first_write = xcalloc((size_t)nt + 1, sizeof *v.first_write);
  v.lo = xmalloc(sizeof(int) * ((size_t)nt + 1));
  v.hi = xmalloc(sizeof(int) * ((size_t)nt + 1));
  for (int t = 0; t < nt; t++) {
    v.lo[t] = INT_MAX;
    v.hi[t] = -1;
    if (g->tensors[t].view_of >= 0) continue;
    int c = chans(&g->tensors[t]);
    v.first_write[t] = xmalloc(sizeof(int) * (size_t)c);
    for (int k = 0; k < c; k++) v.first_write[t][k] = INT_MAX;
  }
  int rc = check_steps(&v);
  if (rc == 0) rc = check_order(&v);
  if (rc == 0) rc = check_locs(&v);
  if (rc == 0) rc = check_overlap(&v);
  for (int t = 0; t < nt; t++) free(v.first_write[t]);
  free(v.first_write);
  free(v.lo);
  free(v.hi);
  return rc;
}
