// tests/unit/cpu_testutil.c — helpers of cpu_testutil.h.
#include "tests/unit/cpu_testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/rng.h"

int cput_failures = 0;

void cput_fill(float *x, size_t n, uint64_t seed, float lo, float hi) {
  Rng r;
  rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)rng_uniform(&r);
}

CputView cput_view(int n, size_t numel, size_t gap, uint64_t seed) {
  CputView v;
  v.n = n;
  v.numel = numel;
  v.ss = numel + gap;
  v.total = (size_t)n * v.ss + 16;
  v.base = xmalloc(sizeof(float) * v.total);
  for (size_t i = 0; i < v.total; i++) v.base[i] = NAN;
  v.p = v.base + 3;  // unaligned on purpose
  Rng r;
  rng_seed(&r, seed);
  for (int s = 0; s < n; s++)
    for (size_t i = 0; i < numel; i++) v.p[(size_t)s * v.ss + i] = (float)(2 * rng_uniform(&r) - 1);
  return v;
}

void cput_view_free(CputView *v) {
  free(v->base);
  v->base = v->p = NULL;
}

int cput_view_gaps_intact(const CputView *v) {
  for (size_t i = 0; i < v->total; i++) {
    ptrdiff_t off = (v->base + i) - v->p;
    int inside = off >= 0 && (size_t)off < (size_t)v->n * v->ss && (size_t)off % v->ss < v->numel;
    if (!inside && !isnan(v->base[i])) return 0;
  }
  return 1;
}

void cput_view_get(const CputView *v, float *dense) {
  for (int s = 0; s < v->n; s++)
    memcpy(dense + (size_t)s * v->numel, v->p + (size_t)s * v->ss, sizeof(float) * v->numel);
}

void cput_view_get_d(const CputView *v, double *dense) {
  for (int s = 0; s < v->n; s++)
    for (size_t i = 0; i < v->numel; i++) dense[(size_t)s * v->numel + i] = v->p[(size_t)s * v->ss + i];
}

void cput_view_set(CputView *v, const float *dense) {
  for (int s = 0; s < v->n; s++)
    memcpy(v->p + (size_t)s * v->ss, dense + (size_t)s * v->numel, sizeof(float) * v->numel);
}

double cput_err(const float *got, const double *want, size_t n, double atol, double rtol) {
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]) / (atol + rtol * fabs(want[i]));
    if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
  }
  return worst;
}

double cput_maxabs(const double *x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
  return m;
}

void cput_close(const char *what, const float *got, const double *want, size_t n, double atol,
                double rtol) {
  size_t worst_i = 0;
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]) / (atol + rtol * fabs(want[i]));
    if (isnan(e)) e = INFINITY;
    if (e > worst) {
      worst = e;
      worst_i = i;
    }
  }
  if (worst > 1) {
    fprintf(stderr, "%s: element %zu is %.9g, expected %.9g (error %.3g of tolerance)\n", what,
            worst_i, (double)got[worst_i], want[worst_i], worst);
    cput_failures++;
  }
}

// ---------------------------------------------------------------- plans
static void cput_loc(const IrGraph *g, Plan *p, int t, size_t *arena, size_t *fixed, char *done) {
  if (done[t]) return;
  const IrTensor *tt = &g->tensors[t];
  PlanLoc *l = &p->loc[t];
  size_t numel = ir_tensor_numel(tt);
  if (tt->view_of >= 0) {
    cput_loc(g, p, tt->view_of, arena, fixed, done);
    *l = p->loc[tt->view_of];
    l->unscaled += (size_t)tt->chan_offset * (size_t)tt->h * (size_t)tt->w;
  } else if (tt->kind == IR_T_ACT || tt->kind == IR_T_LABELS) {
    l->region = LOC_ARENA;
    l->scaled = *arena;
    l->unscaled = 0;
    l->sample_stride = numel;
    *arena += numel;
  } else {
    l->region = LOC_FIXED;
    l->scaled = 0;
    l->unscaled = *fixed;
    l->sample_stride = 0;
    *fixed += numel;
  }
  done[t] = 1;
}

void cput_plan_simple(const IrGraph *g, Plan *p) {
  memset(p, 0, sizeof *p);
  p->n_steps = g->n_nodes;
  p->steps = xmalloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
  for (int i = 0; i < g->n_nodes; i++) p->steps[i] = i;
  p->loc = xcalloc((size_t)(g->n_tensors ? g->n_tensors : 1), sizeof *p->loc);
  char *done = xcalloc((size_t)(g->n_tensors ? g->n_tensors : 1), 1);
  size_t arena = 0, fixed = 0;
  for (int t = 0; t < g->n_tensors; t++) cput_loc(g, p, t, &arena, &fixed, done);
  free(done);
  p->arena_per_image = arena;
  p->fixed_floats = fixed;
  p->naive_per_image = arena;
}

void cput_plan_free(Plan *p) {
  free(p->steps);
  free(p->loc);
  memset(p, 0, sizeof *p);
}
