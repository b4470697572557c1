// tests/unit/test_optim.c — SGD over a ParamTable's flat arrays against a
// float64 transcription of torch.optim.SGD + clip_grad_norm_ (weight decay,
// momentum created on a parameter's first step, global-norm clipping), with
// parameters the graph does not write skipped entirely (PyTorch's grad None);
// results equal on 1 and 3 threads. And the init rules: kaiming normal
// (std sqrt(2 / fan_in)), linear bias U(+-1/sqrt(fan_in)), BN ones/zeros,
// drawn in table order from one stream.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/params.h"
#include "runtime/model_state.h"
#include "runtime/optim.h"
#include "runtime/param_init.h"
#include "runtime/threadpool.h"

static int failures;
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      failures++;                                                                \
    }                                                                            \
  } while (0)

// A table of 6 trainable entries (sizes chosen to cross the kernels' 64 Ki
// chunks) and one buffer between them.
static void make_table(ParamTable *t) {
  params_init(t);
  int d0[4] = {70000}, d1[4] = {3, 5}, d2[4] = {4}, d3[4] = {100000}, d4[4] = {7}, d5[4] = {9, 2};
  params_get(t, "a", 1, d0, 1, PINIT_KAIMING_NORMAL, 10, 0);
  params_get(t, "b", 2, d1, 1, PINIT_KAIMING_NORMAL, 5, 0);
  params_get(t, "buf", 1, d2, 0, PINIT_ONES, 0, 0);
  params_get(t, "c", 1, d3, 1, PINIT_LINEAR_BIAS, 25, 0);
  params_get(t, "d", 1, d4, 1, PINIT_ONES, 0, 0);
  params_get(t, "e", 2, d5, 1, PINIT_ZEROS, 0, 0);
}

typedef struct {
  double *p, *buf;
  unsigned char *has;
} Ref;

// torch.optim.SGD.step after clip_grad_norm_, in float64, per entry.
static double ref_step(const ParamTable *t, Ref *r, const unsigned char *active, const float *g,
                       const SgdHyper *h) {
  double sum = 0;
  for (int i = 0; i < t->n; i++) {
    const ParamInfo *p = &t->items[i];
    if (!p->trainable || !active[i]) continue;
    for (size_t k = 0; k < p->numel; k++) sum += (double)g[p->offset + k] * g[p->offset + k];
  }
  double norm = sqrt(sum), coef = h->grad_clip / (norm + 1e-6);
  if (coef > 1 || h->grad_clip <= 0) coef = 1;
  for (int i = 0; i < t->n; i++) {
    const ParamInfo *p = &t->items[i];
    if (!p->trainable || !active[i]) continue;
    for (size_t k = 0; k < p->numel; k++) {
      size_t j = p->offset + k;
      double d = g[j] * coef + h->weight_decay * r->p[j];
      r->buf[j] = r->has[i] ? h->momentum * r->buf[j] + d : d;
      r->p[j] -= h->lr * r->buf[j];
    }
    r->has[i] = 1;
  }
  return norm;
}

static double max_rel(const float *a, const double *b, size_t n) {
  double e = 0, s = 1e-30;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    e = d > e ? d : e;
    s = fabs(b[i]) > s ? fabs(b[i]) : s;
  }
  return e / s;
}

static void run_steps(int threads, float *out_params, float *out_mom) {
  ParamTable t;
  make_table(&t);
  ModelState m;
  model_state_init(&m, &t);
  Rng rng;
  rng_seed(&rng, 11);
  model_state_init_weights(&m, &rng);
  size_t n = t.n_trainable;
  Ref r = {calloc(n, 8), calloc(n, 8), calloc((size_t)t.n, 1)};
  for (size_t i = 0; i < n; i++) r.p[i] = m.params[i];
  float *g = malloc(n * 4), *g_saved = malloc(n * 4);
  ThreadPool *tp = tp_create(threads);
  // Step 1: "b" and "e" untouched (not written); steps 2-3: all but "e";
  // step 4: all. Clipping active in steps 1 and 3 (norm far above 5).
  unsigned char act[4][7] = {{1, 0, 0, 1, 1, 0}, {1, 1, 0, 1, 1, 0}, {1, 1, 0, 1, 1, 0}, {1, 1, 0, 1, 1, 1}};
  double scale[4] = {3, 0.001, 2, 0.01};
  for (int s = 0; s < 4; s++) {
    for (size_t i = 0; i < n; i++) g[i] = (float)(rng_normal(&rng) * scale[s]);
    memcpy(g_saved, g, n * 4);
    SgdHyper h = {0.05 + 0.01 * s, 0.9, 3e-4, 5.0};
    double want = ref_step(&t, &r, act[s], g_saved, &h);
    double got = sgd_step(&m.sgd, tp, act[s], m.params, g, &h);
    CHECK(fabs(got - want) <= 1e-6 * want);  // float lanes within 1024-element blocks
    CHECK(max_rel(m.params, r.p, n) < 1e-6);
    CHECK(max_rel(m.sgd.momentum, r.buf, n) < 1e-6);
    CHECK(!memcmp(m.sgd.has_buf, r.has, (size_t)t.n));
  }
  // "e" only ever got one step; "b" three, so its values moved.
  const ParamInfo *e = &t.items[params_find(&t, "e")];
  for (size_t k = 0; k < e->numel; k++) CHECK(m.params[e->offset + k] != 0.0f || r.p[e->offset + k] == 0.0);
  memcpy(out_params, m.params, n * 4);
  memcpy(out_mom, m.sgd.momentum, n * 4);
  tp_destroy(tp);
  free(g), free(g_saved), free(r.p), free(r.buf), free(r.has);
  model_state_free(&m);
  params_free(&t);
}

static void test_sgd(void) {
  ParamTable t;
  make_table(&t);
  size_t n = t.n_trainable;
  params_free(&t);
  float *p1 = malloc(n * 4), *m1 = malloc(n * 4), *p3 = malloc(n * 4), *m3 = malloc(n * 4);
  run_steps(1, p1, m1);
  run_steps(3, p3, m3);
  CHECK(!memcmp(p1, p3, n * 4) && !memcmp(m1, m3, n * 4));
  free(p1), free(m1), free(p3), free(m3);
}

// A skipped parameter keeps its value and gets no momentum, whatever its slot holds.
static void test_skipped_untouched(void) {
  ParamTable t;
  make_table(&t);
  ModelState m;
  model_state_init(&m, &t);
  Rng rng;
  rng_seed(&rng, 5);
  model_state_init_weights(&m, &rng);
  float *g = malloc(t.n_trainable * 4);
  for (size_t i = 0; i < t.n_trainable; i++) g[i] = 1e6f;  // garbage in unwritten slots
  unsigned char act[7] = {1, 0, 0, 1, 1, 1};
  const ParamInfo *b = &t.items[1];
  float before[15];
  memcpy(before, m.params + b->offset, sizeof before);
  SgdHyper h = {0.1, 0.9, 0.1, 0};
  sgd_step(&m.sgd, NULL, act, m.params, g, &h);
  CHECK(!memcmp(before, m.params + b->offset, sizeof before));
  CHECK(!m.sgd.has_buf[1] && m.sgd.has_buf[0]);
  free(g);
  model_state_free(&m);
  params_free(&t);
}

static void test_init(void) {
  ParamTable t;
  make_table(&t);
  ModelState m, m2;
  model_state_init(&m, &t);
  model_state_init(&m2, &t);
  Rng r1, r2;
  rng_seed(&r1, 77);
  rng_seed(&r2, 77);
  model_state_init_weights(&m, &r1);
  model_state_init_weights(&m2, &r2);
  CHECK(!memcmp(m.params, m2.params, t.n_trainable * 4));
  const ParamInfo *a = &t.items[0], *c = &t.items[3], *d = &t.items[4], *e = &t.items[5];
  double s = 0, s2 = 0;
  for (size_t k = 0; k < a->numel; k++) s += m.params[a->offset + k], s2 += (double)m.params[a->offset + k] * m.params[a->offset + k];
  double mean = s / a->numel, std = sqrt(s2 / a->numel - mean * mean);
  CHECK(fabs(mean) < 0.01 && fabs(std - sqrt(2.0 / 10)) < 0.01);  // 70000 draws: 5 sigma
  double bound = 1 / sqrt(25.0), lo = 1, hi = -1;
  for (size_t k = 0; k < c->numel; k++) {
    float v = m.params[c->offset + k];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  CHECK(lo >= -bound && hi <= bound && lo < -0.99 * bound && hi > 0.99 * bound);
  for (size_t k = 0; k < d->numel; k++) CHECK(m.params[d->offset + k] == 1.0f);
  for (size_t k = 0; k < e->numel; k++) CHECK(m.params[e->offset + k] == 0.0f);
  for (size_t k = 0; k < t.n_buffer; k++) CHECK(m.buffers[k] == 1.0f);
  model_state_free(&m);
  model_state_free(&m2);
  params_free(&t);
}

int main(void) {
  test_sgd();
  test_skipped_untouched();
  test_init();
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
