// tests/unit/ir_ref_bwd.c — the backward kinds of the reference interpreter
// (ir_ref.h), one function per kind, straight from the derivatives of the
// forward kinds in ir_ref.c. Outputs go to c->out[k], parameter gradients to
// c->pgrad[k] (both zeroed scratch); the runner applies the accumulate bits.
#include <math.h>
#include <stddef.h>

#include "tests/unit/ir_ref.h"

static int same_shape(const IrTensor *a, const IrTensor *b) {
  return a->kind == b->kind && a->c == b->c && a->h == b->h && a->w == b->w;
}

// in0 dy (conv output) ; param0 w -> out0 dx (conv input): the transpose of
// the forward sum, scattered.
int ref_conv_bwd_data(RefCtx *c) {
  const IrConvAttr *a = &c->n->a.conv;
  const IrTensor *dy = ref_tin(c, 0), *dx = ref_tout(c, 0);
  int g = a->groups;
  if (c->n->n_out != 1 || g <= 0 || dx->c != a->cin || dy->c != a->cout)
    return ref_fail(c, "conv_bwd_data: dy (Co,..) -> dx (Ci,..)");
  const double *w = ref_param(c, 0);
  int cig = a->cin / g, cog = a->cout / g;
  for (int n = 0; n < c->N; n++)
    for (int co = 0; co < dy->c; co++)
      for (int oy = 0; oy < dy->h; oy++)
        for (int ox = 0; ox < dy->w; ox++) {
          double d = ref_in(c, 0, n, ((size_t)co * dy->h + oy) * dy->w + ox);
          for (int ci = 0; ci < cig; ci++)
            for (int ky = 0; ky < a->kh; ky++)
              for (int kx = 0; kx < a->kw; kx++) {
                int iy = oy * a->sh - a->pt + ky, ix = ox * a->sw - a->pl + kx;
                if (iy < 0 || iy >= dx->h || ix < 0 || ix >= dx->w) continue;
                int cin = co / cog * cig + ci;
                c->out[0][(size_t)n * ir_tensor_numel(dx) + ((size_t)cin * dx->h + iy) * dx->w + ix] +=
                    w[((size_t)(co * cig + ci) * a->kh + ky) * a->kw + kx] * d;
              }
        }
  return 0;
}

// in0 x, in1 dy ; param0 w -> g(w) = sum over samples and positions of dy * x.
int ref_conv_bwd_filter(RefCtx *c) {
  const IrConvAttr *a = &c->n->a.conv;
  const IrTensor *x = ref_tin(c, 0), *dy = ref_tin(c, 1);
  int g = a->groups;
  if (c->n->n_in != 2 || g <= 0 || x->c != a->cin || dy->c != a->cout)
    return ref_fail(c, "conv_bwd_filter: x (Ci,..), dy (Co,..)");
  int cig = a->cin / g, cog = a->cout / g;
  for (int n = 0; n < c->N; n++)
    for (int co = 0; co < dy->c; co++)
      for (int oy = 0; oy < dy->h; oy++)
        for (int ox = 0; ox < dy->w; ox++) {
          double d = ref_in(c, 1, n, ((size_t)co * dy->h + oy) * dy->w + ox);
          for (int ci = 0; ci < cig; ci++)
            for (int ky = 0; ky < a->kh; ky++)
              for (int kx = 0; kx < a->kw; kx++) {
                int iy = oy * a->sh - a->pt + ky, ix = ox * a->sw - a->pl + kx;
                if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w) continue;
                int cin = co / cog * cig + ci;
                c->pgrad[0][((size_t)(co * cig + ci) * a->kh + ky) * a->kw + kx] +=
                    d * ref_in(c, 0, n, ((size_t)cin * x->h + iy) * x->w + ix);
              }
        }
  return 0;
}

// in0 x, in1 dy, [in2 mean, in3 invstd] ; gamma beta mean var -> dx, g(gamma), g(beta).
// Batch statistics: y = gamma * xhat + beta with xhat depending on every x of
// the channel, so dx = gamma*invstd/M * (M dy - sum dy - xhat * sum dy*xhat).
// Running statistics: constants, dx = gamma * invstd * dy.
int ref_bn_bwd(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0);
  int batch = c->n->a.bn.batch_stats;
  if (c->n->n_in != (batch ? 4 : 2) || c->n->n_param != 4 || !same_shape(x, ref_tin(c, 1)) ||
      (c->n->n_out == 1 && !same_shape(x, ref_tout(c, 0))) || c->n->n_out > 1)
    return ref_fail(c, "bn_bwd: x, dy[, mean, invstd] -> dx");
  const double *gamma = ref_param(c, 0), *rmean = ref_param(c, 2), *rvar = ref_param(c, 3);
  size_t hw = (size_t)x->h * x->w, per = ir_tensor_numel(x);
  double M = (double)hw * c->N;
  for (int ch = 0; ch < x->c; ch++) {
    double mean = batch ? ref_in(c, 2, 0, (size_t)ch) : rmean[ch];
    double invstd = batch ? ref_in(c, 3, 0, (size_t)ch) : 1.0 / sqrt(rvar[ch] + (double)c->n->a.bn.eps);
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < c->N; n++)
      for (size_t j = ch * hw; j < (ch + 1) * hw; j++) {
        double d = ref_in(c, 1, n, j);
        sdy += d;
        sdyx += d * (ref_in(c, 0, n, j) - mean) * invstd;
      }
    c->pgrad[0][ch] = sdyx;
    c->pgrad[1][ch] = sdy;
    if (c->n->n_out == 0) continue;
    for (int n = 0; n < c->N; n++)
      for (size_t j = ch * hw; j < (ch + 1) * hw; j++) {
        double d = ref_in(c, 1, n, j), xhat = (ref_in(c, 0, n, j) - mean) * invstd;
        c->out[0][n * per + j] = batch ? gamma[ch] * invstd / M * (M * d - sdy - xhat * sdyx)
                                       : gamma[ch] * invstd * d;
      }
  }
  return 0;
}

// in0 y (relu output), in1 dy -> dx = dy where y > 0 (x > 0), else 0.
int ref_relu_bwd(RefCtx *c) {
  const IrTensor *y = ref_tin(c, 0);
  if (!same_shape(y, ref_tin(c, 1)) || !same_shape(y, ref_tout(c, 0)))
    return ref_fail(c, "relu_bwd: y, dy, dx of one shape");
  size_t per = ir_tensor_numel(y);
  for (int n = 0; n < c->N; n++)
    for (size_t j = 0; j < per; j++)
      c->out[0][n * per + j] = ref_in(c, 0, n, j) > 0 ? ref_in(c, 1, n, j) : 0;
  return 0;
}

// in0 x, in1 y, in2 dy -> dx. Max: each output's gradient goes to the first
// maximum of its window (row-major), nowhere when that is a padded cell.
// Average: dy / divisor to every counted cell inside the image.
int ref_pool_bwd(RefCtx *c) {
  const IrPoolAttr *a = &c->n->a.pool;
  const IrTensor *x = ref_tin(c, 0), *y = ref_tin(c, 1);
  if (c->n->n_in != 3 || !same_shape(x, ref_tout(c, 0)) || !same_shape(y, ref_tin(c, 2)) ||
      a->kh * a->kw > 64)
    return ref_fail(c, "pool_bwd: x, y, dy -> dx like x");
  int ys[64], xs[64], in[64];
  for (int n = 0; n < c->N; n++)
    for (int ch = 0; ch < x->c; ch++)
      for (int oy = 0; oy < y->h; oy++)
        for (int ox = 0; ox < y->w; ox++) {
          double d = ref_in(c, 2, n, ((size_t)ch * y->h + oy) * y->w + ox);
          int nk = ref_pool_window(a, x->h, x->w, oy, ox, ys, xs, in);
          double best = -INFINITY;
          int arg = -1, count = 0;
          for (int k = 0; k < nk; k++) {
            if (!in[k] && !a->pad_counted) continue;
            double v = in[k] ? ref_in(c, 0, n, ((size_t)ch * x->h + ys[k]) * x->w + xs[k]) : 0;
            if (v > best) best = v, arg = k;
            count++;
          }
          if (count == 0 || arg < 0) return ref_fail(c, "a window without a value");
          double *dx = c->out[0] + (size_t)n * ir_tensor_numel(x) + (size_t)ch * x->h * x->w;
          if (a->is_max) {
            if (in[arg]) dx[(size_t)ys[arg] * x->w + xs[arg]] += d;
            continue;
          }
          double share = d / (a->pad_counted ? a->kh * a->kw : count);
          for (int k = 0; k < nk; k++)
            if (in[k]) dx[(size_t)ys[k] * x->w + xs[k]] += share;
        }
  return 0;
}

// in0 dy (C,1,1) -> dx (C,H,W) = dy / (H*W) everywhere.
int ref_gap_bwd(RefCtx *c) {
  const IrTensor *dy = ref_tin(c, 0), *dx = ref_tout(c, 0);
  if (dy->c != dx->c || dy->h != 1 || dy->w != 1) return ref_fail(c, "gap_bwd: (C,1,1) -> (C,H,W)");
  size_t hw = (size_t)dx->h * dx->w;
  for (int n = 0; n < c->N; n++)
    for (int ch = 0; ch < dx->c; ch++)
      for (size_t j = 0; j < hw; j++)
        c->out[0][n * ir_tensor_numel(dx) + ch * hw + j] = ref_in(c, 0, n, (size_t)ch) / (double)hw;
  return 0;
}

// in0 x, in1 dy ; w [K,F], b [K] -> [dx], g(w) = sum_n dy x^T, g(b) = sum_n dy.
int ref_linear_bwd(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0), *dy = ref_tin(c, 1);
  size_t F = ir_tensor_numel(x), K = (size_t)dy->c;
  if (c->n->n_out > 1 || (c->n->n_out == 1 && !same_shape(x, ref_tout(c, 0))))
    return ref_fail(c, "linear_bwd: x, dy -> [dx like x]");
  const double *w = ref_param(c, 0);
  for (int n = 0; n < c->N; n++)
    for (size_t k = 0; k < K; k++) {
      double d = ref_in(c, 1, n, k);
      c->pgrad[1][k] += d;
      for (size_t f = 0; f < F; f++) {
        c->pgrad[0][k * F + f] += d * ref_in(c, 0, n, f);
        if (c->n->n_out == 1) c->out[0][n * F + f] += w[k * F + f] * d;
      }
    }
  return 0;
}

// in0 mask (like dy, or (1,1,1) per sample), in1 dy -> dx = dy * mask.
int ref_mask_bwd(RefCtx *c) {
  const IrTensor *m = ref_tin(c, 0), *dy = ref_tin(c, 1);
  int per_sample = ir_tensor_numel(m) == 1;
  if (!same_shape(dy, ref_tout(c, 0)) || (!per_sample && !same_shape(m, dy)))
    return ref_fail(c, "mask_bwd: mask like dy or (1,1,1)");
  size_t per = ir_tensor_numel(dy);
  for (int n = 0; n < c->N; n++)
    for (size_t j = 0; j < per; j++)
      c->out[0][n * per + j] = ref_in(c, 1, n, j) * ref_in(c, 0, n, per_sample ? 0 : j);
  return 0;
}

// in0 softmax, in1 labels -> dlogits = weight / N * (softmax - q).
int ref_xent_bwd(RefCtx *c) {
  const IrTensor *p = ref_tin(c, 0);
  int K = p->c;
  if (ref_tin(c, 1)->kind != IR_T_LABELS || !same_shape(p, ref_tout(c, 0)))
    return ref_fail(c, "xent_bwd: softmax, labels -> dlogits");
  double eps = c->n->a.xent.smoothing, scale = (double)c->n->a.xent.weight / c->N;
  for (int n = 0; n < c->N; n++) {
    double lab = ref_in(c, 1, n, 0);
    if (!(lab >= 0 && lab < K) || lab != floor(lab)) return ref_fail(c, "label %g of sample %d", lab, n);
    for (int k = 0; k < K; k++) {
      double q = (k == (int)lab ? 1.0 - eps : 0.0) + eps / K;
      c->out[0][(size_t)n * K + k] = scale * (ref_in(c, 0, n, (size_t)k) - q);
    }
  }
  return 0;
}

// in0 g -> out0 (+)= g (the runner adds when the accumulate bit is set).
int ref_accum(RefCtx *c) {
  const IrTensor *x = ref_tin(c, 0);
  if (!same_shape(x, ref_tout(c, 0))) return ref_fail(c, "accum: input and output differ");
  size_t per = ir_tensor_numel(x);
  int nb = x->kind == IR_T_ACT ? c->N : 1;
  for (int n = 0; n < nb; n++)
    for (size_t j = 0; j < per; j++) c->out[0][n * per + j] = ref_in(c, 0, n, j);
  return 0;
}
