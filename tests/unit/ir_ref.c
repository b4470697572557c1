// tests/unit/ir_ref.c — the reference interpreter (ir_ref.h): storage, the
// node runner, and the forward kinds. Backward kinds are in ir_ref_bwd.c.
//
// Every kind function reads its inputs through ref_in, computes its outputs
// into zeroed scratch (c->out[k]) and parameter gradients into c->pgrad[k];
// the runner then writes or adds them (accumulate bits) to the real storage.
// So a kind never sees its own outputs half written, and the accumulate
// semantics live in one place.
#include "tests/unit/ir_ref.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "runtime/rng.h"

// ---------------------------------------------------------------- storage

static size_t tensor_len(const IrTensor *t, int batch) {
  switch (t->kind) {
  case IR_T_ACT: return ir_tensor_numel(t) * (size_t)batch;
  case IR_T_LABELS: return (size_t)batch;
  default: return ir_tensor_numel(t);
  }
}

static size_t sample_len(const IrTensor *t) {
  return t->kind == IR_T_LABELS ? 1 : ir_tensor_numel(t);
}

static void fill_nan(double *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = NAN;
}

static void init_params(RefState *s) {
  const ParamTable *pt = s->g->params;
  size_t nt = pt ? pt->n_trainable : 0, nb = pt ? pt->n_buffer : 0;
  s->params = xmalloc(sizeof(double) * (nt + 1));
  s->grads = xmalloc(sizeof(double) * (nt + 1));
  s->buffers = xmalloc(sizeof(double) * (nb + 1));
  fill_nan(s->params, nt);
  fill_nan(s->grads, nt);
  fill_nan(s->buffers, nb);
}

static void init_common(RefState *s, const IrGraph *g, int batch) {
  memset(s, 0, sizeof *s);
  s->g = g;
  s->batch = batch;
  s->ptr = xcalloc((size_t)g->n_tensors + 1, sizeof *s->ptr);
  s->stride = xcalloc((size_t)g->n_tensors + 1, sizeof *s->stride);
  init_params(s);
}

void ref_init(RefState *s, const IrGraph *g, int batch) {
  init_common(s, g, batch);
  size_t total = 0;
  for (int t = 0; t < g->n_tensors; t++)
    if (g->tensors[t].view_of < 0) total += tensor_len(&g->tensors[t], batch);
  s->store = xmalloc(sizeof(double) * (total + 1));
  s->store_len = total;
  fill_nan(s->store, total);
  size_t at = 0;
  for (int t = 0; t < g->n_tensors; t++) {
    const IrTensor *x = &g->tensors[t];
    if (x->view_of >= 0) continue;
    s->ptr[t] = s->store + at;
    s->stride[t] = x->kind == IR_T_ACT || x->kind == IR_T_LABELS ? sample_len(x) : 0;
    at += tensor_len(x, batch);
  }
  for (int t = 0; t < g->n_tensors; t++) {
    const IrTensor *x = &g->tensors[t];
    if (x->view_of < 0) continue;
    int r = ir_root(g, t);
    s->ptr[t] = s->ptr[r] + (size_t)ir_root_offset(g, t) * (size_t)x->h * (size_t)x->w;
    s->stride[t] = s->stride[r];
  }
}

void ref_init_planned(RefState *s, const IrGraph *g, const Plan *plan, int batch) {
  init_common(s, g, batch);
  size_t arena = plan->arena_per_image * (size_t)batch;
  s->store_len = arena + plan->fixed_floats;
  s->store = xmalloc(sizeof(double) * (s->store_len + 1));
  fill_nan(s->store, s->store_len);
  for (int t = 0; t < g->n_tensors; t++) {
    const PlanLoc *l = &plan->loc[t];
    if (l->region == LOC_ARENA) {
      s->ptr[t] = s->store + l->scaled * (size_t)batch + l->unscaled;
      s->stride[t] = l->sample_stride;
    } else if (l->region == LOC_FIXED) {
      s->ptr[t] = s->store + arena + l->unscaled;
      s->stride[t] = 0;
    }
  }
}

void ref_free(RefState *s) {
  free(s->ptr);
  free(s->stride);
  free(s->store);
  free(s->params);
  free(s->grads);
  free(s->buffers);
  memset(s, 0, sizeof *s);
}

double *ref_at(const RefState *s, int t, int n, size_t j) {
  NAO_ASSERT(s->ptr[t] != NULL);
  return s->ptr[t] + (size_t)n * s->stride[t] + j;
}

void ref_read(const RefState *s, int t, double *dst) {
  const IrTensor *x = &s->g->tensors[t];
  int nb = s->stride[t] ? s->batch : 1;
  size_t per = sample_len(x);
  for (int n = 0; n < nb; n++)
    for (size_t j = 0; j < per; j++) dst[(size_t)n * per + j] = *ref_at(s, t, n, j);
}

void ref_write(RefState *s, int t, const double *src) {
  const IrTensor *x = &s->g->tensors[t];
  int nb = s->stride[t] ? s->batch : 1;
  size_t per = sample_len(x);
  for (int n = 0; n < nb; n++)
    for (size_t j = 0; j < per; j++) *ref_at(s, t, n, j) = src[(size_t)n * per + j];
}

void ref_set_labels(RefState *s, int t, const int *labels) {
  for (int n = 0; n < s->batch; n++) *ref_at(s, t, n, 0) = labels[n];
}

uint64_t ref_mask_key(uint64_t seed, long step, int node) {
  return rng_mix64(seed ^ rng_mix64(((uint64_t)step << 24) ^ (uint64_t)(unsigned)node));
}

// ---------------------------------------------------------------- kind helpers

double ref_in(const RefCtx *c, int k, int n, size_t j) {
  return *ref_at(c->s, c->n->in[k], n, j);
}

const IrTensor *ref_tin(const RefCtx *c, int k) { return &c->s->g->tensors[c->n->in[k]]; }
const IrTensor *ref_tout(const RefCtx *c, int k) { return &c->s->g->tensors[c->n->out[k]]; }

const double *ref_param(const RefCtx *c, int k) {
  const ParamInfo *p = &c->s->g->params->items[c->n->param[k]];
  return p->trainable ? c->s->params + p->offset : c->s->buffers + p->offset;
}

static size_t param_numel(const RefCtx *c, int k) {
  return c->s->g->params->items[c->n->param[k]].numel;
}

int ref_fail(RefCtx *c, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(c->err, c->errlen, "ir_ref: node %d %s (%s): %s", c->node, c->n->name,
           ir_kind_name(c->n->kind), msg);
  return -1;
}

void ref_decide(RefCtx *c, uint64_t v) { c->s->decisions = rng_mix64(c->s->decisions ^ v); }

static int same_shape(const IrTensor *a, const IrTensor *b) {
  return a->kind == b->kind && a->c == b->c && a->h == b->h && a->w == b->w;
}

// ---------------------------------------------------------------- forward kinds

// out = (in + pad_begin + pad_end - k) / s + 1, with the window inside.
static int geom_ok(int in, int pb, int pe, int k, int s, int out) {
  int span = in + pb + pe - k;
  return s > 0 && k > 0 && span >= 0 && out == span / s + 1;
}

static int ref_conv(RefCtx *c) {
  const IrConvAttr *a = &c->n->a.conv;
  const IrTensor *x = ref_tin(c, 0), *y = ref_tout(c, 0);
  int g = a->groups;
  if (g <= 0 || x->c != a->cin || y->c != a->cout || a->cin % g || a->cout % g ||
      !geom_ok(x->h, a->pt, a->pb, a->kh, a->sh, y->h) ||
      !geom_ok(x->w, a->pl, a->pr, a->kw, a->sw, y->w) ||
      param_numel(c, 0) != (size_t)a->cout * (size_t)(a->cin / g) * (size_t)(a->kh * a->kw))
    return ref_fail(c, "conv shapes disagree with the attributes");
  const double *w = ref_param(c, 0);
  int cig = a->cin / g, cog = a->cout / g;
  for (int n = 0; n < c->N; n++)
    for (int co = 0; co < y->c; co++)
      for (int oy = 0; oy < y->h; oy++)
        for (int ox = 0; ox < y->w; ox++) {
          double sum = 0;
          for (int ci = 0; ci < cig; ci++)
            for (int ky = 0; ky < a->kh; ky++)
              for (int kx = 0; kx < a->kw; kx++) {
                int iy = oy * a->sh - a->pt + ky, ix = ox * a->sw - a->pl + kx;
                if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w) continue;
                int cin = co / cog * cig + ci;
                sum += w[((size_t)(co * cig + ci) * a->kh + ky) * a->kw + kx] *
                       ref_in(c, 0, n, ((size_t)cin * x->h + iy) * x->w + ix);
              }
          c->out[0][(size_t)n * ir_tensor_numel(y) + ((size_t)co * y->h + oy) * y->w + ox] = sum;
        }
  return 0;
}

static int bn_check(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0);
  int stats_out = c->n->a.bn.batch_stats ? 3 : 1;
  if (c->n->n_param != 4 || x->kind != IR_T_ACT || !same_shape(x, ref_tout(c, 0)))
    return ref_fail(c, "bn takes x and gamma, beta, mean, var and gives y like x");
  for (int k = 0; k < 4; k++)
    if (param_numel(c, k) != (size_t)x->c) return ref_fail(c, "bn parameter %d is not (C)", k);
  if (c->n->n_out != 1 && c->n->n_out != stats_out)
    return ref_fail(c, "bn gives y, or y, mean and invstd with batch statistics");
  for (int k = 1; k < c->n->n_out; k++)
    if (ref_tout(c, k)->kind != IR_T_STAT || ref_tout(c, k)->c != x->c)
      return ref_fail(c, "bn statistics outputs must be STAT (C)");
  return 0;
}

static int ref_bn(RefCtx *c) {
  if (bn_check(c) < 0) return -1;
  const IrBnAttr *a = &c->n->a.bn;
  const IrTensor *x = ref_tin(c, 0);
  const double *gamma = ref_param(c, 0), *beta = ref_param(c, 1);
  double *rmean = (double *)ref_param(c, 2), *rvar = (double *)ref_param(c, 3);
  size_t hw = (size_t)x->h * x->w, M = hw * (size_t)c->N;
  for (int ch = 0; ch < x->c; ch++) {
    double mean, invstd;
    if (a->batch_stats) {
      double sum = 0, sq = 0;
      for (int n = 0; n < c->N; n++)
        for (size_t j = 0; j < hw; j++) sum += ref_in(c, 0, n, ch * hw + j);
      mean = sum / (double)M;
      for (int n = 0; n < c->N; n++)
        for (size_t j = 0; j < hw; j++) {
          double d = ref_in(c, 0, n, ch * hw + j) - mean;
          sq += d * d;
        }
      double var = sq / (double)M;
      invstd = 1.0 / sqrt(var + (double)a->eps);
      if (c->n->n_out == 3) {
        c->out[1][ch] = mean;
        c->out[2][ch] = invstd;
      }
      if (a->update_running && !c->run->freeze_buffers) {
        double m = (double)a->momentum, unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
        rmean[ch] += m * (mean - rmean[ch]);
        rvar[ch] += m * (unbiased - rvar[ch]);
      }
    } else {
      mean = rmean[ch];
      invstd = 1.0 / sqrt(rvar[ch] + (double)a->eps);
    }
    for (int n = 0; n < c->N; n++)
      for (size_t j = 0; j < hw; j++) {
        size_t at = ch * hw + j;
        c->out[0][n * ir_tensor_numel(x) + at] =
            gamma[ch] * (ref_in(c, 0, n, at) - mean) * invstd + beta[ch];
      }
  }
  return 0;
}

static int ref_relu(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0);
  if (!same_shape(x, ref_tout(c, 0))) return ref_fail(c, "relu output differs from input");
  size_t per = ir_tensor_numel(x);
  uint64_t h = 0;
  for (int n = 0; n < c->N; n++)
    for (size_t j = 0; j < per; j++) {
      double v = ref_in(c, 0, n, j);
      c->out[0][n * per + j] = v > 0 ? v : 0;
      h = h * 1000003u + (v > 0);
    }
  ref_decide(c, h);
  return 0;
}

static int ref_add(RefCtx *c) {
  const IrTensor *y = ref_tout(c, 0);
  for (int k = 0; k < c->n->n_in; k++)
    if (!same_shape(ref_tin(c, k), y)) return ref_fail(c, "add input %d differs from output", k);
  size_t per = ir_tensor_numel(y);
  int nb = y->kind == IR_T_ACT ? c->N : 1;
  for (int n = 0; n < nb; n++)
    for (size_t j = 0; j < per; j++) {
      double sum = 0;
      for (int k = 0; k < c->n->n_in; k++) sum += ref_in(c, k, n, j);
      c->out[0][n * per + j] = sum;
    }
  return 0;
}

static int ref_concat(RefCtx *c) {
  const IrTensor *y = ref_tout(c, 0);
  size_t hw = (size_t)y->h * y->w, off = 0;
  for (int k = 0; k < c->n->n_in; k++) {
    const IrTensor *x = ref_tin(c, k);
    if (x->kind != IR_T_ACT || x->h != y->h || x->w != y->w)
      return ref_fail(c, "concat input %d is not an activation of the output's size", k);
    size_t per = ir_tensor_numel(x);
    for (int n = 0; n < c->N; n++)
      for (size_t j = 0; j < per; j++) c->out[0][n * ir_tensor_numel(y) + off + j] = ref_in(c, k, n, j);
    off += (size_t)x->c * hw;
  }
  if (off != ir_tensor_numel(y)) return ref_fail(c, "concat channels do not add up");
  return 0;
}

int ref_pool_window(const IrPoolAttr *a, int H, int W, int oy, int ox, int *ys, int *xs,
                    int *inside) {
  int k = 0;
  for (int ky = 0; ky < a->kh; ky++)
    for (int kx = 0; kx < a->kw; kx++, k++) {
      ys[k] = oy * a->sh - a->pt + ky;
      xs[k] = ox * a->sw - a->pl + kx;
      inside[k] = ys[k] >= 0 && ys[k] < H && xs[k] >= 0 && xs[k] < W;
    }
  return k;
}

static int pool_check(RefCtx *c) {
  const IrPoolAttr *a = &c->n->a.pool;
  const IrTensor *x = ref_tin(c, 0), *y = ref_tout(c, 0);
  if (x->kind != IR_T_ACT || y->c != x->c || a->kh * a->kw > 64 ||
      !geom_ok(x->h, a->pt, a->pb, a->kh, a->sh, y->h) ||
      !geom_ok(x->w, a->pl, a->pr, a->kw, a->sw, y->w))
    return ref_fail(c, "pool shapes disagree with the attributes");
  return 0;
}

static int ref_pool(RefCtx *c) {
  if (pool_check(c) < 0) return -1;
  const IrPoolAttr *a = &c->n->a.pool;
  const IrTensor *x = ref_tin(c, 0), *y = ref_tout(c, 0);
  int ys[64], xs[64], in[64];
  uint64_t h = 0;
  for (int n = 0; n < c->N; n++)
    for (int ch = 0; ch < x->c; ch++)
      for (int oy = 0; oy < y->h; oy++)
        for (int ox = 0; ox < y->w; ox++) {
          int nk = ref_pool_window(a, x->h, x->w, oy, ox, ys, xs, in);
          double best = -INFINITY, sum = 0;
          int arg = -1, count = 0;
          for (int k = 0; k < nk; k++) {
            if (!in[k] && !a->pad_counted) continue;
            double v = in[k] ? ref_in(c, 0, n, ((size_t)ch * x->h + ys[k]) * x->w + xs[k]) : 0;
            if (v > best) best = v, arg = k;  // strict: the first maximum wins
            sum += v;
            count++;
          }
          if (count == 0) return ref_fail(c, "a window lies entirely in the padding");
          double v = a->is_max ? best : sum / (a->pad_counted ? a->kh * a->kw : count);
          c->out[0][n * ir_tensor_numel(y) + ((size_t)ch * y->h + oy) * y->w + ox] = v;
          h = h * 1000003u + (uint64_t)arg;
        }
  if (a->is_max) ref_decide(c, h);
  return 0;
}

static int ref_gap(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0), *y = ref_tout(c, 0);
  if (x->kind != IR_T_ACT || y->c != x->c || y->h != 1 || y->w != 1)
    return ref_fail(c, "gap maps (C,H,W) to (C,1,1)");
  size_t hw = (size_t)x->h * x->w;
  for (int n = 0; n < c->N; n++)
    for (int ch = 0; ch < x->c; ch++) {
      double sum = 0;
      for (size_t j = 0; j < hw; j++) sum += ref_in(c, 0, n, ch * hw + j);
      c->out[0][(size_t)n * x->c + ch] = sum / (double)hw;
    }
  return 0;
}

static int ref_linear(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0), *y = ref_tout(c, 0);
  size_t F = ir_tensor_numel(x), K = (size_t)y->c;
  if (y->h != 1 || y->w != 1 || c->n->n_param != 2 || param_numel(c, 0) != K * F ||
      param_numel(c, 1) != K)
    return ref_fail(c, "linear: w [K, C*H*W], b [K] -> (K,1,1)");
  const double *w = ref_param(c, 0), *b = ref_param(c, 1);
  for (int n = 0; n < c->N; n++)
    for (size_t k = 0; k < K; k++) {
      double sum = b[k];
      for (size_t f = 0; f < F; f++) sum += w[k * F + f] * ref_in(c, 0, n, f);
      c->out[0][n * K + k] = sum;
    }
  return 0;
}

static uint64_t mask_key(const RefCtx *c) {
  if (c->run->mask_key) return c->run->mask_key(c->run->mask_ctx, c->node);
  return ref_mask_key(c->run->seed, c->run->step, c->node);
}

static int ref_dropout(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0);
  float keep = c->n->a.drop.keep;
  if (c->n->n_out != 2 || !same_shape(x, ref_tout(c, 0)) || !same_shape(x, ref_tout(c, 1)))
    return ref_fail(c, "dropout gives y and a mask shaped like x");
  if (!(keep > 0 && keep <= 1)) return ref_fail(c, "keep probability %g", (double)keep);
  uint64_t key = mask_key(c);
  size_t per = ir_tensor_numel(x);
  for (int n = 0; n < c->N; n++)
    for (size_t j = 0; j < per; j++) {
      size_t i = (size_t)n * per + j;
      double m = rng_hash_uniform(key, i) < keep ? 1.0 / (double)keep : 0.0;
      c->out[1][i] = m;
      c->out[0][i] = ref_in(c, 0, n, j) * m;
    }
  return 0;
}

static int ref_droppath(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0), *m = ref_tout(c, 1);
  const IrDropAttr *a = &c->n->a.drop;
  if (c->n->n_out != 2 || !same_shape(x, ref_tout(c, 0)) || m->kind != IR_T_ACT ||
      ir_tensor_numel(m) != 1)
    return ref_fail(c, "drop-path gives y like x and a (1,1,1) mask");
  if (c->run->total_steps <= 0 || a->n_cells <= 0 || !(a->keep > 0 && a->keep <= 1))
    return ref_fail(c, "drop-path needs total_steps > 0, n_cells > 0, 0 < keep <= 1");
  double p = a->keep;
  double keep_d = 1.0 - (double)(c->run->step + 1) / (double)c->run->total_steps *
                            (double)(a->cell + 1) / (double)a->n_cells * (1.0 - p);
  if (keep_d < p) keep_d = p;
  float keep = (float)keep_d;
  uint64_t key = mask_key(c);
  size_t per = ir_tensor_numel(x);
  for (int n = 0; n < c->N; n++) {
    double mv = rng_hash_uniform(key, (uint64_t)n) < keep ? 1.0 / (double)keep : 0.0;
    c->out[1][n] = mv;
    for (size_t j = 0; j < per; j++) c->out[0][n * per + j] = ref_in(c, 0, n, j) * mv;
  }
  return 0;
}

static int ref_xent(RefCtx *c) {
  const IrTensor *z = ref_tin(c, 0);
  int K = z->c;
  if (c->n->n_in != 2 || c->n->n_out != 2 || z->h != 1 || z->w != 1 ||
      ref_tin(c, 1)->kind != IR_T_LABELS || ref_tout(c, 0)->kind != IR_T_SCALAR ||
      !same_shape(z, ref_tout(c, 1)))
    return ref_fail(c, "xent takes (K,1,1) logits and labels, gives a loss and a softmax");
  double eps = c->n->a.xent.smoothing, total = 0;
  for (int n = 0; n < c->N; n++) {
    double lab = ref_in(c, 1, n, 0);
    if (!(lab >= 0 && lab < K) || lab != floor(lab)) return ref_fail(c, "label %g of sample %d", lab, n);
    double mx = -INFINITY, se = 0;
    for (int k = 0; k < K; k++) mx = fmax(mx, ref_in(c, 0, n, k));
    for (int k = 0; k < K; k++) se += exp(ref_in(c, 0, n, k) - mx);
    double lse = mx + log(se), ce = 0;
    for (int k = 0; k < K; k++) {
      double zk = ref_in(c, 0, n, k);
      double q = (k == (int)lab ? 1.0 - eps : 0.0) + eps / K;
      c->out[1][(size_t)n * K + k] = exp(zk - lse);
      ce -= q * (zk - lse);
    }
    total += ce;
  }
  c->out[0][0] = (double)c->n->a.xent.weight * total / c->N;
  return 0;
}

// ---------------------------------------------------------------- runner

static int dispatch(RefCtx *c) {
  switch (c->n->kind) {
  case IR_CONV: return ref_conv(c);
  case IR_BN: return ref_bn(c);
  case IR_RELU: return ref_relu(c);
  case IR_ADD: return ref_add(c);
  case IR_CONCAT: return ref_concat(c);
  case IR_POOL: return ref_pool(c);
  case IR_GAP: return ref_gap(c);
  case IR_LINEAR: return ref_linear(c);
  case IR_DROPOUT: return ref_dropout(c);
  case IR_DROPPATH: return ref_droppath(c);
  case IR_XENT: return ref_xent(c);
  case IR_CONV_BWD_DATA: return ref_conv_bwd_data(c);
  case IR_CONV_BWD_FILTER: return ref_conv_bwd_filter(c);
  case IR_BN_BWD: return ref_bn_bwd(c);
  case IR_RELU_BWD: return ref_relu_bwd(c);
  case IR_POOL_BWD: return ref_pool_bwd(c);
  case IR_GAP_BWD: return ref_gap_bwd(c);
  case IR_LINEAR_BWD: return ref_linear_bwd(c);
  case IR_MASK_BWD: return ref_mask_bwd(c);
  case IR_XENT_BWD: return ref_xent_bwd(c);
  case IR_ACCUM: return ref_accum(c);
  default: return ref_fail(c, "unknown kind %d", (int)c->n->kind);
  }
}

// Leading parameters whose gradient a kind writes.
static int n_param_grads(IrKind k) {
  return k == IR_CONV_BWD_FILTER ? 1 : (k == IR_BN_BWD || k == IR_LINEAR_BWD) ? 2 : 0;
}

static void commit(RefCtx *c) {
  RefState *s = c->s;
  for (int k = 0; k < c->n->n_out; k++) {
    int t = c->n->out[k], add = (c->n->accumulate >> k) & 1;
    int nb = s->stride[t] ? c->N : 1;
    size_t per = sample_len(&s->g->tensors[t]);
    for (int n = 0; n < nb; n++)
      for (size_t j = 0; j < per; j++) {
        double *d = ref_at(s, t, n, j), v = c->out[k][(size_t)n * per + j];
        *d = add ? *d + v : v;
      }
  }
  for (int k = 0; k < n_param_grads(c->n->kind); k++) {
    const ParamInfo *p = &s->g->params->items[c->n->param[k]];
    int add = (c->n->accumulate >> (IR_MAX_OUT + k)) & 1;
    double *d = s->grads + p->offset;
    for (size_t j = 0; j < p->numel; j++) d[j] = add ? d[j] + c->pgrad[k][j] : c->pgrad[k][j];
  }
}

static int check_storage(RefCtx *c) {
  const IrGraph *g = c->s->g;
  for (int k = 0; k < c->n->n_in + c->n->n_out; k++) {
    int t = k < c->n->n_in ? c->n->in[k] : c->n->out[k - c->n->n_in];
    if (t < 0 || t >= g->n_tensors || !c->s->ptr[t])
      return ref_fail(c, "tensor %d has no storage", t);
  }
  for (int k = 0; k < n_param_grads(c->n->kind); k++)
    if (!g->params->items[c->n->param[k]].trainable)
      return ref_fail(c, "gradient of the buffer %s", g->params->items[c->n->param[k]].name);
  return 0;
}

int ref_run_node(RefState *s, const RefRun *run, int i, char *err, size_t errlen) {
  RefCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.run = run;
  c.n = &s->g->nodes[i];
  c.node = i;
  c.N = s->batch;
  c.err = err;
  c.errlen = errlen;
  if (c.n->kind == IR_INPUT || c.n->kind == IR_LABELS) return 0;  // filled by the caller
  if (check_storage(&c) < 0) return -1;
  for (int k = 0; k < c.n->n_out; k++) {
    const IrTensor *t = ref_tout(&c, k);
    c.out[k] = xcalloc(tensor_len(t, s->batch) + 1, sizeof(double));
  }
  for (int k = 0; k < n_param_grads(c.n->kind); k++)
    c.pgrad[k] = xcalloc(s->g->params->items[c.n->param[k]].numel + 1, sizeof(double));
  int rc = dispatch(&c);
  if (rc == 0) commit(&c);
  for (int k = 0; k < IR_MAX_OUT; k++) free(c.out[k]);
  for (int k = 0; k < IR_MAX_PARAM; k++) free(c.pgrad[k]);
  return rc;
}

int ref_run(RefState *s, const RefRun *run, int from, int to, char *err, size_t errlen) {
  for (int i = from; i < to; i++)
    if (ref_run_node(s, run, i, err, errlen) < 0) return -1;
  return 0;
}

int ref_run_plan(RefState *s, const RefRun *run, const Plan *plan, char *err, size_t errlen) {
  for (int k = 0; k < plan->n_steps; k++)
    if (ref_run_node(s, run, plan->steps[k], err, errlen) < 0) return -1;
  return 0;
}
