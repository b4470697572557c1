// compiler/lower.c — the macro structure of the reference networks
// (NAO-SPEC.md §1a.1, §1a.5, §1a.7): input, stems, the chain of cells, the
// auxiliary head, global pooling, dropout, classifier and the loss.
//
// lower_network() runs the declaration walk (parameters in state_dict order:
// stem, cells, auxiliary_head, classifier) and then the emission walk (nodes in
// execution order). What a cell is comes through LowerCtx's cell functions, so
// another cell family (the weight-sharing supernet) reuses everything here.
//
// Module paths: stem.{0 conv, 1 BN} (CIFAR); stem0.{0 conv, 1 BN, 2 ReLU,
// 3 conv, 4 BN}, stem1.{0 ReLU, 1 conv, 2 BN} (ImageNet); auxiliary_head.{relu1,
// avg_pool, conv1, bn1, relu2, conv2, bn2, relu3, classifier}; global_pooling,
// dropout, classifier. The losses are classifier:xent, auxiliary_head:xent and
// their sum, loss.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/lower_internal.h"

void lower_options_init(LowerOptions *opt, IrMode mode) {
  memset(opt, 0, sizeof *opt);
  opt->mode = mode;
  opt->with_loss = 1;
  opt->label_smoothing = 0.0f;
  opt->bn_update_running = mode == IR_MODE_TRAIN;
}

// ---------------------------------------------------------------- module chains

// CIFAR: conv3x3 s1 p1 (in -> 3F) + BN, no ReLU. ImageNet stem0: conv3x3 s2
// (in -> F/2) BN ReLU conv3x3 s2 (F/2 -> F) BN; stem1: ReLU conv3x3 s2 BN.
// (The reference's stem1 ReLU is in place on stem0's output, so cell 0 sees
// ReLU(s0); cell 0 always brings s0 down with ReLU + FR, and ReLU twice is
// ReLU once, so s0 is left unchanged here.)
static void stem_seqs(const NetSpec *ns, LowerSeq *s0, LowerSeq *s1) {
  int f = ns->channels, in = ns->in_channels;
  s0->n = s1->n = 0;
  if (ns->stem == STEM_CIFAR) {
    IrConvAttr a = lower_conv_attr(in, 3 * f, 3, 3, 1, 1, 1, 1, 1);
    lseq_conv(s0, "0", &a);
    lseq_bn(s0, "1", 3 * f);
    return;
  }
  IrConvAttr a = lower_conv_attr(in, f / 2, 3, 3, 2, 2, 1, 1, 1);
  IrConvAttr b = lower_conv_attr(f / 2, f, 3, 3, 2, 2, 1, 1, 1);
  IrConvAttr d = lower_conv_attr(f, f, 3, 3, 2, 2, 1, 1, 1);
  lseq_conv(s0, "0", &a);
  lseq_bn(s0, "1", f / 2);
  lseq_relu(s0, "2");
  lseq_conv(s0, "3", &b);
  lseq_bn(s0, "4", f);
  lseq_relu(s1, "0");
  lseq_conv(s1, "1", &d);
  lseq_bn(s1, "2", f);
}

static const char *stem_prefix(const NetSpec *ns, int which) {
  if (ns->stem == STEM_CIFAR) return "stem";
  return which ? "stem1" : "stem0";
}

// ReLU, avg 5x5 stride S pad 0 (never pads: divisor 25), conv1x1 -> 128, BN,
// ReLU, conv2x2 valid -> 768, BN, ReLU, linear 768 -> classes (bias).
static void aux_seq(const NetSpec *ns, const NetLayout *L, LowerSeq *s) {
  int st = L->aux_pool_stride;
  IrPoolAttr pool = {.is_max = 0, .kh = 5, .kw = 5, .sh = st, .sw = st, .pad_counted = 1};
  IrConvAttr c1 = lower_conv_attr(L->aux_in.c, 128, 1, 1, 1, 1, 0, 0, 1);
  IrConvAttr c2 = lower_conv_attr(128, 768, 2, 2, 1, 1, 0, 0, 1);
  s->n = 0;
  lseq_relu(s, "relu1");  // into a new tensor (decision O3)
  lseq_pool(s, "avg_pool", &pool);
  lseq_conv(s, "conv1", &c1);
  lseq_bn(s, "bn1", 128);
  lseq_relu(s, "relu2");
  lseq_conv(s, "conv2", &c2);
  lseq_bn(s, "bn2", 768);
  lseq_relu(s, "relu3");
  lseq_linear(s, "classifier", 768, ns->classes);
}

// ---------------------------------------------------------------- declaration walk

static void declare_all(LowerCtx *c) {
  const NetSpec *ns = c->ns;
  const NetLayout *L = c->L;
  LowerSeq s0, s1;
  stem_seqs(ns, &s0, &s1);
  lseq_declare(c, stem_prefix(ns, 0), &s0);
  lseq_declare(c, stem_prefix(ns, 1), &s1);
  for (int i = 0; i < L->n_cells; i++) c->cell_declare(c, i);
  if (L->has_aux) {
    LowerSeq a;
    aux_seq(ns, L, &a);
    c->aux = 1;
    lseq_declare(c, "auxiliary_head", &a);
    c->aux = 0;
  }
  lower_declare_linear(c, "classifier", L->final.c, ns->classes);  // after global pooling
}

// ---------------------------------------------------------------- emission walk

static int emit_input(LowerCtx *c) {
  const NetShape *in = &c->L->input;
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = IR_INPUT;
  snprintf(n.name, sizeof n.name, "input");
  n.fwd = -1;
  n.n_out = 1;
  n.out[0] = lower_new_act(c, in->c, in->h, in->w, "input");  // (C, H, W)
  ir_add_node(c->g, &n);
  return n.out[0];
}

static int emit_labels(LowerCtx *c) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = IR_LABELS;
  snprintf(n.name, sizeof n.name, "labels");
  n.fwd = -1;
  n.n_out = 1;
  n.out[0] = ir_add_tensor(c->g, IR_T_LABELS, 1, 1, 1, "labels");  // (N) int32
  ir_add_node(c->g, &n);
  return n.out[0];
}

static int emit_aux(LowerCtx *c, int x) {
  LowerSeq a;
  aux_seq(c->ns, c->L, &a);
  c->aux = 1;
  int logits = lseq_emit(c, "auxiliary_head", &a, x);  // (classes, 1, 1)
  c->aux = 0;
  return logits;
}

// global_pooling -> dropout (training, keep < 1) -> classifier.
static int emit_head(LowerCtx *c, int x) {
  x = lower_emit_gap(c, "global_pooling", x);  // (C, 1, 1)
  if (c->opt.mode == IR_MODE_TRAIN && c->ns->dropout_keep < 1)
    x = lower_emit_dropout(c, "dropout", x, (float)c->ns->dropout_keep);
  return lower_emit_linear(c, "classifier", x, c->ns->classes);  // (classes, 1, 1)
}

static void emit_loss(LowerCtx *c) {
  IrGraph *g = c->g;
  float eps = c->opt.label_smoothing;
  int losses[2], n = 0;
  losses[n++] = lower_emit_xent(c, "classifier:xent", g->logits, g->labels, eps, 1.0f);
  if (g->aux_logits >= 0) {
    c->aux = 1;
    losses[n++] = lower_emit_xent(c, "auxiliary_head:xent", g->aux_logits, g->labels, eps,
                                  (float)c->ns->aux_weight);
    c->aux = 0;
  }
  g->loss = n == 1 ? losses[0] : lower_emit_add(c, "loss", losses, n);
}

static void emit_all(LowerCtx *c) {
  const NetSpec *ns = c->ns;
  const NetLayout *L = c->L;
  IrGraph *g = c->g;
  g->input = emit_input(c);
  if (c->opt.with_loss) g->labels = emit_labels(c);
  LowerSeq q0, q1;
  stem_seqs(ns, &q0, &q1);
  int s0 = lseq_emit(c, stem_prefix(ns, 0), &q0, g->input);
  int s1 = ns->stem == STEM_CIFAR ? s0 : lseq_emit(c, stem_prefix(ns, 1), &q1, s0);
  int train_aux = L->has_aux && c->opt.mode == IR_MODE_TRAIN;
  for (int i = 0; i < L->n_cells; i++) {
    int out = c->cell_emit(c, i, s0, s1);
    s0 = s1;
    s1 = out;
    if (train_aux && i == L->aux_cell) g->aux_logits = emit_aux(c, s1);
  }
  g->logits = emit_head(c, s1);
  if (c->opt.with_loss) emit_loss(c);
  g->has_loss = c->opt.with_loss;
  g->n_fwd_nodes = g->n_nodes;
}

// ---------------------------------------------------------------- entry points

static int standard_layout(const NetSpec *ns, NetLayout *L, char *err, size_t errlen) {
  return netspec_layout(ns, L, err, errlen) == LAYOUT_OK ? 0 : -1;
}

static const LowerFamily standard = {standard_layout, lower_cell_declare, lower_cell_emit};

// Settings the layout does not look at; the front end checks them too, but a
// NetSpec may come from elsewhere (the search, a test).
static int check_settings(const NetSpec *ns, const LowerOptions *opt, char *err, size_t errlen) {
  const char *bad = NULL;
  if (ns->classes < 1 || ns->classes > NAO_MAX_CLASSES) bad = "the class count";
  else if (!(ns->aux_weight >= 0 && ns->aux_weight < 1e6)) bad = "the auxiliary loss weight";
  else if (!(ns->dropout_keep > 0 && ns->dropout_keep <= 1)) bad = "the dropout keep probability";
  else if (!(ns->drop_path_keep > 0 && ns->drop_path_keep <= 1)) bad = "the drop-path keep probability";
  else if (opt && !(opt->label_smoothing >= 0 && opt->label_smoothing < 1)) bad = "the label smoothing";
  if (!bad) return 0;
  snprintf(err, errlen, "%s is out of range (classes %d, aux weight %g, dropout keep %g, drop-path keep %g%s)",
           bad, ns->classes, ns->aux_weight, ns->dropout_keep, ns->drop_path_keep,
           opt ? ", smoothing in [0, 1)" : "");
  return -1;
}

int lower_run(const NetSpec *ns, const LowerOptions *opt, ParamTable *params, IrGraph *g,
              const LowerFamily *fam, char *err, size_t errlen) {
  NAO_ASSERT(!g || (g->params == params && g->n_nodes == 0));
  NetLayout *L = xmalloc(sizeof *L);  // large: one entry per possible cell
  LowerCtx c;
  memset(&c, 0, sizeof c);
  int rc = check_settings(ns, opt, err, errlen);
  if (rc == 0) rc = fam->layout(ns, L, err, errlen);
  if (rc == 0) {
    c.ns = ns;
    c.L = L;
    if (opt)
      c.opt = *opt;
    else
      lower_options_init(&c.opt, IR_MODE_EVAL);
    c.params = params;
    c.cell_declare = fam->cell_declare;
    c.cell_emit = fam->cell_emit;
    declare_all(&c);
    if (g) {
      c.g = g;
      g->mode = c.opt.mode;
      emit_all(&c);
    }
  }
  free(L);
  return rc;
}

int lower_declare_params(const NetSpec *ns, ParamTable *params, char *err, size_t errlen) {
  return lower_run(ns, NULL, params, NULL, &standard, err, errlen);
}

int lower_network(const NetSpec *ns, const LowerOptions *opt, ParamTable *params, IrGraph *g,
                  char *err, size_t errlen) {
  return lower_run(ns, opt, params, g, &standard, err, errlen);
}
