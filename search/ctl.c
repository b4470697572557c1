// search/ctl.c — the float32 controller object: creation, the training step
// (forward, backward, global-norm clipping, Adam with L2 weight decay as
// PyTorch's torch.optim.Adam does it), epochs with on-the-fly augmentation and
// dropout, predictions and the inference step.
//
// Invariants: the workspace is sized for the largest batch seen and only grows
// between calls, never inside a step; every random draw comes from the Rng the
// caller passes, in a fixed order (shuffle, then per batch: augmentation of each
// sample in batch order, then dropout masks), so a seed fixes the run.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/ctl.h"
#include "search/ctl_net.h"

enum { CTL_INFER_CHUNK = 100 };  // predictions and generation run in chunks of this many

static void ensure_cap(Ctl *ctl, int n) {
  if (ctl->work && ctl->work->cap >= n) return;
  if (!ctl->work) ctl->work = xcalloc(1, sizeof *ctl->work);
  else ctl_work_free_f32(ctl->work);
  ctl_work_init_f32(ctl->work, &ctl->cfg, n);
}

CtlWork_f32 *ctl_workspace(Ctl *ctl, int n) {
  ensure_cap(ctl, n);
  return ctl->work;
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
  ctl_layout_init(&ctl->lay, ctl->p, init_rng);
}

void ctl_destroy(Ctl *ctl) {
  if (ctl->work) ctl_work_free_f32(ctl->work);
  free(ctl->work);
  free(ctl->p), free(ctl->g), free(ctl->adam_m), free(ctl->adam_v);
  free(ctl->masks), free(ctl->batch_tok), free(ctl->batch_y), free(ctl->perm);
  memset(ctl, 0, sizeof *ctl);
}

void ctl_adam_reset(Ctl *ctl) {
  memset(ctl->adam_m, 0, ctl->lay.total * sizeof(float));
  memset(ctl->adam_v, 0, ctl->lay.total * sizeof(float));
  ctl->adam_step = 0;
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

// Dropout multipliers (layers, n, M): 0 with probability p, else 1 / (1 - p).
static const float *draw_masks(Ctl *ctl, int n, Rng *rng) {
  const CtlConfig *c = &ctl->cfg;
  if (c->mlp_layers == 0 || c->mlp_dropout == 0) return NULL;
  size_t count = (size_t)c->mlp_layers * n * c->mlp_hidden;
  if ((size_t)ctl->mask_cap < count) {
    free(ctl->masks);
    ctl->masks = xmalloc(count * sizeof(float));
    ctl->mask_cap = (int)count;
  }
  float keep = (float)(1 - c->mlp_dropout), scale = 1 / keep;
  for (size_t i = 0; i < count; i++) ctl->masks[i] = rng_uniform(rng) < keep ? scale : 0.0f;
  return ctl->masks;
}

CtlLoss ctl_train_step(Ctl *ctl, int n, const int *tokens, const float *targets, Rng *rng) {
  ensure_cap(ctl, n);
  const float *masks = draw_masks(ctl, n, rng);
  ctl_forward_f32(&ctl->cfg, &ctl->lay, ctl->p, ctl->work, n, tokens, masks, 1);
  CtlLoss loss = ctl_loss_f32(&ctl->cfg, ctl->work, tokens, targets);
  ctl_backward_f32(&ctl->cfg, &ctl->lay, ctl->p, ctl->work, tokens, targets, ctl->g);
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
void ctl_predict(Ctl *ctl, int n, const int *tokens, float *pred) {
  const int L = ctl->cfg.length;
  for (int start = 0; start < n; start += CTL_INFER_CHUNK) {
    int bs = n - start < CTL_INFER_CHUNK ? n - start : CTL_INFER_CHUNK;
    ensure_cap(ctl, bs);
    ctl_forward_f32(&ctl->cfg, &ctl->lay, ctl->p, ctl->work, bs, tokens + (size_t)start * L, NULL, 0);
    memcpy(pred + start, ctl->work->yhat, (size_t)bs * sizeof(float));
  }
}

// One chunk: O' = normalise(O + lambda g), e' = normalise(mean O'), decode.
static void generate_chunk(Ctl *ctl, int n, const int *tokens, double lambda, const uint64_t *allowed,
                           int *out, float *pred) {
  const CtlConfig *c = &ctl->cfg;
  CtlWork_f32 *w = ctl->work;
  const int H = c->hidden, T = c->enc_len;
  const size_t nh = (size_t)n * H;
  ctl_forward_f32(c, &ctl->lay, ctl->p, w, n, tokens, NULL, 0);
  if (pred) memcpy(pred, w->yhat, (size_t)n * sizeof(float));
  ctl_grad_O_f32(c, &ctl->lay, ctl->p, w);
  float *O2 = w->g_O;  // (T, n, H), moved in place
  for (size_t i = 0; i < (size_t)T * nh; i++) O2[i] = w->O[i] + (float)lambda * O2[i];
  ctl_l2norm_fwd_f32(T * n, H, O2, O2, w->enorm);
  ctl_pool_fwd_f32(n, T, H, O2, w->m, w->e, w->mnorm);
  ctl_decode_greedy_f32(c, &ctl->lay, ctl->p, w, n, w->e, O2, allowed, out);
}

void ctl_generate(Ctl *ctl, int n, const int *tokens, double lambda, const uint64_t *allowed, int *out,
                  float *pred) {
  const int L = ctl->cfg.length;
  for (int start = 0; start < n; start += CTL_INFER_CHUNK) {
    int bs = n - start < CTL_INFER_CHUNK ? n - start : CTL_INFER_CHUNK;
    ensure_cap(ctl, bs);
    generate_chunk(ctl, bs, tokens + (size_t)start * L, lambda, allowed, out + (size_t)start * L,
                   pred ? pred + start : NULL);
  }
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
