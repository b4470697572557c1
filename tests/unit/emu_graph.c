// tests/unit/emu_graph.c — hand-built IR graphs for the CUDA emitter's tests
// (emu_graph.h).
#include "tests/unit/emu_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_init(TG *t, IrMode mode) {
  memset(t, 0, sizeof *t);
  params_init(&t->pt);
  ir_init(&t->g, &t->pt, mode);
}

void tg_free(TG *t) {
  ir_free(&t->g);
  params_free(&t->pt);
}

int tg_act(TG *t, int c, int h, int w, const char *name) {
  return ir_add_tensor(&t->g, IR_T_ACT, c, h, w, name);
}

static int stat(TG *t, int c, const char *name) { return ir_add_tensor(&t->g, IR_T_STAT, c, 1, 1, name); }

int tg_node(TG *t, IrKind kind, const char *name, int n_in, const int *in, int n_out,
            const int *out, int n_param, const int *param) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = kind;
  snprintf(n.name, sizeof n.name, "%s", name);
  n.n_in = n_in;
  n.n_out = n_out;
  n.n_param = n_param;
  for (int i = 0; i < n_in; i++) n.in[i] = in[i];
  for (int i = 0; i < n_out; i++) n.out[i] = out[i];
  for (int i = 0; i < n_param; i++) n.param[i] = param[i];
  n.fwd = -1;
  int id = ir_add_node(&t->g, &n);
  if (t->g.n_fwd_nodes == id && kind < IR_CONV_BWD_DATA) t->g.n_fwd_nodes = id + 1;
  return id;
}

int tg_input(TG *t, int c, int h, int w) {
  int x = tg_act(t, c, h, w, "input");
  tg_node(t, IR_INPUT, "input", 0, NULL, 1, &x, 0, NULL);
  t->g.input = x;
  return x;
}

int tg_labels(TG *t) {
  int l = ir_add_tensor(&t->g, IR_T_LABELS, 1, 1, 1, "labels");
  tg_node(t, IR_LABELS, "labels", 0, NULL, 1, &l, 0, NULL);
  t->g.labels = l;
  t->g.has_loss = 1;
  return l;
}

static int param(TG *t, const char *mod, const char *suffix, int ndim, const int *dims,
                 int trainable, ParamInit init, int fan_in) {
  char name[PARAM_NAME_MAX];
  snprintf(name, sizeof name, "%s.%s", mod, suffix);
  return params_get(&t->pt, name, ndim, dims, trainable, init, fan_in, 0);
}

int tg_conv_out(TG *t, const char *name, int x, int y, int kh, int kw, int sh, int sw, int pt,
                int pl, int pb, int pr, int groups) {
  const IrTensor *tx = &t->g.tensors[x];
  int cin = tx->c, cout = t->g.tensors[y].c;
  int dims[4] = {cout, cin / groups, kh, kw};
  int w = param(t, name, "weight", 4, dims, 1, PINIT_KAIMING_NORMAL, cin / groups * kh * kw);
  int id = tg_node(t, IR_CONV, name, 1, &x, 1, &y, 1, &w);
  IrConvAttr *a = &t->g.nodes[id].a.conv;
  *a = (IrConvAttr){kh, kw, sh, sw, pt, pl, pb, pr, groups, cin, cout};
  return y;
}

int tg_conv(TG *t, const char *name, int x, int cout, int kh, int kw, int sh, int sw, int pt,
            int pl, int pb, int pr, int groups) {
  const IrTensor *tx = &t->g.tensors[x];
  int ho = (tx->h + pt + pb - kh) / sh + 1, wo = (tx->w + pl + pr - kw) / sw + 1;
  char tn[IR_NAME_MAX];
  snprintf(tn, sizeof tn, "%s:out", name);
  int y = tg_act(t, cout, ho, wo, tn);
  return tg_conv_out(t, name, x, y, kh, kw, sh, sw, pt, pl, pb, pr, groups);
}

int tg_bn(TG *t, const char *name, int x) {
  const IrTensor *tx = &t->g.tensors[x];
  int c = tx->c, train = t->g.mode == IR_MODE_TRAIN;
  int dims[1] = {c};
  int p[4] = {param(t, name, "weight", 1, dims, 1, PINIT_ONES, 0),
              param(t, name, "bias", 1, dims, 1, PINIT_ZEROS, 0),
              param(t, name, "running_mean", 1, dims, 0, PINIT_ZEROS, 0),
              param(t, name, "running_var", 1, dims, 0, PINIT_ONES, 0)};
  char tn[IR_NAME_MAX];
  snprintf(tn, sizeof tn, "%s:out", name);
  int out[3] = {tg_act(t, c, tx->h, tx->w, tn), -1, -1};
  if (train) {
    snprintf(tn, sizeof tn, "%s:mean", name);
    out[1] = stat(t, c, tn);
    snprintf(tn, sizeof tn, "%s:invstd", name);
    out[2] = stat(t, c, tn);
  }
  int id = tg_node(t, IR_BN, name, 1, &x, train ? 3 : 1, out, 4, p);
  t->g.nodes[id].a.bn = (IrBnAttr){1e-5f, 0.1f, train, train};
  return out[0];
}

static int simple(TG *t, IrKind kind, const char *name, int n, const int *xs, int c, int h, int w) {
  char tn[IR_NAME_MAX];
  snprintf(tn, sizeof tn, "%s:out", name);
  int y = tg_act(t, c, h, w, tn);
  tg_node(t, kind, name, n, xs, 1, &y, 0, NULL);
  return y;
}

int tg_relu(TG *t, const char *name, int x) {
  const IrTensor *tx = &t->g.tensors[x];
  return simple(t, IR_RELU, name, 1, &x, tx->c, tx->h, tx->w);
}

int tg_add(TG *t, const char *name, int n, const int *xs) {
  const IrTensor *tx = &t->g.tensors[xs[0]];
  return simple(t, IR_ADD, name, n, xs, tx->c, tx->h, tx->w);
}

int tg_concat(TG *t, const char *name, int n, const int *xs, int out) {
  int c = 0;
  for (int i = 0; i < n; i++) c += t->g.tensors[xs[i]].c;
  if (out < 0) {
    char tn[IR_NAME_MAX];
    snprintf(tn, sizeof tn, "%s:out", name);
    out = tg_act(t, c, t->g.tensors[xs[0]].h, t->g.tensors[xs[0]].w, tn);
  }
  tg_node(t, IR_CONCAT, name, n, xs, 1, &out, 0, NULL);
  return out;
}

int tg_pool(TG *t, const char *name, int x, int is_max, int k, int s, int pt, int pl, int pb,
            int pr, int counted) {
  const IrTensor *tx = &t->g.tensors[x];
  int ho = (tx->h + pt + pb - k) / s + 1, wo = (tx->w + pl + pr - k) / s + 1;
  int y = simple(t, IR_POOL, name, 1, &x, tx->c, ho, wo);
  t->g.nodes[t->g.n_nodes - 1].a.pool = (IrPoolAttr){is_max, k, k, s, s, pt, pl, pb, pr, counted};
  return y;
}

int tg_gap(TG *t, const char *name, int x) {
  return simple(t, IR_GAP, name, 1, &x, t->g.tensors[x].c, 1, 1);
}

int tg_linear(TG *t, const char *name, int x, int k) {
  const IrTensor *tx = &t->g.tensors[x];
  int kin = tx->c * tx->h * tx->w;
  int dw[2] = {k, kin}, db[1] = {k};
  int p[2] = {param(t, name, "weight", 2, dw, 1, PINIT_KAIMING_NORMAL, kin),
              param(t, name, "bias", 1, db, 1, PINIT_LINEAR_BIAS, kin)};
  char tn[IR_NAME_MAX];
  snprintf(tn, sizeof tn, "%s:out", name);
  int y = tg_act(t, k, 1, 1, tn);
  tg_node(t, IR_LINEAR, name, 1, &x, 1, &y, 2, p);
  t->g.logits = y;
  return y;
}

static int mask_node(TG *t, IrKind kind, const char *name, int x, float keep, int cell, int nc) {
  const IrTensor *tx = &t->g.tensors[x];
  char tn[IR_NAME_MAX];
  snprintf(tn, sizeof tn, "%s:out", name);
  int out[2] = {tg_act(t, tx->c, tx->h, tx->w, tn), -1};
  snprintf(tn, sizeof tn, "%s:mask", name);
  if (kind == IR_DROPPATH) out[1] = tg_act(t, 1, 1, 1, tn);
  else out[1] = tg_act(t, tx->c, tx->h, tx->w, tn);
  int id = tg_node(t, kind, name, 1, &x, 2, out, 0, NULL);
  t->g.nodes[id].a.drop = (IrDropAttr){keep, cell, nc};
  return out[0];
}

int tg_droppath(TG *t, const char *name, int x, float keep, int cell, int n_cells) {
  return mask_node(t, IR_DROPPATH, name, x, keep, cell, n_cells);
}

int tg_dropout(TG *t, const char *name, int x, float keep) {
  return mask_node(t, IR_DROPOUT, name, x, keep, 0, 0);
}

int tg_xent(TG *t, const char *name, int logits, int labels, float smoothing, float weight) {
  char tn[IR_NAME_MAX];
  snprintf(tn, sizeof tn, "%s:loss", name);
  int out[2] = {ir_add_tensor(&t->g, IR_T_SCALAR, 1, 1, 1, tn), -1};
  snprintf(tn, sizeof tn, "%s:softmax", name);
  out[1] = tg_act(t, t->g.tensors[logits].c, 1, 1, tn);
  int in[2] = {logits, labels};
  int id = tg_node(t, IR_XENT, name, 2, in, 2, out, 0, NULL);
  t->g.nodes[id].a.xent = (IrXentAttr){smoothing, weight};
  if (t->g.loss < 0) t->g.loss = out[0];
  return out[0];
}

// ---------------------------------------------------------------- backward

typedef struct {
  TG *t;
  int *grad;      // per forward tensor: its gradient tensor, -1
  int *contribs;  // contributions so far
  int n_tmp;
} Bwd;

// Where a backward node writes its contribution to grad(x): returns the
// tensor to write and sets *acc (accumulate bit) and *accum_into (when an
// IR_ACCUM node must follow, the gradient it adds to; else -1).
static int contribution(Bwd *b, int x, int *acc, int *accum_into) {
  TG *t = b->t;
  const IrTensor *tx = &t->g.tensors[x];
  *acc = 0;
  *accum_into = -1;
  if (b->grad[x] < 0) {
    char tn[IR_NAME_MAX];
    snprintf(tn, sizeof tn, "grad:%.100s", tx->name);
    int kind = tx->kind;
    b->grad[x] = ir_add_tensor(&t->g, (IrTensorKind)kind, tx->c, tx->h, tx->w, tn);
    t->g.tensors[b->grad[x]].grad_of = x;
    b->contribs[x] = 1;
    return b->grad[x];
  }
  int k = b->contribs[x]++;
  if (k % 2 == 1) {
    *acc = 1;
    return b->grad[x];
  }
  char tn[IR_NAME_MAX];
  snprintf(tn, sizeof tn, "gradtmp%d:%.90s", b->n_tmp++, tx->name);
  int tmp = ir_add_tensor(&t->g, tx->kind, tx->c, tx->h, tx->w, tn);
  *accum_into = b->grad[x];
  return tmp;
}

static void finish(Bwd *b, int tmp, int into) {
  if (into < 0) return;
  char name[IR_NAME_MAX];
  snprintf(name, sizeof name, "accum:%.100s", b->t->g.tensors[into].name);
  int id = tg_node(b->t, IR_ACCUM, name, 1, &tmp, 1, &into, 0, NULL);
  b->t->g.nodes[id].accumulate = 1;
}

// A backward node with one gradient output for forward tensor x.
static int bwd1(Bwd *b, IrKind kind, int fwd, const char *suffix, int n_in, const int *in, int x) {
  const IrNode *f = &b->t->g.nodes[fwd];
  char name[IR_NAME_MAX];
  snprintf(name, sizeof name, "%.96s:%s", f->name, suffix);
  int acc, into;
  int out = contribution(b, x, &acc, &into);
  int id = tg_node(b->t, kind, name, n_in, in, 1, &out, b->t->g.nodes[fwd].n_param,
                   b->t->g.nodes[fwd].param);
  IrNode *n = &b->t->g.nodes[id];
  n->fwd = fwd;
  n->accumulate = acc;
  n->a = b->t->g.nodes[fwd].a;
  finish(b, out, into);
  return id;
}

static int needs_grad(const TG *t, int x) { return x != t->g.input && t->g.tensors[x].kind == IR_T_ACT; }

static void back_node(Bwd *b, int id) {
  TG *t = b->t;
  IrNode f = t->g.nodes[id];
  int dy = f.n_out ? b->grad[f.out[0]] : -1;
  if (f.kind == IR_XENT) {
    int in[2] = {f.out[1], f.in[1]};
    bwd1(b, IR_XENT_BWD, id, "bwd", 2, in, f.in[0]);
    return;
  }
  if (dy < 0) return;  // nothing downstream
  int x = f.n_in ? f.in[0] : -1;
  switch (f.kind) {
    case IR_CONV: {
      int in2[2] = {x, dy};
      int idf = tg_node(t, IR_CONV_BWD_FILTER, "", 2, in2, 0, NULL, 1, f.param);
      IrNode *nf = &t->g.nodes[idf];
      snprintf(nf->name, sizeof nf->name, "%.96s:bwd_filter", f.name);
      nf->fwd = id;
      nf->a = f.a;
      if (needs_grad(t, x)) bwd1(b, IR_CONV_BWD_DATA, id, "bwd_data", 1, &dy, x);
      break;
    }
    case IR_BN: {
      int in[4] = {x, dy, f.n_out >= 3 ? f.out[1] : -1, f.n_out >= 3 ? f.out[2] : -1};
      if (needs_grad(t, x)) bwd1(b, IR_BN_BWD, id, "bwd", f.n_out >= 3 ? 4 : 2, in, x);
      break;
    }
    case IR_RELU: {
      int in[2] = {f.out[0], dy};
      if (needs_grad(t, x)) bwd1(b, IR_RELU_BWD, id, "bwd", 2, in, x);
      break;
    }
    case IR_ADD:
      for (int i = 0; i < f.n_in; i++)
        if (needs_grad(t, f.in[i])) {
          char s[16];
          snprintf(s, sizeof s, "bwd%d", i);
          int id2 = bwd1(b, IR_ACCUM, id, s, 1, &dy, f.in[i]);
          (void)id2;
        }
      break;
    case IR_CONCAT: {
      int off = 0;
      for (int i = 0; i < f.n_in; i++) {
        int xi = f.in[i];
        const IrTensor *ti = &t->g.tensors[xi];
        if (needs_grad(t, xi) && b->grad[xi] < 0) {  // its gradient is a slice of dy
          char tn[IR_NAME_MAX];
          snprintf(tn, sizeof tn, "grad:%.100s", ti->name);
          int v = ir_add_tensor(&t->g, IR_T_ACT, ti->c, ti->h, ti->w, tn);
          t->g.tensors[v].view_of = dy;
          t->g.tensors[v].chan_offset = off;
          t->g.tensors[v].grad_of = xi;
          b->grad[xi] = v;
          b->contribs[xi] = 1;
        }
        off += ti->c;
      }
      break;
    }
    case IR_POOL: {
      int in[3] = {x, f.out[0], dy};
      if (needs_grad(t, x)) bwd1(b, IR_POOL_BWD, id, "bwd", 3, in, x);
      break;
    }
    case IR_GAP:
      if (needs_grad(t, x)) bwd1(b, IR_GAP_BWD, id, "bwd", 1, &dy, x);
      break;
    case IR_DROPOUT:
    case IR_DROPPATH: {
      int in[2] = {f.out[1], dy};
      if (needs_grad(t, x)) bwd1(b, IR_MASK_BWD, id, "bwd", 2, in, x);
      break;
    }
    case IR_LINEAR: {
      int in[2] = {x, dy};
      if (needs_grad(t, x)) {
        bwd1(b, IR_LINEAR_BWD, id, "bwd", 2, in, x);
      } else {
        int nid = tg_node(t, IR_LINEAR_BWD, "", 2, in, 0, NULL, f.n_param, f.param);
        snprintf(t->g.nodes[nid].name, IR_NAME_MAX, "%.96s:bwd", f.name);
        t->g.nodes[nid].fwd = id;
      }
      break;
    }
    default:
      break;
  }
}

void tg_backward(TG *t) {
  int nt = t->g.n_tensors + 1;
  Bwd b = {t, NULL, NULL, 0};
  b.grad = xmalloc(sizeof(int) * (size_t)nt * 4);
  b.contribs = xcalloc((size_t)nt * 4, sizeof(int));
  for (int i = 0; i < nt * 4; i++) b.grad[i] = -1;
  int nf = t->g.n_nodes;
  t->g.n_fwd_nodes = nf;
  for (int id = nf - 1; id >= 0; id--) back_node(&b, id);
  free(b.grad);
  free(b.contribs);
}
