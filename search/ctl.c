// search/ctl.c — the float32 controller object: creation, the training step
// (forward, backward, global-norm clipping, Adam with L2 weight decay as
// PyTorch's torch.optim.Adam does it), epochs with on-the-fly augmentation and
// dropout, predictions and the inference step.
//
// Threads: a batch is split into cfg.threads contiguous parts; each worker runs
// forward and backward on its part with its own workspace (BLAS called
// single-threaded meanwhile), and the gradient is the parts' gradients weighted
// by their share of the batch. Samples are independent, so this is the same
// function; only the summation order of the gradient depends on the thread
// count. Predictions and decodings do not depend on it.
//
// Invariants: workspaces are sized for the largest batch seen and only grow
// between calls, never inside a step; every random draw comes from the Rng the
// caller passes, in a fixed order (shuffle, then per batch: augmentation of each
// sample in batch order, then the dropout masks of the whole batch), so a seed
// and a thread count fix the run.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/ctl.h"
#include "search/ctl_net.h"
#include "search/par.h"

enum { CTL_INFER_CHUNK = 100 };  // predictions and generation run in chunks of this many

struct CtlWorker {
  CtlWork_f32 work;
  int has_work;
  float *g;              // gradient of this part's mean loss
  float *masks;          // (layers, n, M) this part's dropout multipliers
  size_t mask_cap;
  int start, n;          // the part of the batch
  CtlLoss loss;
};

static void worker_cap(CtlWorker *w, const CtlConfig *c, int n) {
  if (w->has_work && w->work.cap >= n) return;
  if (w->has_work) ctl_work_free_f32(&w->work);
  ctl_work_init_f32(&w->work, c, n);
  w->has_work = 1;
}

CtlWork_f32 *ctl_workspace(Ctl *ctl, int n) {
  worker_cap(&ctl->workers[0], &ctl->cfg, n);
  return &ctl->workers[0].work;
}

void ctl_create(Ctl *ctl, const CtlConfig *cfg, Rng *init_rng) {
  memset(ctl, 0, sizeof *ctl);
  ctl->cfg = *cfg;
  ctl_layout_build(&ctl->lay, cfg);
  size_t n = ctl->lay.total;
  ctl->p = xcalloc(n, sizeof(float));
  ctl->g = xcalloc(n, sizeof(float));
  ctl->adam_m = xcalloc(n, sizeof(float));
  ctl->adam_v = xcalloc(n, sizeof(float));
  ctl->n_workers = cfg->threads;
  ctl->workers = xcalloc((size_t)ctl->n_workers, sizeof *ctl->workers);
  for (int k = 0; k < ctl->n_workers; k++) ctl->workers[k].g = xcalloc(n, sizeof(float));
  ctl_layout_init(&ctl->lay, ctl->p, init_rng);
}

void ctl_destroy(Ctl *ctl) {
  for (int k = 0; k < ctl->n_workers; k++) {
    CtlWorker *w = &ctl->workers[k];
    if (w->has_work) ctl_work_free_f32(&w->work);
    free(w->g), free(w->masks);
  }
  free(ctl->workers);
  free(ctl->p), free(ctl->g), free(ctl->adam_m), free(ctl->adam_v);
  free(ctl->masks), free(ctl->batch_tok), free(ctl->batch_y), free(ctl->perm);
  memset(ctl, 0, sizeof *ctl);
}

void ctl_adam_reset(Ctl *ctl) {
  memset(ctl->adam_m, 0, ctl->lay.total * sizeof(float));
  memset(ctl->adam_v, 0, ctl->lay.total * sizeof(float));
  ctl->adam_step = 0;
}

// Splits n samples into contiguous parts, at most one per worker, none empty.
static int split(Ctl *ctl, int n) {
  int parts = n < ctl->n_workers ? n : ctl->n_workers;
  for (int k = 0, start = 0; k < parts; k++) {
    int len = n / parts + (k < n % parts);
    ctl->workers[k].start = start, ctl->workers[k].n = len;
    start += len;
  }
  return parts;
}

// Runs fn on `parts` workers; BLAS runs single-threaded while several do.
static void run_parts(int parts, ParFn fn, void *ctx) {
  if (parts == 1) {
    fn(ctx, 0);
    return;
  }
  int prev = openblas_get_num_threads();
  openblas_set_num_threads(1);
  par_run(parts, fn, ctx);
  openblas_set_num_threads(prev);
}

// ---------------------------------------------------------------- optimisation
// torch.nn.utils.clip_grad_norm_: scale by bound / (norm + 1e-6) when below 1.
static void clip_grad(float *g, size_t n, double bound) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
  double coef = bound / (sqrt(s) + 1e-6);
  if (coef < 1)
    for (size_t i = 0; i < n; i++) g[i] *= (float)coef;
}

// torch.optim.Adam (betas 0.9/0.999, eps 1e-8), weight decay added to the gradient.
static void adam_step(Ctl *ctl) {
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = (float)ctl->cfg.l2;
  long t = ++ctl->adam_step;
  double bc1 = 1 - pow(0.9, (double)t), bc2 = 1 - pow(0.999, (double)t);
  float step = (float)(ctl->cfg.lr / bc1), bc2s = (float)sqrt(bc2);
  float *p = ctl->p, *g = ctl->g, *m = ctl->adam_m, *v = ctl->adam_v;
  for (size_t i = 0; i < ctl->lay.total; i++) {
    float gi = g[i] + wd * p[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    p[i] -= step * m[i] / (sqrtf(v[i]) / bc2s + eps);
  }
}

void ctl_optimizer_step(Ctl *ctl) {
  clip_grad(ctl->g, ctl->lay.total, ctl->cfg.grad_bound);
  adam_step(ctl);
}

// Dropout multipliers (layers, n, M) of the whole batch: 0 with probability p,
// else 1 / (1 - p); then each worker's slice (layers, n_k, M). NULL: no dropout.
static const float *draw_masks(Ctl *ctl, int n, int parts, Rng *rng) {
  const CtlConfig *c = &ctl->cfg;
  if (c->mlp_layers == 0 || c->mlp_dropout == 0) return NULL;
  const size_t M = (size_t)c->mlp_hidden, count = (size_t)c->mlp_layers * n * M;
  if ((size_t)ctl->mask_cap < count) {
    free(ctl->masks);
    ctl->masks = xmalloc(count * sizeof(float));
    ctl->mask_cap = (int)count;
  }
  float keep = (float)(1 - c->mlp_dropout), scale = 1 / keep;
  for (size_t i = 0; i < count; i++) ctl->masks[i] = rng_uniform(rng) < keep ? scale : 0.0f;
  for (int k = 0; k < parts; k++) {
    CtlWorker *w = &ctl->workers[k];
    size_t need = (size_t)c->mlp_layers * w->n * M;
    if (w->mask_cap < need) {
      free(w->masks);
      w->masks = xmalloc(need * sizeof(float));
      w->mask_cap = need;
    }
    for (int l = 0; l < c->mlp_layers; l++)
      memcpy(w->masks + (size_t)l * w->n * M, ctl->masks + ((size_t)l * n + w->start) * M,
             (size_t)w->n * M * sizeof(float));
  }
  return ctl->masks;
}

typedef struct {
  Ctl *ctl;
  const int *tokens;
  const float *targets;
  int with_masks;
} StepJob;

static void step_part(void *ctx, int k) {
  StepJob *j = ctx;
  Ctl *ctl = j->ctl;
  CtlWorker *w = &ctl->workers[k];
  const int *tok = j->tokens + (size_t)w->start * ctl->cfg.length;
  const float *y = j->targets + w->start;
  worker_cap(w, &ctl->cfg, w->n);
  ctl_forward_f32(&ctl->cfg, &ctl->lay, ctl->p, &w->work, w->n, tok, j->with_masks ? w->masks : NULL, 1);
  w->loss = ctl_loss_f32(&ctl->cfg, &w->work, tok, y);
  ctl_backward_f32(&ctl->cfg, &ctl->lay, ctl->p, &w->work, tok, y, w->g);
}

CtlLoss ctl_train_step(Ctl *ctl, int n, const int *tokens, const float *targets, Rng *rng) {
  int parts = split(ctl, n);
  StepJob job = {ctl, tokens, targets, draw_masks(ctl, n, parts, rng) != NULL};
  run_parts(parts, step_part, &job);
  CtlLoss loss = {0, 0, 0};
  memset(ctl->g, 0, ctl->lay.total * sizeof(float));
  for (int k = 0; k < parts; k++) {  // the batch's mean = the parts' means weighted by size
    const CtlWorker *w = &ctl->workers[k];
    float share = (float)w->n / (float)n;
    for (size_t i = 0; i < ctl->lay.total; i++) ctl->g[i] += share * w->g[i];
    loss.loss += share * w->loss.loss, loss.mse += share * w->loss.mse, loss.nll += share * w->loss.nll;
  }
  ctl_optimizer_step(ctl);
  return loss;
}

static void ensure_batch(Ctl *ctl, int n) {
  if (ctl->batch_cap >= n) return;
  free(ctl->batch_tok), free(ctl->batch_y), free(ctl->perm);
  ctl->batch_tok = xmalloc((size_t)n * ctl->cfg.length * sizeof(int));
  ctl->batch_y = xmalloc((size_t)n * sizeof(float));
  ctl->perm = xmalloc((size_t)n * sizeof(int));
  ctl->batch_cap = n;
}

CtlLoss ctl_train_epoch(Ctl *ctl, int n, const int *tokens, const float *targets, CtlAugmentFn aug,
                        void *aug_ctx, Rng *rng) {
  const int L = ctl->cfg.length, B = ctl->cfg.batch;
  CtlLoss sum = {0, 0, 0};
  ensure_batch(ctl, n);
  for (int i = 0; i < n; i++) ctl->perm[i] = i;
  rng_shuffle(rng, ctl->perm, n);
  for (int start = 0; start < n; start += B) {
    int bs = n - start < B ? n - start : B;
    for (int k = 0; k < bs; k++) {
      int src = ctl->perm[start + k];
      int *dst = ctl->batch_tok + (size_t)k * L;
      memcpy(dst, tokens + (size_t)src * L, (size_t)L * sizeof(int));
      if (aug) aug(aug_ctx, dst, rng);
      ctl->batch_y[k] = targets[src];
    }
    CtlLoss l = ctl_train_step(ctl, bs, ctl->batch_tok, ctl->batch_y, rng);
    sum.loss += l.loss * bs, sum.mse += l.mse * bs, sum.nll += l.nll * bs;
  }
  if (n > 0) sum.loss /= n, sum.mse /= n, sum.nll /= n;
  return sum;
}

// ---------------------------------------------------------------- inference
typedef struct {
  Ctl *ctl;
  const int *tokens;
  double lambda;
  const uint64_t *allowed;
  int *out;     // NULL: predictions only
  float *pred;  // may be NULL
} InferJob;

// One part: predictions, and for generation O' = normalise(O + lambda g),
// e' = normalise(mean O'), greedy decoding from (e', e') with memory O'.
static void infer_part(void *ctx, int k) {
  InferJob *j = ctx;
  Ctl *ctl = j->ctl;
  const CtlConfig *c = &ctl->cfg;
  CtlWorker *wk = &ctl->workers[k];
  const int n = wk->n, L = c->length, H = c->hidden, T = c->enc_len;
  const int *tok = j->tokens + (size_t)wk->start * L;
  worker_cap(wk, c, n);
  CtlWork_f32 *w = &wk->work;
  ctl_forward_f32(c, &ctl->lay, ctl->p, w, n, tok, NULL, 0);
  if (j->pred) memcpy(j->pred + wk->start, w->yhat, (size_t)n * sizeof(float));
  if (!j->out) return;
  ctl_grad_O_f32(c, &ctl->lay, ctl->p, w);
  float *O2 = w->g_O;  // (T, n, H), moved in place
  for (size_t i = 0; i < (size_t)T * n * H; i++) O2[i] = w->O[i] + (float)j->lambda * O2[i];
  ctl_l2norm_fwd_f32(T * n, H, O2, O2, w->enorm);
  ctl_pool_fwd_f32(n, T, H, O2, w->m, w->e, w->mnorm);
  ctl_decode_greedy_f32(c, &ctl->lay, ctl->p, w, n, w->e, O2, j->allowed, j->out + (size_t)wk->start * L);
}

static void infer(Ctl *ctl, int n, const int *tokens, double lambda, const uint64_t *allowed, int *out,
                  float *pred) {
  const int L = ctl->cfg.length;
  for (int start = 0; start < n; start += CTL_INFER_CHUNK) {
    int bs = n - start < CTL_INFER_CHUNK ? n - start : CTL_INFER_CHUNK;
    InferJob job = {ctl, tokens + (size_t)start * L, lambda, allowed, out ? out + (size_t)start * L : NULL,
                    pred ? pred + start : NULL};
    run_parts(split(ctl, bs), infer_part, &job);
  }
}

void ctl_predict(Ctl *ctl, int n, const int *tokens, float *pred) { infer(ctl, n, tokens, 0, NULL, NULL, pred); }

void ctl_generate(Ctl *ctl, int n, const int *tokens, double lambda, const uint64_t *allowed, int *out,
                  float *pred) {
  infer(ctl, n, tokens, lambda, allowed, out, pred);
}

double ctl_pairwise_accuracy(const double *a, const double *b, int n) {
  long count = 0, total = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      if ((a[i] >= a[j] && b[i] >= b[j]) || (a[i] < a[j] && b[i] < b[j])) count++;
      total++;
    }
  return total ? (double)count / (double)total : 0;
}
