// compiler/lower_ops.c — the 16 ops of both vocabularies and FactorizedReduce
// as module chains (NAO-SPEC.md §1a.3, §1a.4).
//
// Step names are the reference's module paths below the branch module
// (`cells.i.ops.b.x_op`): SepConv's nn.Sequential is `op` (0 ReLU, 1 dw, 2 pw,
// 3 BN, 4 ReLU, 5 dw, 6 pw, 7 BN), Conv's is `ops` (0 ReLU, 1 conv, 2 BN
// [, 3 ReLU, 4 conv, 5 BN]), a pool is the branch module itself ("").
//
// Every op keeps c channels; stride s applies to the first conv (sep: dw1;
// pairs: the (1xk) conv strides columns, the (kx1) conv rows) or to the pool.
// Ops 10 and 13 (explicit zero pad right/bottom by 1, then a 2x2 pool, pad 0)
// become one pool with pb = pr = 1 and pad_counted = 1: the padded zeros take
// part in the max and the average divides by 4, exactly as after F.pad.
#include "compiler/lower_internal.h"
#include "compiler/ops.h"

static void seq_sepconv(const NaoOpInfo *op, int c, int s, LowerSeq *seq) {
  int k = op->k, p = op->pad;
  IrConvAttr dw1 = lower_conv_attr(c, c, k, k, s, s, p, p, c);
  IrConvAttr dw2 = lower_conv_attr(c, c, k, k, 1, 1, p, p, c);
  IrConvAttr pw = lower_conv_attr(c, c, 1, 1, 1, 1, 0, 0, 1);
  lseq_relu(seq, "op.0");
  lseq_conv(seq, "op.1", &dw1);
  lseq_conv(seq, "op.2", &pw);
  lseq_bn(seq, "op.3", c);
  lseq_relu(seq, "op.4");
  lseq_conv(seq, "op.5", &dw2);
  lseq_conv(seq, "op.6", &pw);
  lseq_bn(seq, "op.7", c);
}

static void seq_conv(const NaoOpInfo *op, int c, int s, LowerSeq *seq) {
  IrConvAttr a = lower_conv_attr(c, c, op->k, op->k, s, s, op->pad, op->pad, 1);
  lseq_relu(seq, "ops.0");
  lseq_conv(seq, "ops.1", &a);
  lseq_bn(seq, "ops.2", c);
}

// (1xk) with stride (1,s), pad (0,p); then (kx1) with stride (s,1), pad (p,0).
static void seq_conv_pair(const NaoOpInfo *op, int c, int s, LowerSeq *seq) {
  int k = op->k, p = op->pad;
  IrConvAttr a = lower_conv_attr(c, c, 1, k, 1, s, 0, p, 1);
  IrConvAttr b = lower_conv_attr(c, c, k, 1, s, 1, p, 0, 1);
  lseq_relu(seq, "ops.0");
  lseq_conv(seq, "ops.1", &a);
  lseq_bn(seq, "ops.2", c);
  lseq_relu(seq, "ops.3");
  lseq_conv(seq, "ops.4", &b);
  lseq_bn(seq, "ops.5", c);
}

static void seq_pool(const NaoOpInfo *op, int s, LowerSeq *seq) {
  IrPoolAttr a = {.is_max = op->pool_max, .kh = op->k, .kw = op->k, .sh = s, .sw = s,
                  .pt = op->pad, .pl = op->pad, .pb = op->pad + op->pad_right_bottom,
                  .pr = op->pad + op->pad_right_bottom, .pad_counted = op->pad_counted};
  lseq_pool(seq, "", &a);
}

void lower_op_seq(int op_id, int c, int stride, LowerSeq *seq) {
  const NaoOpInfo *op = nao_op_info(op_id);
  NAO_ASSERT(op);
  seq->n = 0;
  switch (op->kind) {
    case NAO_OPK_SEPCONV: seq_sepconv(op, c, stride, seq); break;
    case NAO_OPK_CONV: seq_conv(op, c, stride, seq); break;
    case NAO_OPK_CONV_PAIR: seq_conv_pair(op, c, stride, seq); break;
    case NAO_OPK_POOL: seq_pool(op, stride, seq); break;
    case NAO_OPK_IDENTITY: break;  // FactorizedReduce at stride 2: the cell adds it
  }
}

// ---------------------------------------------------------------- FactorizedReduce
// path1: 1x1 conv, stride 2, on x[:, :, 0::2, 0::2] (the reference's
// AvgPool2d(1, stride 2) is the subsampling, folded into the conv's stride);
// path2: the same on x[:, :, 1::2, 1::2], written as pt = pl = -1 (skip the
// first row and column) and pb = pr = +1 (the right/bottom zero pad);
// channel concat [path1, path2], then BN(cout). No ReLU inside.

static void fr_convs(int cin, int cout, IrConvAttr *p1, IrConvAttr *p2) {
  NAO_ASSERT(cout % 2 == 0);
  *p1 = lower_conv_attr(cin, cout / 2, 1, 1, 2, 2, 0, 0, 1);
  *p2 = *p1;
  p2->pt = p2->pl = -1;
  p2->pb = p2->pr = 1;
}

void lower_fr_declare(LowerCtx *c, const char *module, int cin, int cout) {
  IrConvAttr p1, p2;
  fr_convs(cin, cout, &p1, &p2);
  char name[IR_NAME_MAX];
  lower_join(name, sizeof name, module, "path1.1");
  lower_declare_conv(c, name, &p1);
  lower_join(name, sizeof name, module, "path2.1");
  lower_declare_conv(c, name, &p2);
  lower_join(name, sizeof name, module, "bn");
  lower_declare_bn(c, name, cout);
}

int lower_fr_emit(LowerCtx *c, const char *module, int x, int cout) {
  IrConvAttr p1, p2;
  fr_convs(c->g->tensors[x].c, cout, &p1, &p2);
  char name[IR_NAME_MAX];
  int parts[2];
  lower_join(name, sizeof name, module, "path1.1");
  parts[0] = lower_emit_conv(c, name, x, &p1);  // (cout/2, H/2, W/2)
  lower_join(name, sizeof name, module, "path2.1");
  parts[1] = lower_emit_conv(c, name, x, &p2);  // (cout/2, H/2, W/2)
  lower_name(name, sizeof name, "%s:cat", module);
  int cat = lower_emit_concat(c, name, parts, 2);  // (cout, H/2, W/2)
  lower_join(name, sizeof name, module, "bn");
  return lower_emit_bn(c, name, cat);
}
