// compiler/lower_emit.c — the lowering's building blocks: names, parameter
// declaration and lookup, one emitter per forward IR kind, and module chains
// (LowerSeq) walked once to declare and once to emit.
//
// Invariants: an emitter appends exactly one node whose outputs are new
// tensors named after the node (extra outputs get ":mean", ":invstd", ":mask",
// ":softmax"); a parameter used by an emitted node was declared by the
// declaration walk with the same shape (otherwise: internal error).
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "compiler/lower_internal.h"

// ---------------------------------------------------------------- names

void lower_name(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= n) nao_internal("name too long for %zu bytes (format \"%s\")", n, fmt);
}

void lower_join(char *buf, size_t n, const char *prefix, const char *suffix) {
  if (!suffix[0])
    lower_name(buf, n, "%s", prefix);
  else
    lower_name(buf, n, "%s.%s", prefix, suffix);
}

// ---------------------------------------------------------------- parameters

static int declare(LowerCtx *c, const char *module, const char *leaf, int ndim, const int *dims,
                   int trainable, ParamInit init, int fan_in) {
  char name[PARAM_NAME_MAX];
  lower_name(name, sizeof name, "%s.%s", module, leaf);
  return params_get(c->params, name, ndim, dims, trainable, init, fan_in, c->aux);
}

void lower_declare_conv(LowerCtx *c, const char *module, const IrConvAttr *a) {
  int dims[4] = {a->cout, a->cin / a->groups, a->kh, a->kw};
  declare(c, module, "weight", 4, dims, 1, PINIT_KAIMING_NORMAL, dims[1] * a->kh * a->kw);
}

// Order of nn.BatchNorm2d's state_dict: weight, bias, running_mean, running_var
// (num_batches_tracked is not stored).
void lower_declare_bn(LowerCtx *c, const char *module, int ch) {
  declare(c, module, "weight", 1, &ch, 1, PINIT_ONES, 0);
  declare(c, module, "bias", 1, &ch, 1, PINIT_ZEROS, 0);
  declare(c, module, "running_mean", 1, &ch, 0, PINIT_ZEROS, 0);
  declare(c, module, "running_var", 1, &ch, 0, PINIT_ONES, 0);
}

void lower_declare_linear(LowerCtx *c, const char *module, int in, int out) {
  int w[2] = {out, in};
  declare(c, module, "weight", 2, w, 1, PINIT_KAIMING_NORMAL, in);
  declare(c, module, "bias", 1, &out, 1, PINIT_LINEAR_BIAS, in);
}

// The index of a declared parameter; its shape must be `dims`.
int lower_use_param(LowerCtx *c, const char *module, const char *leaf, int ndim, const int *dims) {
  char name[PARAM_NAME_MAX];
  lower_name(name, sizeof name, "%s.%s", module, leaf);
  int p = params_find(c->params, name);
  if (p < 0) nao_internal("parameter %s is used but was not declared", name);
  const ParamInfo *pi = &c->params->items[p];
  if (pi->ndim != ndim || memcmp(pi->dims, dims, sizeof(int) * (size_t)ndim) != 0)
    nao_internal("parameter %s is used with another shape than declared", name);
  return p;
}

// ---------------------------------------------------------------- node emitters

static IrNode node_new(LowerCtx *c, IrKind kind, const char *name) {
  NAO_ASSERT(c->g);
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = kind;
  lower_name(n.name, sizeof n.name, "%s", name);
  n.fwd = -1;
  n.aux = c->aux;
  return n;
}

static int new_tensor(LowerCtx *c, IrTensorKind kind, int ch, int h, int w, const char *node,
                      const char *suffix) {
  char name[IR_NAME_MAX];
  lower_name(name, sizeof name, "%s%s", node, suffix);
  return ir_add_tensor(c->g, kind, ch, h, w, name);
}

int lower_new_act(LowerCtx *c, int ch, int h, int w, const char *name) {
  return new_tensor(c, IR_T_ACT, ch, h, w, name, "");
}

static const IrTensor *tensor(LowerCtx *c, int t) {
  NAO_ASSERT(t >= 0 && t < c->g->n_tensors);
  return &c->g->tensors[t];
}

// A node with one input and one output of the input's shape.
static int unary_same(LowerCtx *c, IrKind kind, const char *name, int x) {
  IrNode n = node_new(c, kind, name);
  const IrTensor *tx = tensor(c, x);
  n.n_in = 1;
  n.in[0] = x;
  n.n_out = 1;
  n.out[0] = lower_new_act(c, tx->c, tx->h, tx->w, name);
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_relu(LowerCtx *c, const char *name, int x) { return unary_same(c, IR_RELU, name, x); }

static int window_out(int size, int k, int s, int pa, int pb) {
  int span = size + pa + pb - k;
  if (span < 0) nao_internal("a window of %d does not fit %d (+%d+%d)", k, size, pa, pb);
  return span / s + 1;
}

int lower_emit_conv(LowerCtx *c, const char *name, int x, const IrConvAttr *a) {
  int dims[4] = {a->cout, a->cin / a->groups, a->kh, a->kw};
  return lower_emit_conv_p(c, name, x, a, lower_use_param(c, name, "weight", 4, dims));
}

int lower_emit_conv_p(LowerCtx *c, const char *name, int x, const IrConvAttr *a, int wp) {
  const IrTensor *tx = tensor(c, x);
  if (tx->c != a->cin) nao_internal("%s: conv for %d channels gets %d", name, a->cin, tx->c);
  const ParamInfo *pw = &c->params->items[wp];
  if (pw->ndim != 4 || pw->dims[0] != a->cout || pw->dims[1] != a->cin / a->groups ||
      pw->dims[2] != a->kh || pw->dims[3] != a->kw)
    nao_internal("%s: weight %s does not fit the conv", name, pw->name);
  IrNode n = node_new(c, IR_CONV, name);
  n.a.conv = *a;
  n.n_in = 1;
  n.in[0] = x;
  n.n_param = 1;
  n.param[0] = wp;
  int h = window_out(tx->h, a->kh, a->sh, a->pt, a->pb);
  int w = window_out(tx->w, a->kw, a->sw, a->pl, a->pr);
  n.n_out = 1;
  n.out[0] = lower_new_act(c, a->cout, h, w, name);
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_bn(LowerCtx *c, const char *name, int x) {
  int ch = tensor(c, x)->c, p[4];
  static const char *const leaf[4] = {"weight", "bias", "running_mean", "running_var"};
  for (int k = 0; k < 4; k++) p[k] = lower_use_param(c, name, leaf[k], 1, &ch);
  return lower_emit_bn_p(c, name, x, p);
}

int lower_emit_bn_p(LowerCtx *c, const char *name, int x, const int p[4]) {
  const IrTensor *tx = tensor(c, x);
  int ch = tx->c, h = tx->h, w = tx->w;
  for (int k = 0; k < 4; k++) {
    const ParamInfo *pi = &c->params->items[p[k]];
    if (pi->ndim != 1 || pi->dims[0] != ch || pi->trainable != (k < 2))
      nao_internal("%s: %s does not fit a BN of %d channels", name, pi->name, ch);
  }
  IrNode n = node_new(c, IR_BN, name);
  n.n_param = 4;
  for (int k = 0; k < 4; k++) n.param[k] = p[k];
  n.a.bn.eps = 1e-5f;
  n.a.bn.momentum = 0.1f;
  n.a.bn.batch_stats = c->opt.mode == IR_MODE_TRAIN || c->opt.bn_batch_stats;
  n.a.bn.update_running = c->opt.mode == IR_MODE_TRAIN && c->opt.bn_update_running;
  n.n_in = 1;
  n.in[0] = x;
  n.n_out = 1;
  n.out[0] = lower_new_act(c, ch, h, w, name);
  if (n.a.bn.batch_stats) {
    n.n_out = 3;
    n.out[1] = new_tensor(c, IR_T_STAT, ch, 1, 1, name, ":mean");
    n.out[2] = new_tensor(c, IR_T_STAT, ch, 1, 1, name, ":invstd");
  }
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_pool(LowerCtx *c, const char *name, int x, const IrPoolAttr *a) {
  const IrTensor *tx = tensor(c, x);
  int ch = tx->c;
  int h = window_out(tx->h, a->kh, a->sh, a->pt, a->pb);
  int w = window_out(tx->w, a->kw, a->sw, a->pl, a->pr);
  IrNode n = node_new(c, IR_POOL, name);
  n.a.pool = *a;
  n.n_in = 1;
  n.in[0] = x;
  n.n_out = 1;
  n.out[0] = lower_new_act(c, ch, h, w, name);
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_add(LowerCtx *c, const char *name, const int *xs, int n_in) {
  NAO_ASSERT(n_in >= 1 && n_in <= IR_MAX_IN);
  const IrTensor *t0 = tensor(c, xs[0]);
  IrNode n = node_new(c, IR_ADD, name);
  for (int k = 0; k < n_in; k++) {
    const IrTensor *tk = tensor(c, xs[k]);
    if (tk->kind != t0->kind || tk->c != t0->c || tk->h != t0->h || tk->w != t0->w)
      nao_internal("%s: adding tensors of different shapes", name);
    n.in[k] = xs[k];
  }
  n.n_in = n_in;
  n.n_out = 1;
  n.out[0] = new_tensor(c, t0->kind, t0->c, t0->h, t0->w, name, "");
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_concat(LowerCtx *c, const char *name, const int *xs, int n_in) {
  NAO_ASSERT(n_in >= 1 && n_in <= IR_MAX_IN);
  const IrTensor *t0 = tensor(c, xs[0]);
  int h = t0->h, w = t0->w, ch = 0;
  IrNode n = node_new(c, IR_CONCAT, name);
  for (int k = 0; k < n_in; k++) {
    const IrTensor *tk = tensor(c, xs[k]);
    if (tk->h != h || tk->w != w) nao_internal("%s: concatenating different sizes", name);
    ch += tk->c;
    n.in[k] = xs[k];
  }
  n.n_in = n_in;
  n.n_out = 1;
  n.out[0] = lower_new_act(c, ch, h, w, name);
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_gap(LowerCtx *c, const char *name, int x) {
  int ch = tensor(c, x)->c;
  IrNode n = node_new(c, IR_GAP, name);
  n.n_in = 1;
  n.in[0] = x;
  n.n_out = 1;
  n.out[0] = lower_new_act(c, ch, 1, 1, name);
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_linear(LowerCtx *c, const char *name, int x, int out) {
  int in = (int)ir_tensor_numel(tensor(c, x));
  int w[2] = {out, in};
  IrNode n = node_new(c, IR_LINEAR, name);
  n.n_in = 1;
  n.in[0] = x;
  n.n_param = 2;
  n.param[0] = lower_use_param(c, name, "weight", 2, w);
  n.param[1] = lower_use_param(c, name, "bias", 1, &out);
  n.n_out = 1;
  n.out[0] = lower_new_act(c, out, 1, 1, name);
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_dropout(LowerCtx *c, const char *name, int x, float keep) {
  const IrTensor *tx = tensor(c, x);
  int ch = tx->c, h = tx->h, w = tx->w;
  IrNode n = node_new(c, IR_DROPOUT, name);
  n.a.drop.keep = keep;
  n.n_in = 1;
  n.in[0] = x;
  n.n_out = 2;
  n.out[0] = lower_new_act(c, ch, h, w, name);
  n.out[1] = new_tensor(c, IR_T_ACT, ch, h, w, name, ":mask");
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_droppath(LowerCtx *c, const char *name, int x, float keep, int cell, int n_cells) {
  const IrTensor *tx = tensor(c, x);
  int ch = tx->c, h = tx->h, w = tx->w;
  IrNode n = node_new(c, IR_DROPPATH, name);
  n.a.drop.keep = keep;
  n.a.drop.cell = cell;
  n.a.drop.n_cells = n_cells;
  n.n_in = 1;
  n.in[0] = x;
  n.n_out = 2;
  n.out[0] = lower_new_act(c, ch, h, w, name);
  n.out[1] = new_tensor(c, IR_T_ACT, 1, 1, 1, name, ":mask");
  ir_add_node(c->g, &n);
  return n.out[0];
}

int lower_emit_xent(LowerCtx *c, const char *name, int logits, int labels, float smoothing,
                    float weight) {
  int k = tensor(c, logits)->c;
  IrNode n = node_new(c, IR_XENT, name);
  n.a.xent.smoothing = smoothing;
  n.a.xent.weight = weight;
  n.n_in = 2;
  n.in[0] = logits;
  n.in[1] = labels;
  n.n_out = 2;
  n.out[0] = new_tensor(c, IR_T_SCALAR, 1, 1, 1, name, "");
  n.out[1] = new_tensor(c, IR_T_ACT, k, 1, 1, name, ":softmax");
  ir_add_node(c->g, &n);
  return n.out[0];
}

// ---------------------------------------------------------------- sequences

IrConvAttr lower_conv_attr(int cin, int cout, int kh, int kw, int sh, int sw, int ph, int pw,
                           int groups) {
  IrConvAttr a = {.kh = kh, .kw = kw, .sh = sh, .sw = sw, .pt = ph, .pb = ph, .pl = pw,
                  .pr = pw, .groups = groups, .cin = cin, .cout = cout};
  return a;
}

static LowerStep *seq_push(LowerSeq *s, LowerStepKind kind, const char *name) {
  NAO_ASSERT(s->n < LOWER_SEQ_MAX);
  LowerStep *st = &s->step[s->n++];
  memset(st, 0, sizeof *st);
  st->kind = kind;
  lower_name(st->name, sizeof st->name, "%s", name);
  return st;
}

void lseq_relu(LowerSeq *s, const char *name) { seq_push(s, LSTEP_RELU, name); }
void lseq_conv(LowerSeq *s, const char *name, const IrConvAttr *a) {
  seq_push(s, LSTEP_CONV, name)->conv = *a;
}
void lseq_bn(LowerSeq *s, const char *name, int ch) { seq_push(s, LSTEP_BN, name)->ch = ch; }
void lseq_pool(LowerSeq *s, const char *name, const IrPoolAttr *a) {
  seq_push(s, LSTEP_POOL, name)->pool = *a;
}
void lseq_linear(LowerSeq *s, const char *name, int in, int out) {
  LowerStep *st = seq_push(s, LSTEP_LINEAR, name);
  st->lin_in = in;
  st->lin_out = out;
}

void lseq_declare(LowerCtx *c, const char *prefix, const LowerSeq *s) {
  char module[IR_NAME_MAX];
  for (int k = 0; k < s->n; k++) {
    const LowerStep *st = &s->step[k];
    lower_join(module, sizeof module, prefix, st->name);
    switch (st->kind) {
      case LSTEP_CONV: lower_declare_conv(c, module, &st->conv); break;
      case LSTEP_BN: lower_declare_bn(c, module, st->ch); break;
      case LSTEP_LINEAR: lower_declare_linear(c, module, st->lin_in, st->lin_out); break;
      case LSTEP_RELU:
      case LSTEP_POOL: break;
    }
  }
}

int lseq_emit(LowerCtx *c, const char *prefix, const LowerSeq *s, int x) {
  char module[IR_NAME_MAX];
  for (int k = 0; k < s->n; k++) {
    const LowerStep *st = &s->step[k];
    lower_join(module, sizeof module, prefix, st->name);
    switch (st->kind) {
      case LSTEP_RELU: x = lower_emit_relu(c, module, x); break;
      case LSTEP_CONV: x = lower_emit_conv(c, module, x, &st->conv); break;
      case LSTEP_BN:
        if (tensor(c, x)->c != st->ch) nao_internal("%s: BN of %d channels gets %d", module, st->ch, tensor(c, x)->c);
        x = lower_emit_bn(c, module, x);
        break;
      case LSTEP_POOL: x = lower_emit_pool(c, module, x, &st->pool); break;
      case LSTEP_LINEAR:
        if ((int)ir_tensor_numel(tensor(c, x)) != st->lin_in)
          nao_internal("%s: linear of %d inputs gets %zu", module, st->lin_in, ir_tensor_numel(tensor(c, x)));
        x = lower_emit_linear(c, module, x, st->lin_out);
        break;
    }
  }
  return x;
}
