// compiler/fuse_ops.c — IR nodes to fusion ops, and the inlining decisions (fuse.h).
//
// Every IR node becomes one or more ops in node order (so op order is a valid
// execution order). Pointwise work is written as expressions over FX_LOAD
// leaves of the IR tensors; fuse_inline() then walks the ops forward, replaces
// loads of tensors it decided to recompute by their definitions, and records
// the tensors each op really reads.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/fuse_internal.h"

#define FAIL(...)                                   \
  do {                                              \
    snprintf(b->err, b->errlen, __VA_ARGS__);       \
    return -1;                                      \
  } while (0)

// ---------------------------------------------------------------- attrs
// Backward nodes may carry their forward node's attributes or leave them to
// n->fwd; both are accepted.

const IrConvAttr *fuse_conv_attr(const IrGraph *g, const IrNode *n) {
  if (n->a.conv.kh > 0 || n->fwd < 0) return &n->a.conv;
  return &g->nodes[n->fwd].a.conv;
}

const IrPoolAttr *fuse_pool_attr(const IrGraph *g, const IrNode *n) {
  if (n->a.pool.kh > 0 || n->fwd < 0) return &n->a.pool;
  return &g->nodes[n->fwd].a.pool;
}

const IrBnAttr *fuse_bn_attr(const IrGraph *g, const IrNode *n) {
  if (n->a.bn.eps > 0.0f || n->fwd < 0) return &n->a.bn;
  return &g->nodes[n->fwd].a.bn;
}

const IrXentAttr *fuse_xent_attr(const IrGraph *g, const IrNode *n) {
  if (n->a.xent.weight != 0.0f || n->fwd < 0) return &n->a.xent;
  return &g->nodes[n->fwd].a.xent;
}

int fuse_conv_is_depthwise(const IrConvAttr *a) {
  return a->groups > 1 && a->groups == a->cin && a->groups == a->cout;
}

int fuse_root(const FusePlan *fp, int t, int *c0) {
  int off = 0;
  while (fp->tensors[t].view_of >= 0) {
    off += fp->tensors[t].chan_offset;
    t = fp->tensors[t].view_of;
  }
  if (c0) *c0 = off;
  return t;
}

// ---------------------------------------------------------------- building blocks

static int add_tensor(FuseBuild *b, IrTensorKind kind, int c, int h, int w, const char *name) {
  FusePlan *fp = b->fp;
  if (fp->n_tensors == b->cap_tensors) {
    b->cap_tensors *= 2;
    fp->tensors = xrealloc(fp->tensors, sizeof *fp->tensors * (size_t)b->cap_tensors);
    fp->def_expr = xrealloc(fp->def_expr, sizeof(int) * (size_t)b->cap_tensors);
    fp->mem_read = xrealloc(fp->mem_read, sizeof(int) * (size_t)b->cap_tensors);
  }
  fp->mem_read[fp->n_tensors] = 0;
  IrTensor *t = &fp->tensors[fp->n_tensors];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->kind = kind;
  t->c = c;
  t->h = h;
  t->w = w;
  t->producer = -1;
  t->view_of = -1;
  t->grad_of = -1;
  fp->def_expr[fp->n_tensors] = -1;
  return fp->n_tensors++;
}

static int op_new(FuseBuild *b, FuseOpKind kind, int node, int part) {
  FusePlan *fp = b->fp;
  if (fp->n_ops == b->cap_ops) {
    b->cap_ops = b->cap_ops ? 2 * b->cap_ops : 256;
    size_t n = (size_t)b->cap_ops;
    fp->ops = xrealloc(fp->ops, sizeof *fp->ops * n);
    b->raw = xrealloc(b->raw, sizeof *b->raw * n);
    b->n_raw = xrealloc(b->n_raw, sizeof(int) * n);
    b->cap_raw = xrealloc(b->cap_raw, sizeof(int) * n);
    b->inlined = xrealloc(b->inlined, sizeof(int) * n);
    b->gwrite = xrealloc(b->gwrite, sizeof(int) * n);
    b->gwrite2 = xrealloc(b->gwrite2, sizeof(int) * n);
  }
  int i = fp->n_ops++;
  FuseOp *o = &fp->ops[i];
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->node = node;
  o->part = part;
  o->out = o->out2 = o->expr = -1;
  o->in_expr[0] = o->in_expr[1] = -1;
  b->raw[i] = NULL;
  b->n_raw[i] = b->cap_raw[i] = 0;
  b->inlined[i] = 0;
  b->gwrite[i] = b->gwrite2[i] = -1;
  return i;
}

static void op_read(FuseBuild *b, int op, int t, FuseReadHow how) {
  if (b->n_raw[op] == b->cap_raw[op]) {
    b->cap_raw[op] = b->cap_raw[op] ? 2 * b->cap_raw[op] : 4;
    b->raw[op] = xrealloc(b->raw[op], sizeof **b->raw * (size_t)b->cap_raw[op]);
  }
  b->raw[op][b->n_raw[op]++] = (FuseRawRead){t, how};
}

static int op_write(FuseBuild *b, int op, int t) {
  FuseOp *o = &b->fp->ops[op];
  if (o->n_writes == FUSE_MAX_RW) FAIL("internal: op of node %d writes too many tensors", o->node);
  o->writes[o->n_writes++] = t;
  return 0;
}

static int ld(FuseBuild *b, int t) { return fx_node(&b->fp->fx, FX_LOAD, -1, -1, t, 0.0f); }
static int cst(FuseBuild *b, float f) { return fx_const(&b->fp->fx, f); }
static int bin(FuseBuild *b, FxKind k, int x, int y) { return fx_binary(&b->fp->fx, k, x, y); }
static int chan(FuseBuild *b, FxKind k, int t, float off) {
  return fx_node(&b->fp->fx, k, -1, -1, t, off);
}

// A pointwise definition: out (+)= expr, reading `reads` as expressions.
static int def_op(FuseBuild *b, int node, int part, int out, int expr, int acc, const int *reads,
                  int n_reads) {
  int op = op_new(b, FOP_DEF, node, part);
  FuseOp *o = &b->fp->ops[op];
  o->out = out;
  o->expr = expr;
  o->accumulate = acc;
  for (int i = 0; i < n_reads; i++) op_read(b, op, reads[i], RD_EXPR);
  if (op_write(b, op, out)) return -1;
  return op;
}

static int out_acc(const IrNode *n, int k) { return (n->accumulate >> k) & 1; }
static int grad_acc(const IrNode *n, int k) { return (n->accumulate >> (IR_MAX_OUT + k)) & 1; }

// ---------------------------------------------------------------- per kind

static int make_bn(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  const IrBnAttr *a = fuse_bn_attr(b->g, n);
  int x = n->in[0], y = n->out[0];
  int gamma = n->param[0], beta = n->param[1], rm = n->param[2], rv = n->param[3];
  if (n->n_param < 4) FAIL("node %s: batch norm needs 4 parameters, has %d", n->name, n->n_param);
  int mean, scale;
  if (a->batch_stats) {
    if (n->n_out < 3)
      FAIL("node %s: batch norm with batch statistics needs its mean and invstd outputs", n->name);
    int st = op_new(b, FOP_BN_STATS, id, 0);
    FuseOp *o = &fp->ops[st];
    o->in_expr[0] = ld(b, x);
    o->out = n->out[1];
    o->out2 = n->out[2];
    op_read(b, st, x, RD_EXPR);
    if (op_write(b, st, n->out[1]) || op_write(b, st, n->out[2])) return -1;
    mean = chan(b, FX_CHAN_T, n->out[1], 0.0f);
    scale = bin(b, FX_MUL, chan(b, FX_CHAN_T, n->out[2], 0.0f), chan(b, FX_CHAN_P, gamma, 0.0f));
  } else {
    mean = chan(b, FX_CHAN_B, rm, 0.0f);
    int istd = fx_node(&fp->fx, FX_INVSTD, chan(b, FX_CHAN_B, rv, 0.0f), -1, -1, a->eps);
    scale = bin(b, FX_MUL, istd, chan(b, FX_CHAN_P, gamma, 0.0f));
  }
  int e = bin(b, FX_ADD, bin(b, FX_MUL, bin(b, FX_SUB, ld(b, x), mean), scale),
              chan(b, FX_CHAN_P, beta, 0.0f));
  int reads[3] = {x, a->batch_stats ? n->out[1] : -1, a->batch_stats ? n->out[2] : -1};
  return def_op(b, id, 1, y, e, out_acc(n, 0), reads, a->batch_stats ? 3 : 1) < 0 ? -1 : 0;
}

static int make_bn_bwd(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  const IrBnAttr *a = fuse_bn_attr(b->g, n);
  int x = n->in[0], dy = n->in[1];
  const IrTensor *tx = &fp->tensors[x];
  int gamma = n->param[0];
  int batch = n->n_in >= 4;
  int xhat, istd;
  if (batch) {
    istd = chan(b, FX_CHAN_T, n->in[3], 0.0f);
    xhat = bin(b, FX_MUL, bin(b, FX_SUB, ld(b, x), chan(b, FX_CHAN_T, n->in[2], 0.0f)), istd);
  } else {
    istd = fx_node(&fp->fx, FX_INVSTD, chan(b, FX_CHAN_B, n->param[3], 0.0f), -1, -1, a->eps);
    xhat = bin(b, FX_MUL, bin(b, FX_SUB, ld(b, x), chan(b, FX_CHAN_B, n->param[2], 0.0f)), istd);
  }
  char name[IR_NAME_MAX];
  snprintf(name, sizeof name, "bnbwd_sums:%.90s", n->name);
  int sums = add_tensor(b, IR_T_STAT, 2 * tx->c, 1, 1, name);
  tx = &fp->tensors[x];  // add_tensor may have moved the array
  int r = op_new(b, FOP_BNB_REDUCE, id, 0);
  FuseOp *o = &fp->ops[r];
  o->in_expr[0] = ld(b, dy);
  o->in_expr[1] = bin(b, FX_MUL, ld(b, dy), xhat);
  o->out = sums;
  o->grad_acc[0] = grad_acc(n, 0);
  o->grad_acc[1] = grad_acc(n, 1);
  b->gwrite[r] = n->param[0];
  b->gwrite2[r] = n->param[1];
  op_read(b, r, x, RD_EXPR);
  op_read(b, r, dy, RD_EXPR);
  if (batch) {
    op_read(b, r, n->in[2], RD_EXPR);
    op_read(b, r, n->in[3], RD_EXPR);
  }
  if (op_write(b, r, sums)) return -1;
  if (n->n_out < 1 || n->out[0] < 0) return 0;
  int e;
  int gscale = bin(b, FX_MUL, chan(b, FX_CHAN_P, gamma, 0.0f), istd);
  if (batch) {
    // dx = gamma * invstd * (dy - sum(dy)/M - xhat * sum(dy*xhat)/M), M = N*H*W
    int inv_m = bin(b, FX_MUL, fx_node(&fp->fx, FX_INV_N, -1, -1, -1, 0.0f),
                    cst(b, 1.0f / (float)(tx->h * tx->w)));
    int mdy = bin(b, FX_MUL, chan(b, FX_CHAN_T, sums, 0.0f), inv_m);
    int mdyx = bin(b, FX_MUL, chan(b, FX_CHAN_T, sums, (float)tx->c), inv_m);
    int inner = bin(b, FX_SUB, bin(b, FX_SUB, ld(b, dy), mdy), bin(b, FX_MUL, xhat, mdyx));
    e = bin(b, FX_MUL, gscale, inner);
  } else {
    e = bin(b, FX_MUL, gscale, ld(b, dy));
  }
  int reads[5] = {x, dy, sums, batch ? n->in[2] : -1, batch ? n->in[3] : -1};
  return def_op(b, id, 1, n->out[0], e, out_acc(n, 0), reads, batch ? 5 : 3) < 0 ? -1 : 0;
}

static int make_concat(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  int out = n->out[0], off = 0, made = 0;
  for (int i = 0; i < n->n_in; i++) {
    const IrTensor *ti = &fp->tensors[n->in[i]];
    if (!(ti->view_of == out && ti->chan_offset == off)) {
      char name[IR_NAME_MAX];
      snprintf(name, sizeof name, "slice%d:%.96s", i, fp->tensors[out].name);
      int v = add_tensor(b, IR_T_ACT, ti->c, ti->h, ti->w, name);
      fp->tensors[v].view_of = out;
      fp->tensors[v].chan_offset = off;
      int in = n->in[i];
      if (def_op(b, id, i, v, ld(b, in), out_acc(n, 0), &in, 1) < 0) return -1;
      made++;
    }
    off += fp->tensors[n->in[i]].c;
  }
  if (off != fp->tensors[out].c)
    FAIL("node %s: concatenation of %d channels into a tensor of %d", n->name, off,
         fp->tensors[out].c);
  if (!made) op_new(b, FOP_NOP, id, 0);
  return 0;
}

static int make_conv(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  const IrConvAttr *a = fuse_conv_attr(b->g, n);
  int dw = fuse_conv_is_depthwise(a);
  int x = n->in[0], y = n->out[0];
  int op = op_new(b, dw ? FOP_CONV_DW : FOP_LIB_CONV, id, 0);
  fp->ops[op].out = y;
  fp->ops[op].accumulate = out_acc(n, 0);
  if (dw) fp->ops[op].in_expr[0] = ld(b, x);
  op_read(b, op, x, dw ? RD_EXPR : RD_MEM);
  return op_write(b, op, y);
}

static int make_conv_data(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  const IrConvAttr *a = fuse_conv_attr(b->g, n);
  int dy = n->in[0], dx = n->out[0];
  const IrTensor *tx = &fp->tensors[dx], *ty = &fp->tensors[dy];
  int acc = out_acc(n, 0);
  if (fuse_conv_is_depthwise(a)) {
    int op = op_new(b, FOP_CONV_DW_DATA, id, 0);
    fp->ops[op].out = dx;
    fp->ops[op].accumulate = acc;
    fp->ops[op].in_expr[0] = ld(b, dy);
    op_read(b, op, dy, RD_EXPR);
    return op_write(b, op, dx);
  }
  FuseConvGeom geo = fuse_conv_geom(a, tx->h, tx->w, ty->h, ty->w);
  if (!geo.covers && !acc) {  // cuDNN writes only the rows it reads: zero the rest first
    if (def_op(b, id, 1, dx, cst(b, 0.0f), 0, NULL, 0) < 0) return -1;
    acc = 1;
  }
  int op = op_new(b, FOP_LIB_CONV_DATA, id, 0);
  fp->ops[op].out = dx;
  fp->ops[op].accumulate = acc;
  op_read(b, op, dy, RD_MEM);
  if (acc) op_read(b, op, dx, RD_MEM);
  return op_write(b, op, dx);
}

static int make_conv_filter(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  const IrConvAttr *a = fuse_conv_attr(b->g, n);
  int x = n->in[0], dy = n->in[1];
  int dw = fuse_conv_is_depthwise(a);
  int op = op_new(b, dw ? FOP_CONV_DW_FILTER : FOP_LIB_CONV_FILTER, id, 0);
  fp->ops[op].grad_acc[0] = grad_acc(n, 0);
  b->gwrite[op] = n->param[0];
  if (dw) {
    fp->ops[op].in_expr[0] = ld(b, x);
    fp->ops[op].in_expr[1] = ld(b, dy);
  }
  op_read(b, op, x, dw ? RD_EXPR : RD_MEM);
  op_read(b, op, dy, dw ? RD_EXPR : RD_MEM);
  return 0;
}

static int make_linear(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  int x = n->in[0], y = n->out[0];
  int acc = out_acc(n, 0);
  if (n->n_param >= 2) {
    if (def_op(b, id, 1, y, chan(b, FX_CHAN_P, n->param[1], 0.0f), acc, NULL, 0) < 0) return -1;
    acc = 1;
  }
  int op = op_new(b, FOP_LIB_GEMM, id, 0);
  fp->ops[op].out = y;
  fp->ops[op].accumulate = acc;
  op_read(b, op, x, RD_MEM);
  if (acc) op_read(b, op, y, RD_MEM);
  return op_write(b, op, y);
}

static int make_linear_bwd(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  int x = n->in[0], dy = n->in[1];
  if (n->n_out >= 1 && n->out[0] >= 0) {
    int op = op_new(b, FOP_LIB_GEMM, id, 1);
    fp->ops[op].out = n->out[0];
    fp->ops[op].accumulate = out_acc(n, 0);
    op_read(b, op, dy, RD_MEM);
    if (out_acc(n, 0)) op_read(b, op, n->out[0], RD_MEM);
    if (op_write(b, op, n->out[0])) return -1;
  }
  int op = op_new(b, FOP_LIB_GEMM, id, 2);
  fp->ops[op].grad_acc[0] = grad_acc(n, 0);
  b->gwrite[op] = n->param[0];
  op_read(b, op, x, RD_MEM);
  op_read(b, op, dy, RD_MEM);
  if (n->n_param >= 2) {
    int r = op_new(b, FOP_BIAS_GRAD, id, 3);
    fp->ops[r].in_expr[0] = ld(b, dy);
    fp->ops[r].grad_acc[0] = grad_acc(n, 1);
    b->gwrite[r] = n->param[1];
    op_read(b, r, dy, RD_EXPR);
  }
  return 0;
}

static int make_mask(FuseBuild *b, int id, const IrNode *n, int per_sample) {
  FusePlan *fp = b->fp;
  if (n->n_out < 2) FAIL("node %s: %s needs its mask output", n->name, ir_kind_name(n->kind));
  int slot = fp->n_masks++;
  fp->mask_node = xrealloc(fp->mask_node, sizeof(int) * (size_t)fp->n_masks);
  fp->mask_node[slot] = id;
  fp->def_expr[n->out[1]] =
      fx_node(&fp->fx, FX_MASK, -1, -1, slot, per_sample ? 1.0f : 0.0f);
  int reads[2] = {n->in[0], n->out[1]};
  int e = bin(b, FX_MUL, ld(b, n->in[0]), ld(b, n->out[1]));
  return def_op(b, id, 0, n->out[0], e, out_acc(n, 0), reads, 2) < 0 ? -1 : 0;
}

static int make_xent(FuseBuild *b, int id, const IrNode *n) {
  FusePlan *fp = b->fp;
  if (n->n_out < 2) FAIL("node %s: cross-entropy needs its softmax output", n->name);
  int op = op_new(b, FOP_XENT, id, 0);
  FuseOp *o = &fp->ops[op];
  o->out = n->out[1];
  o->out2 = n->out[0];
  o->accumulate = out_acc(n, 0);  // the loss adds to its tensor
  o->in_expr[0] = ld(b, n->in[0]);
  op_read(b, op, n->in[0], RD_EXPR);
  op_read(b, op, n->in[1], RD_MEM);
  if (o->accumulate) op_read(b, op, n->out[0], RD_MEM);
  if (op_write(b, op, n->out[1]) || op_write(b, op, n->out[0])) return -1;
  fp->mem_read[n->out[0]] = 1;
  return 0;
}

static int make_xent_bwd(FuseBuild *b, int id, const IrNode *n) {
  const IrXentAttr *a = fuse_xent_attr(b->g, n);
  int sm = n->in[0], lab = n->in[1];
  float k = (float)b->fp->tensors[sm].c;
  int q = bin(b, FX_ADD,
              bin(b, FX_MUL, fx_node(&b->fp->fx, FX_ONEHOT, -1, -1, lab, 0.0f),
                  cst(b, 1.0f - a->smoothing)),
              cst(b, a->smoothing / k));
  int scale = bin(b, FX_MUL, cst(b, a->weight), fx_node(&b->fp->fx, FX_INV_N, -1, -1, -1, 0.0f));
  int e = bin(b, FX_MUL, bin(b, FX_SUB, ld(b, sm), q), scale);
  int op = def_op(b, id, 0, n->out[0], e, out_acc(n, 0), &sm, 1);
  if (op < 0) return -1;
  op_read(b, op, lab, RD_MEM);
  return 0;
}

static int make_anchor(FuseBuild *b, int id, const IrNode *n, FuseOpKind kind, int x, int dy) {
  FusePlan *fp = b->fp;
  int op = op_new(b, kind, id, 0);
  FuseOp *o = &fp->ops[op];
  o->out = n->out[0];
  o->accumulate = out_acc(n, 0);
  o->in_expr[0] = ld(b, x);
  op_read(b, op, x, RD_EXPR);
  if (dy >= 0) {
    o->in_expr[1] = ld(b, dy);
    op_read(b, op, dy, RD_EXPR);
  }
  return op_write(b, op, n->out[0]);
}

static int make_node(FuseBuild *b, int id) {
  const IrNode *n = &b->g->nodes[id];
  int sum;
  switch (n->kind) {
    case IR_INPUT:
    case IR_LABELS:
      op_new(b, FOP_NOP, id, 0);
      return 0;
    case IR_CONV:
      return make_conv(b, id, n);
    case IR_BN:
      return make_bn(b, id, n);
    case IR_RELU:
      return def_op(b, id, 0, n->out[0], fx_binary(&b->fp->fx, FX_RELU, ld(b, n->in[0]), -1),
                    out_acc(n, 0), n->in, 1) < 0 ? -1 : 0;
    case IR_ADD:
      sum = ld(b, n->in[0]);
      for (int i = 1; i < n->n_in; i++) sum = bin(b, FX_ADD, sum, ld(b, n->in[i]));
      return def_op(b, id, 0, n->out[0], sum, out_acc(n, 0), n->in, n->n_in) < 0 ? -1 : 0;
    case IR_CONCAT:
      return make_concat(b, id, n);
    case IR_POOL:
      return make_anchor(b, id, n, FOP_POOL, n->in[0], -1);
    case IR_GAP:
      return make_anchor(b, id, n, FOP_GAP, n->in[0], -1);
    case IR_LINEAR:
      return make_linear(b, id, n);
    case IR_DROPOUT:
      return make_mask(b, id, n, 0);
    case IR_DROPPATH:
      return make_mask(b, id, n, 1);
    case IR_XENT:
      return make_xent(b, id, n);
    case IR_CONV_BWD_DATA:
      return make_conv_data(b, id, n);
    case IR_CONV_BWD_FILTER:
      return make_conv_filter(b, id, n);
    case IR_BN_BWD:
      return make_bn_bwd(b, id, n);
    case IR_RELU_BWD: {
      int e = fx_binary(&b->fp->fx, FX_POS, ld(b, n->in[0]), ld(b, n->in[1]));
      return def_op(b, id, 0, n->out[0], e, out_acc(n, 0), n->in, 2) < 0 ? -1 : 0;
    }
    case IR_POOL_BWD:  // y (in1) is not read: max pooling recomputes the argmax from x
      return make_anchor(b, id, n, FOP_POOL_BWD, n->in[0], n->in[2]);
    case IR_GAP_BWD: {
      const IrTensor *tx = &b->fp->tensors[n->out[0]];
      int e = bin(b, FX_MUL, fx_node(&b->fp->fx, FX_LOAD_NC, -1, -1, n->in[0], 0.0f),
                  cst(b, 1.0f / (float)(tx->h * tx->w)));
      int op = op_new(b, FOP_DEF, id, 0);
      b->fp->ops[op].out = n->out[0];
      b->fp->ops[op].expr = e;
      b->fp->ops[op].accumulate = out_acc(n, 0);
      op_read(b, op, n->in[0], RD_NC);
      return op_write(b, op, n->out[0]);
    }
    case IR_LINEAR_BWD:
      return make_linear_bwd(b, id, n);
    case IR_MASK_BWD: {
      int e = bin(b, FX_MUL, ld(b, n->in[1]), ld(b, n->in[0]));
      return def_op(b, id, 0, n->out[0], e, out_acc(n, 0), n->in, 2) < 0 ? -1 : 0;
    }
    case IR_XENT_BWD:
      return make_xent_bwd(b, id, n);
    case IR_ACCUM:
      return def_op(b, id, 0, n->out[0], ld(b, n->in[0]), out_acc(n, 0), n->in, 1) < 0 ? -1 : 0;
    default:
      FAIL("node %s: kind %s has no GPU lowering", n->name, ir_kind_name(n->kind));
  }
}

int fuse_make_ops(FuseBuild *b) {
  const IrGraph *g = b->g;
  for (int i = 0; i < g->n_nodes; i++)
    if (make_node(b, i)) return -1;
  return 0;
}

// ---------------------------------------------------------------- conv geometry

static void geom_dim(int pad, int pad_end_ir, int stride, int k, int in, int out, int *crop,
                     int *len, int *pre, int *post, int *sym) {
  (void)pad_end_ir;
  *crop = pad < 0 ? -pad : 0;
  *pre = pad > 0 ? pad : 0;
  int last = (out - 1) * stride - *pre + k - 1;  // last row read, cropped coordinates
  int avail = in - *crop;
  *len = avail < last + 1 ? avail : last + 1;
  if (*len < 1) *len = 1;
  *post = last + 1 - *len > 0 ? last + 1 - *len : 0;
  int got = (*len + 2 * *pre - k) / stride + 1;  // cuDNN's output size with symmetric padding
  *sym = got == out && *post <= *pre;
  if (*sym) *post = *pre;
}

FuseConvGeom fuse_conv_geom(const IrConvAttr *a, int h_in, int w_in, int h_out, int w_out) {
  FuseConvGeom g;
  int sh, sw;
  geom_dim(a->pt, a->pb, a->sh, a->kh, h_in, h_out, &g.crop_t, &g.h_eff, &g.pad_t, &g.pad_b, &sh);
  geom_dim(a->pl, a->pr, a->sw, a->kw, w_in, w_out, &g.crop_l, &g.w_eff, &g.pad_l, &g.pad_r, &sw);
  g.symmetric = sh && sw;
  g.covers = g.crop_t == 0 && g.crop_l == 0 && g.h_eff == h_in && g.w_eff == w_in;
  return g;
}

// ---------------------------------------------------------------- inlining

// Rewrites e with loads of inlined tensors replaced by their definitions.
static int subst_rec(FusePlan *fp, int e, int *memo, int limit) {
  if (e < 0) return e;
  if (e < limit && memo[e] >= 0) return memo[e];
  FxNode x = fp->fx.v[e];
  int r;
  if (x.kind == FX_LOAD && fp->def_expr[x.t] >= 0) {
    r = fp->def_expr[x.t];
  } else if (x.a < 0 && x.b < 0) {
    r = e;
  } else {
    int a = subst_rec(fp, x.a, memo, limit), bb = subst_rec(fp, x.b, memo, limit);
    if (a == x.a && bb == x.b) r = e;
    else if (x.kind == FX_INVSTD) r = fx_node(&fp->fx, FX_INVSTD, a, -1, -1, x.f);
    else r = fx_binary(&fp->fx, x.kind, a, bb);
  }
  if (e < limit) memo[e] = r;
  return r;
}

static int subst(FusePlan *fp, int e) {
  if (e < 0) return e;
  int limit = fp->fx.n;
  int *memo = xmalloc(sizeof(int) * (size_t)limit);
  for (int i = 0; i < limit; i++) memo[i] = -1;
  int r = subst_rec(fp, e, memo, limit);
  free(memo);
  return r;
}

typedef struct {
  FuseOp *o;
  int overflow;
} ReadCollect;

static void add_read(FuseOp *o, int *overflow, int t) {
  for (int i = 0; i < o->n_reads; i++)
    if (o->reads[i] == t) return;
  if (o->n_reads == FUSE_MAX_RW) {
    *overflow = 1;
    return;
  }
  o->reads[o->n_reads++] = t;
}

static void collect_leaf(void *ctx, FxKind kind, int t) {
  (void)kind;
  ReadCollect *c = ctx;
  add_read(c->o, &c->overflow, t);
}

typedef struct {
  int n;
  int t[8];
} LeafSet;

// Full-size tensors an expression reads (per-(n, c) values are negligible).
static void count_leaf(void *ctx, FxKind kind, int t) {
  LeafSet *s = ctx;
  if (kind != FX_LOAD) return;
  for (int i = 0; i < s->n && i < 8; i++)
    if (s->t[i] == t) return;
  if (s->n < 8) s->t[s->n] = t;
  s->n++;
}

// Per tensor: how it is read by live ops.
typedef struct {
  int readers;   // live ops reading it as an expression
  int mem;       // read from memory (library, LOAD_NC, the program)
  int writers;
  int has_views;
} TensorUse;

static int tensor_inlinable(const FusePlan *fp, int t, const TensorUse *u) {
  const IrTensor *x = &fp->tensors[t];
  return x->view_of < 0 && !u[t].has_views && !u[t].mem && u[t].writers == 1 &&
         x->kind == IR_T_ACT;
}

// Marks dead DEFs (nothing reads their tensor) from the last op backwards and
// counts the readers of every tensor among live ops.
static void mark_live(FuseBuild *b, TensorUse *u) {
  FusePlan *fp = b->fp;
  for (int t = 0; t < fp->n_tensors; t++) {
    if (fp->tensors[t].view_of >= 0) {
      int r = fuse_root(fp, t, NULL);
      u[r].has_views = 1;
    }
    if (fp->mem_read[t]) u[t].mem = 1;
  }
  for (int i = fp->n_ops - 1; i >= 0; i--) {
    FuseOp *o = &fp->ops[i];
    int unread = o->out >= 0 && fp->tensors[o->out].view_of < 0 && !u[o->out].has_views &&
                 !u[o->out].mem && u[o->out].readers == 0;
    // A value or gradient nothing reads (ops come before their readers, so
    // the reverse walk has counted every live reader): not computed.
    if (unread && (o->kind == FOP_DEF || o->kind == FOP_CONV_DW_DATA || o->kind == FOP_POOL_BWD ||
                   o->kind == FOP_LIB_CONV_DATA))
      o->dead = 1;
    if (o->dead) continue;
    for (int k = 0; k < o->n_writes; k++) u[o->writes[k]].writers++;
    for (int k = 0; k < b->n_raw[i]; k++) {
      FuseRawRead r = b->raw[i][k];
      if (r.how == RD_EXPR) u[r.tensor].readers++;
      else if (r.how == RD_MEM || r.how == RD_NC) u[r.tensor].mem = 1;
    }
  }
}

int fuse_inline(FuseBuild *b) {
  FusePlan *fp = b->fp;
  TensorUse *u = xcalloc((size_t)fp->n_tensors, sizeof *u);
  mark_live(b, u);
  int max_expr = b->opt->max_expr > 0 ? b->opt->max_expr : 64;
  for (int i = 0; i < fp->n_ops; i++) {
    FuseOp *o = &fp->ops[i];
    if (o->dead) continue;
    o->expr = subst(fp, o->expr);
    o->in_expr[0] = subst(fp, o->in_expr[0]);
    o->in_expr[1] = subst(fp, o->in_expr[1]);
    if (o->kind == FOP_DEF && !o->accumulate && !b->opt->no_fuse &&
        tensor_inlinable(fp, o->out, u)) {
      LeafSet s = {0};
      fx_leaves(&fp->fx, o->expr, count_leaf, &s);
      int r = u[o->out].readers;
      if (r >= 1 && (s.n <= 1 || r == 1) && fx_size(&fp->fx, o->expr) <= max_expr) {
        fp->def_expr[o->out] = o->expr;
        b->inlined[i] = 1;
      }
    }
  }
  // The tensors each op really reads, after inlining.
  for (int i = 0; i < fp->n_ops; i++) {
    FuseOp *o = &fp->ops[i];
    if (o->dead || b->inlined[i]) continue;
    ReadCollect c = {o, 0};
    fx_leaves(&fp->fx, o->expr, collect_leaf, &c);
    fx_leaves(&fp->fx, o->in_expr[0], collect_leaf, &c);
    fx_leaves(&fp->fx, o->in_expr[1], collect_leaf, &c);
    for (int k = 0; k < b->n_raw[i]; k++) {
      FuseRawRead r = b->raw[i][k];
      if (r.how == RD_MEM || r.how == RD_NC) add_read(o, &c.overflow, r.tensor);
    }
    if (c.overflow) {
      free(u);
      snprintf(b->err, b->errlen, "node %s: reads more than %d tensors",
               b->g->nodes[o->node].name, FUSE_MAX_RW);
      return -1;
    }
  }
  for (int t = 0; t < fp->n_tensors; t++)
    if (u[t].mem) fp->mem_read[t] = 1;
  free(u);
  return 0;
}
