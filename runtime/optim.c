// runtime/optim.c — SGD with momentum, weight decay and global-norm clipping
// over the flat arrays (optim.h), on the cpu kernels of cpu_kernels.h.
//
// The trainable entries of a ParamTable are laid out in table order, so
// consecutive entries that agree on (active, has_buf) form one run of the flat
// arrays and each run is one kernel call: a training graph that writes every
// gradient makes one call per step.
#include "runtime/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"

void sgd_state_init(SgdState *s, const ParamTable *t) {
  s->table = t;
  s->momentum = xcalloc(t->n_trainable ? t->n_trainable : 1, sizeof(float));
  s->has_buf = xcalloc((size_t)t->n + 1, 1);
}

void sgd_state_free(SgdState *s) {
  free(s->momentum);
  free(s->has_buf);
  memset(s, 0, sizeof *s);
}

typedef struct {
  size_t begin, end;  // floats of the flat trainable arrays
  int has_buf;
} OptRun;

// The next run of active entries from entry *i on; 0 when none is left.
// split_buf: entries with and without a momentum buffer end a run.
static int next_run(const SgdState *s, const unsigned char *active, int *i, int split_buf,
                    OptRun *r) {
  const ParamTable *t = s->table;
  while (*i < t->n && !(t->items[*i].trainable && active[*i])) (*i)++;
  if (*i >= t->n) return 0;
  const ParamInfo *p = &t->items[*i];
  r->begin = p->offset;
  r->end = p->offset + p->numel;
  r->has_buf = s->has_buf[*i];
  for ((*i)++; *i < t->n; (*i)++) {
    const ParamInfo *q = &t->items[*i];
    if (!q->trainable) continue;  // buffers live in the other array
    if (!active[*i] || q->offset != r->end) break;
    if (split_buf && s->has_buf[*i] != r->has_buf) break;
    r->end = q->offset + q->numel;
  }
  return 1;
}

double sgd_grad_norm(const SgdState *s, ThreadPool *tp, const unsigned char *active,
                     const float *grads) {
  double sum = 0;
  OptRun r;
  for (int i = 0; next_run(s, active, &i, 0, &r);)
    sum += cpu_sumsq(tp, grads + r.begin, r.end - r.begin);
  return sqrt(sum);
}

double sgd_step(SgdState *s, ThreadPool *tp, const unsigned char *active, float *params,
                float *grads, const SgdHyper *h) {
  double norm = sgd_grad_norm(s, tp, active, grads);
  OptRun r;
  if (h->grad_clip > 0) {
    float coef = cpu_clip_coef(norm, (float)h->grad_clip);
    if (coef < 1.0f)
      for (int i = 0; next_run(s, active, &i, 0, &r);)
        cpu_scale(tp, grads + r.begin, r.end - r.begin, coef);
  }
  for (int i = 0; next_run(s, active, &i, 1, &r);)
    cpu_sgd_step(tp, params + r.begin, grads + r.begin, s->momentum + r.begin, r.end - r.begin,
                 (float)h->lr, (float)h->momentum, (float)h->weight_decay, !r.has_buf);
  const ParamTable *t = s->table;
  for (int i = 0; i < t->n; i++)
    if (t->items[i].trainable && active[i]) s->has_buf[i] = 1;
  return norm;
}
