// tests/unit/emu_ref.c — a naive double-precision interpreter of the IR, written
// from ir.h's contract alone (no code shared with the emitter), to check the
// generated CUDA programs against (emu_harness.h).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rng.h"
#include "tests/unit/emu_harness.h"

static int root_of(const IrGraph *g, int t, int *c0) {
  int off = 0;
  while (g->tensors[t].view_of >= 0) {
    off += g->tensors[t].chan_offset;
    t = g->tensors[t].view_of;
  }
  if (c0) *c0 = off;
  return t;
}

static int batched(const IrTensor *t) { return t->kind == IR_T_ACT || t->kind == IR_T_LABELS; }

double *emu_ref_at(const EmuRefRun *r, int t, int n, int c, int e) {
  int c0;
  int rt = root_of(r->g, t, &c0);
  const IrTensor *R = &r->g->tensors[rt], *T = &r->g->tensors[t];
  size_t numel = (size_t)R->c * R->h * R->w;
  size_t hw = (size_t)T->h * T->w;
  return r->t[rt] + (batched(R) ? (size_t)n * numel : 0) + (size_t)(c0 + c) * hw + (size_t)e;
}

#define AT(t, n, c, e) (*emu_ref_at(r, (t), (n), (c), (e)))

static double *gradp(EmuRefRun *r, int p) { return r->grads + r->g->params->items[p].offset; }
static double *parp(EmuRefRun *r, int p) { return r->params + r->g->params->items[p].offset; }
static double *bufp(EmuRefRun *r, int p) { return r->buffers + r->g->params->items[p].offset; }

static void put(EmuRefRun *r, const IrNode *nd, int k, int n, int c, int e, double v) {
  double *p = emu_ref_at(r, nd->out[k], n, c, e);
  if (nd->accumulate & (1 << k)) *p += v;
  else *p = v;
}

static void put_grad(EmuRefRun *r, const IrNode *nd, int k, size_t i, double v) {
  double *p = gradp(r, nd->param[k]) + i;
  if (nd->accumulate & (1 << (IR_MAX_OUT + k))) *p += v;
  else *p = v;
}

static const IrConvAttr *cattr(const IrGraph *g, const IrNode *n) {
  return n->a.conv.kh > 0 || n->fwd < 0 ? &n->a.conv : &g->nodes[n->fwd].a.conv;
}
static const IrPoolAttr *pattr(const IrGraph *g, const IrNode *n) {
  return n->a.pool.kh > 0 || n->fwd < 0 ? &n->a.pool : &g->nodes[n->fwd].a.pool;
}
static const IrBnAttr *battr(const IrGraph *g, const IrNode *n) {
  return n->a.bn.eps > 0 || n->fwd < 0 ? &n->a.bn : &g->nodes[n->fwd].a.bn;
}
static const IrXentAttr *xattr(const IrGraph *g, const IrNode *n) {
  return n->a.xent.weight != 0 || n->fwd < 0 ? &n->a.xent : &g->nodes[n->fwd].a.xent;
}

// conv: x (Ci,H,W) -> y (Co,Ho,Wo); mode 0 forward, 1 data, 2 filter
static void conv(EmuRefRun *r, const IrNode *nd, int mode) {
  const IrGraph *g = r->g;
  const IrConvAttr *a = cattr(g, nd);
  int x = mode == 1 ? nd->out[0] : nd->in[0];
  int y = mode == 0 ? nd->out[0] : mode == 1 ? nd->in[0] : nd->in[1];
  const IrTensor *tx = &g->tensors[x], *ty = &g->tensors[y];
  int cig = a->cin / a->groups, cog = a->cout / a->groups;
  const double *w = parp(r, nd->param[0]);
  size_t nw = (size_t)a->cout * cig * a->kh * a->kw;
  double *gw = mode == 2 ? xcalloc(nw, sizeof(double)) : NULL;
  double *dx = NULL;
  size_t nx = (size_t)r->n * tx->c * tx->h * tx->w;
  if (mode == 1) dx = xcalloc(nx ? nx : 1, sizeof(double));
  for (int n = 0; n < r->n; n++)
    for (int co = 0; co < ty->c; co++)
      for (int oy = 0; oy < ty->h; oy++)
        for (int ox = 0; ox < ty->w; ox++) {
          double acc = 0;
          int e = oy * ty->w + ox;
          for (int cj = 0; cj < cig; cj++) {
            int ci = (co / cog) * cig + cj;
            for (int ky = 0; ky < a->kh; ky++)
              for (int kx = 0; kx < a->kw; kx++) {
                int iy = oy * a->sh - a->pt + ky, ix = ox * a->sw - a->pl + kx;
                if (iy < 0 || iy >= tx->h || ix < 0 || ix >= tx->w) continue;
                size_t wi = (((size_t)co * cig + cj) * a->kh + ky) * a->kw + kx;
                int xe = iy * tx->w + ix;
                if (mode == 0) acc += AT(x, n, ci, xe) * w[wi];
                else if (mode == 1)
                  dx[((size_t)n * tx->c + ci) * tx->h * tx->w + xe] += AT(y, n, co, e) * w[wi];
                else gw[wi] += AT(y, n, co, e) * AT(x, n, ci, xe);
              }
          }
          if (mode == 0) put(r, nd, 0, n, co, e, acc);
        }
  if (mode == 1) {
    for (int n = 0; n < r->n; n++)
      for (int c = 0; c < tx->c; c++)
        for (int e = 0; e < tx->h * tx->w; e++)
          put(r, nd, 0, n, c, e, dx[((size_t)n * tx->c + c) * tx->h * tx->w + e]);
    free(dx);
  }
  if (mode == 2) {
    for (size_t i = 0; i < nw; i++) put_grad(r, nd, 0, i, gw[i]);
    free(gw);
  }
}

static void bn(EmuRefRun *r, const IrNode *nd) {
  const IrBnAttr *a = battr(r->g, nd);
  int x = nd->in[0];
  const IrTensor *t = &r->g->tensors[x];
  int hw = t->h * t->w;
  double m = (double)r->n * hw;
  for (int c = 0; c < t->c; c++) {
    double mean, var;
    if (a->batch_stats) {
      double s = 0, s2 = 0;
      for (int n = 0; n < r->n; n++)
        for (int e = 0; e < hw; e++) s += AT(x, n, c, e);
      mean = s / m;
      for (int n = 0; n < r->n; n++)
        for (int e = 0; e < hw; e++) s2 += (AT(x, n, c, e) - mean) * (AT(x, n, c, e) - mean);
      var = s2 / m;
      if (nd->n_out >= 3) {
        AT(nd->out[1], 0, c, 0) = mean;
        AT(nd->out[2], 0, c, 0) = 1.0 / sqrt(var + a->eps);
      }
      if (a->update_running) {
        double *rm = bufp(r, nd->param[2]), *rv = bufp(r, nd->param[3]);
        rm[c] = (1 - a->momentum) * rm[c] + a->momentum * mean;
        rv[c] = (1 - a->momentum) * rv[c] + a->momentum * var * m / (m - 1);
      }
    } else {
      mean = bufp(r, nd->param[2])[c];
      var = bufp(r, nd->param[3])[c];
    }
    double istd = 1.0 / sqrt(var + a->eps), gm = parp(r, nd->param[0])[c],
           bt = parp(r, nd->param[1])[c];
    for (int n = 0; n < r->n; n++)
      for (int e = 0; e < hw; e++) put(r, nd, 0, n, c, e, (AT(x, n, c, e) - mean) * istd * gm + bt);
  }
}

static void bn_bwd(EmuRefRun *r, const IrNode *nd) {
  const IrBnAttr *a = battr(r->g, nd);
  int x = nd->in[0], dy = nd->in[1];
  const IrTensor *t = &r->g->tensors[x];
  int hw = t->h * t->w, batch = nd->n_in >= 4;
  double m = (double)r->n * hw;
  for (int c = 0; c < t->c; c++) {
    double mean, istd;
    if (batch) {
      mean = AT(nd->in[2], 0, c, 0);
      istd = AT(nd->in[3], 0, c, 0);
    } else {
      mean = bufp(r, nd->param[2])[c];
      istd = 1.0 / sqrt(bufp(r, nd->param[3])[c] + a->eps);
    }
    double sdy = 0, sdyx = 0;
    for (int n = 0; n < r->n; n++)
      for (int e = 0; e < hw; e++) {
        double xh = (AT(x, n, c, e) - mean) * istd;
        sdy += AT(dy, n, c, e);
        sdyx += AT(dy, n, c, e) * xh;
      }
    put_grad(r, nd, 0, (size_t)c, sdyx);
    put_grad(r, nd, 1, (size_t)c, sdy);
    if (nd->n_out < 1 || nd->out[0] < 0) continue;
    double gm = parp(r, nd->param[0])[c];
    for (int n = 0; n < r->n; n++)
      for (int e = 0; e < hw; e++) {
        double xh = (AT(x, n, c, e) - mean) * istd, g = AT(dy, n, c, e);
        double v = batch ? gm * istd * (g - sdy / m - xh * sdyx / m) : gm * istd * g;
        put(r, nd, 0, n, c, e, v);
      }
  }
}

// Max-pool argmax of window (oy, ox): first maximum in row-major order
// (padded cells take part as 0 when counted). Returns the tap or -1.
static int pool_arg(EmuRefRun *r, const IrPoolAttr *a, int x, int n, int c, int oy, int ox,
                    double *best) {
  const IrTensor *t = &r->g->tensors[x];
  int arg = -1;
  for (int ky = 0; ky < a->kh; ky++)
    for (int kx = 0; kx < a->kw; kx++) {
      int iy = oy * a->sh - a->pt + ky, ix = ox * a->sw - a->pl + kx;
      double v;
      if (iy < 0 || iy >= t->h || ix < 0 || ix >= t->w) {
        if (!a->pad_counted) continue;
        v = 0;
      } else {
        v = AT(x, n, c, iy * t->w + ix);
      }
      if (arg < 0 || v > *best) {
        *best = v;
        arg = ky * a->kw + kx;
      }
    }
  return arg;
}

static double pool_div(const IrPoolAttr *a, const IrTensor *t, int oy, int ox) {
  if (a->pad_counted) return a->kh * a->kw;
  int y0 = oy * a->sh - a->pt, x0 = ox * a->sw - a->pl;
  int y1 = y0 + a->kh < t->h ? y0 + a->kh : t->h, x1 = x0 + a->kw < t->w ? x0 + a->kw : t->w;
  if (y0 < 0) y0 = 0;
  if (x0 < 0) x0 = 0;
  return (double)(y1 - y0) * (x1 - x0);
}

static void pool(EmuRefRun *r, const IrNode *nd, int bwd) {
  const IrPoolAttr *a = pattr(r->g, nd);
  int x = nd->in[0], y = bwd ? nd->in[1] : nd->out[0];
  const IrTensor *tx = &r->g->tensors[x], *ty = &r->g->tensors[y];
  size_t nx = (size_t)r->n * tx->c * tx->h * tx->w;
  double *dx = bwd ? xcalloc(nx ? nx : 1, sizeof(double)) : NULL;
  for (int n = 0; n < r->n; n++)
    for (int c = 0; c < tx->c; c++)
      for (int oy = 0; oy < ty->h; oy++)
        for (int ox = 0; ox < ty->w; ox++) {
          int e = oy * ty->w + ox;
          if (a->is_max) {
            double best = 0;
            int arg = pool_arg(r, a, x, n, c, oy, ox, &best);
            if (!bwd) {
              put(r, nd, 0, n, c, e, best);
              continue;
            }
            int iy = oy * a->sh - a->pt + arg / a->kw, ix = ox * a->sw - a->pl + arg % a->kw;
            if (iy >= 0 && iy < tx->h && ix >= 0 && ix < tx->w)
              dx[((size_t)n * tx->c + c) * tx->h * tx->w + iy * tx->w + ix] += AT(nd->in[2], n, c, e);
            continue;
          }
          double div = pool_div(a, tx, oy, ox), s = 0;
          for (int ky = 0; ky < a->kh; ky++)
            for (int kx = 0; kx < a->kw; kx++) {
              int iy = oy * a->sh - a->pt + ky, ix = ox * a->sw - a->pl + kx;
              if (iy < 0 || iy >= tx->h || ix < 0 || ix >= tx->w) continue;
              if (bwd) dx[((size_t)n * tx->c + c) * tx->h * tx->w + iy * tx->w + ix] += AT(nd->in[2], n, c, e) / div;
              else s += AT(x, n, c, iy * tx->w + ix);
            }
          if (!bwd) put(r, nd, 0, n, c, e, s / div);
        }
  if (bwd) {
    for (int n = 0; n < r->n; n++)
      for (int c = 0; c < tx->c; c++)
        for (int e = 0; e < tx->h * tx->w; e++)
          put(r, nd, 0, n, c, e, dx[((size_t)n * tx->c + c) * tx->h * tx->w + e]);
    free(dx);
  }
}

static double mask_val(const EmuRefRun *r, int node, size_t i) {
  const NaoMask *m = r->masks[node];
  if (!m) return 1.0;
  return rng_hash_uniform(m->key, i) < m->keep ? (double)m->scale : 0.0;
}

static void linear(EmuRefRun *r, const IrNode *nd, int bwd) {
  int x = nd->in[0];
  const IrTensor *tx = &r->g->tensors[x];
  int kin = tx->c * tx->h * tx->w;
  int K = bwd ? r->g->tensors[nd->in[1]].c : r->g->tensors[nd->out[0]].c;
  const double *w = parp(r, nd->param[0]);
  if (!bwd) {
    for (int n = 0; n < r->n; n++)
      for (int k = 0; k < K; k++) {
        double s = nd->n_param >= 2 ? parp(r, nd->param[1])[k] : 0;
        for (int i = 0; i < kin; i++) s += w[(size_t)k * kin + i] * AT(x, n, 0, i);
        put(r, nd, 0, n, k, 0, s);
      }
    return;
  }
  int dy = nd->in[1];
  if (nd->n_out >= 1 && nd->out[0] >= 0)
    for (int n = 0; n < r->n; n++)
      for (int i = 0; i < kin; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += AT(dy, n, k, 0) * w[(size_t)k * kin + i];
        put(r, nd, 0, n, 0, i, s);
      }
  for (int k = 0; k < K; k++)
    for (int i = 0; i < kin; i++) {
      double s = 0;
      for (int n = 0; n < r->n; n++) s += AT(dy, n, k, 0) * AT(x, n, 0, i);
      put_grad(r, nd, 0, (size_t)k * kin + i, s);
    }
  if (nd->n_param >= 2)
    for (int k = 0; k < K; k++) {
      double s = 0;
      for (int n = 0; n < r->n; n++) s += AT(dy, n, k, 0);
      put_grad(r, nd, 1, (size_t)k, s);
    }
}

static void xent(EmuRefRun *r, const IrNode *nd, int bwd) {
  const IrXentAttr *a = xattr(r->g, nd);
  int K = r->g->tensors[nd->in[0]].c;
  double total = 0;
  for (int n = 0; n < r->n; n++) {
    int y = (int)AT(nd->in[1], n, 0, 0);
    if (bwd) {
      for (int k = 0; k < K; k++) {
        double q = (1 - a->smoothing) * (k == y) + a->smoothing / K;
        put(r, nd, 0, n, k, 0, a->weight * (AT(nd->in[0], n, k, 0) - q) / r->n);
      }
      continue;
    }
    double m = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) m = fmax(m, AT(nd->in[0], n, k, 0));
    for (int k = 0; k < K; k++) s += exp(AT(nd->in[0], n, k, 0) - m);
    double lse = m + log(s), l = 0;
    for (int k = 0; k < K; k++) {
      double lp = AT(nd->in[0], n, k, 0) - lse;
      double q = (1 - a->smoothing) * (k == y) + a->smoothing / K;
      l -= q * lp;
      AT(nd->out[1], n, k, 0) = exp(lp);
    }
    total += l;
  }
  if (!bwd) put(r, nd, 0, 0, 0, 0, a->weight * total / r->n);
}

static void eltwise(EmuRefRun *r, const IrNode *nd) {
  const IrTensor *t = &r->g->tensors[nd->out[0]];
  int hw = t->h * t->w;
  for (int n = 0; n < (batched(t) ? r->n : 1); n++)
    for (int c = 0; c < t->c; c++)
      for (int e = 0; e < hw; e++) {
        size_t flat = (size_t)n * t->c * hw + (size_t)c * hw + e;
        double v = 0;
        switch (nd->kind) {
          case IR_RELU: v = fmax(AT(nd->in[0], n, c, e), 0); break;
          case IR_ADD:
            for (int i = 0; i < nd->n_in; i++) v += AT(nd->in[i], n, c, e);
            break;
          case IR_DROPOUT:
            v = mask_val(r, (int)(nd - r->g->nodes), flat);
            AT(nd->out[1], n, c, e) = v;
            v *= AT(nd->in[0], n, c, e);
            break;
          case IR_DROPPATH:
            v = mask_val(r, (int)(nd - r->g->nodes), (size_t)n);
            if (c == 0 && e == 0) AT(nd->out[1], n, 0, 0) = v;
            v *= AT(nd->in[0], n, c, e);
            break;
          case IR_RELU_BWD: v = AT(nd->in[0], n, c, e) > 0 ? AT(nd->in[1], n, c, e) : 0; break;
          case IR_MASK_BWD: {
            const IrTensor *tm = &r->g->tensors[nd->in[0]];
            double mk = tm->c == 1 && tm->h == 1 && tm->w == 1 && t->c * hw > 1
                            ? AT(nd->in[0], n, 0, 0)
                            : AT(nd->in[0], n, c, e);
            v = AT(nd->in[1], n, c, e) * mk;
            break;
          }
          case IR_GAP_BWD: v = AT(nd->in[0], n, c, 0) / hw; break;
          case IR_ACCUM: v = AT(nd->in[0], n, c, e); break;
          default: break;
        }
        put(r, nd, 0, n, c, e, v);
      }
}

static int run_node(EmuRefRun *r, int id, char *err, size_t errlen) {
  const IrNode *nd = &r->g->nodes[id];
  switch (nd->kind) {
    case IR_INPUT:
    case IR_LABELS: break;
    case IR_CONV: conv(r, nd, 0); break;
    case IR_CONV_BWD_DATA: conv(r, nd, 1); break;
    case IR_CONV_BWD_FILTER: conv(r, nd, 2); break;
    case IR_BN: bn(r, nd); break;
    case IR_BN_BWD: bn_bwd(r, nd); break;
    case IR_POOL: pool(r, nd, 0); break;
    case IR_POOL_BWD: pool(r, nd, 1); break;
    case IR_LINEAR: linear(r, nd, 0); break;
    case IR_LINEAR_BWD: linear(r, nd, 1); break;
    case IR_XENT: xent(r, nd, 0); break;
    case IR_XENT_BWD: xent(r, nd, 1); break;
    case IR_GAP: {
      const IrTensor *t = &r->g->tensors[nd->in[0]];
      int hw = t->h * t->w;
      for (int n = 0; n < r->n; n++)
        for (int c = 0; c < t->c; c++) {
          double s = 0;
          for (int e = 0; e < hw; e++) s += AT(nd->in[0], n, c, e);
          put(r, nd, 0, n, c, 0, s / hw);
        }
      break;
    }
    case IR_CONCAT: {
      int off = 0;
      for (int i = 0; i < nd->n_in; i++) {
        const IrTensor *t = &r->g->tensors[nd->in[i]];
        for (int n = 0; n < r->n; n++)
          for (int c = 0; c < t->c; c++)
            for (int e = 0; e < t->h * t->w; e++) {
              double v = AT(nd->in[i], n, c, e);
              put(r, nd, 0, n, off + c, e, v);
            }
        off += t->c;
      }
      break;
    }
    default:
      if (nd->kind == IR_RELU || nd->kind == IR_ADD || nd->kind == IR_DROPOUT ||
          nd->kind == IR_DROPPATH || nd->kind == IR_RELU_BWD || nd->kind == IR_MASK_BWD ||
          nd->kind == IR_GAP_BWD || nd->kind == IR_ACCUM) {
        eltwise(r, nd);
        break;
      }
      snprintf(err, errlen, "reference: node %s of kind %s", nd->name, ir_kind_name(nd->kind));
      return -1;
  }
  return 0;
}

int emu_ref_run(EmuRefRun *r, const IrGraph *g, int n, const float *params, const float *buffers,
            const NaoMask *const *mask_by_node, const float *input, const int *labels, char *err,
            size_t errlen) {
  memset(r, 0, sizeof *r);
  r->g = g;
  r->n = n;
  r->t = xcalloc((size_t)g->n_tensors, sizeof *r->t);
  for (int t = 0; t < g->n_tensors; t++) {
    const IrTensor *x = &g->tensors[t];
    if (x->view_of >= 0) continue;
    size_t cnt = (size_t)x->c * x->h * x->w * (batched(x) ? (size_t)n : 1);
    r->t[t] = xmalloc(sizeof(double) * (cnt ? cnt : 1));
    for (size_t i = 0; i < cnt; i++) r->t[t][i] = NAN;
  }
  const ParamTable *pt = g->params;
  r->params = xcalloc(pt->n_trainable + 1, sizeof(double));
  r->grads = xcalloc(pt->n_trainable + 1, sizeof(double));
  r->buffers = xcalloc(pt->n_buffer + 1, sizeof(double));
  for (size_t i = 0; i < pt->n_trainable; i++) r->params[i] = params[i];
  for (size_t i = 0; i < pt->n_buffer; i++) r->buffers[i] = buffers[i];
  r->masks = (const NaoMask **)mask_by_node;
  if (g->input >= 0) {
    const IrTensor *x = &g->tensors[g->input];
    size_t cnt = (size_t)n * x->c * x->h * x->w;
    for (size_t i = 0; i < cnt; i++) r->t[g->input][i] = input[i];
  }
  if (g->labels >= 0)
    for (int i = 0; i < n; i++) r->t[g->labels][i] = labels[i];
  for (int i = 0; i < g->n_nodes; i++)
    if (run_node(r, i, err, errlen)) return -1;
  return 0;
}

void emu_ref_free(EmuRefRun *r) {
  if (r->t)
    for (int t = 0; t < r->g->n_tensors; t++) free(r->t[t]);
  free(r->t);
  free(r->params);
  free(r->grads);
  free(r->buffers);
  memset(r, 0, sizeof *r);
}
