// tests/unit/graph_nets.c — small NAO-shaped networks built node by node
// (gb_nao_net in graph_builders.h). The cells follow NAO-SPEC 1a.2 with two
// fixed architectures chosen to reach every case the lowering meets:
//   normal:    n2 = sep3(0) + id(1);   n3 = avg3(2) + conv1x3/3x1(0);
//              n4 = max2x2(1) + conv3(2);           concat [n3, n4]
//   reduction: n2 = sep3(0, s2) + conv3(0, s2); n3 = id(2) + avg2x2(0, s2);
//              n4 = max3(2) + id(0, s2 -> FR);     concat [FR(1), n3, n4]
// so inputs feed several branches, identities pass tensors through (and with
// stride 2 become FR), and a reduction cell concatenates an unused input.
#include <stdio.h>

#include "tests/unit/graph_builders.h"

typedef struct {
  IrGraph *g;
  const GbNet *o;
  int cell, c, reduce;
  char prefix[64];
} Cell;

enum { NM = 192 };  // name buffers: room for any prefix and tail used here

// "<cell prefix>.<tail>"
static const char *nm(const Cell *k, const char *tail, char *buf) {
  snprintf(buf, NM, "%s.%s", k->prefix, tail);
  return buf;
}

// op after the input; drop-path in training.
static int branch_end(Cell *k, int y, int node, const char *side) {
  if (!k->o->train) return y;
  char buf[NM], tail[48];
  snprintf(tail, sizeof tail, "ops.%d.%s_drop", node, side);
  return gb_droppath(k->g, nm(k, tail, buf), y, k->o->path_keep, k->cell, k->o->n_cells);
}

typedef enum { OP_SEP3, OP_ID, OP_AVG3, OP_CONV13, OP_MAX2, OP_CONV3, OP_AVG2, OP_MAX3 } Op;

static int branch(Cell *k, int x, Op op, int stride, int node, const char *side) {
  char buf[NM], tail[48];
  IrGraph *g = k->g;
  int t = k->o->train, y = x;
  snprintf(tail, sizeof tail, "ops.%d.%s_op", node, side);
  const char *name = nm(k, tail, buf);
  switch (op) {
  case OP_SEP3: y = gb_sep(g, name, x, 3, stride, t); break;
  case OP_ID:
    if (stride == 2) y = gb_fr(g, name, x, k->c, t);
    break;
  case OP_AVG3: y = gb_pool(g, name, x, 0, 3, 3, stride, stride, 1, 1, 1, 1, 0); break;
  case OP_MAX3: y = gb_pool(g, name, x, 1, 3, 3, stride, stride, 1, 1, 1, 1, 0); break;
  case OP_MAX2: y = gb_pool(g, name, x, 1, 2, 2, stride, stride, 0, 0, 1, 1, 1); break;
  case OP_AVG2: y = gb_pool(g, name, x, 0, 2, 2, stride, stride, 0, 0, 1, 1, 1); break;
  case OP_CONV3: y = gb_relu_conv_bn(g, name, x, k->c, 3, stride, t); break;
  case OP_CONV13: {
    char b2[NM + 8];
    snprintf(b2, sizeof b2, "%s.0", name);
    y = gb_relu(g, b2, x);
    snprintf(b2, sizeof b2, "%s.1", name);
    y = gb_conv(g, b2, y, k->c, 1, 3, 1, stride, 0, 1, 0, 1, 1);
    snprintf(b2, sizeof b2, "%s.2", name);
    y = gb_bn(g, b2, y, t, t);
    snprintf(b2, sizeof b2, "%s.3", name);
    y = gb_relu(g, b2, y);
    snprintf(b2, sizeof b2, "%s.4", name);
    y = gb_conv(g, b2, y, k->c, 3, 1, stride, 1, 1, 0, 1, 0, 1);
    snprintf(b2, sizeof b2, "%s.5", name);
    y = gb_bn(g, b2, y, t, t);
    break;
  }
  }
  return branch_end(k, y, node, side);
}

static int node(Cell *k, const int *st, int node_id, int xi, Op xo, int yi, Op yo) {
  char buf[NM], tail[16];
  int sx = k->reduce && xi < 2 ? 2 : 1, sy = k->reduce && yi < 2 ? 2 : 1;
  int b[2] = {branch(k, st[xi], xo, sx, node_id, "x"), branch(k, st[yi], yo, sy, node_id, "y")};
  snprintf(tail, sizeof tail, "node%d", node_id + 2);
  return gb_add(k->g, nm(k, tail, buf), 2, b);
}

static void calibrate(Cell *k, int *s0, int *s1) {
  char buf[NM];
  IrGraph *g = k->g;
  int t = k->o->train;
  if (g->tensors[*s0].h != g->tensors[*s1].h) {
    int r = gb_relu(g, nm(k, "maybe_calibrate_size.relu", buf), *s0);
    *s0 = gb_fr(g, nm(k, "maybe_calibrate_size.preprocess_x", buf), r, k->c, t);
  } else if (g->tensors[*s0].c != k->c) {
    *s0 = gb_relu_conv_bn(g, nm(k, "maybe_calibrate_size.preprocess_x", buf), *s0, k->c, 1, 1, t);
  }
  if (g->tensors[*s1].c != k->c)
    *s1 = gb_relu_conv_bn(g, nm(k, "maybe_calibrate_size.preprocess_y", buf), *s1, k->c, 1, 1, t);
}

static int cell(IrGraph *g, const GbNet *o, int i, int c, int s0, int s1) {
  Cell k = {g, o, i, c, (int)((o->reduce >> i) & 1), ""};
  snprintf(k.prefix, sizeof k.prefix, "cells.%d", i);
  calibrate(&k, &s0, &s1);
  int st[5] = {s0, s1, -1, -1, -1};
  char buf[NM];
  if (!k.reduce) {
    st[2] = node(&k, st, 0, 0, OP_SEP3, 1, OP_ID);
    st[3] = node(&k, st, 1, 2, OP_AVG3, 0, OP_CONV13);
    st[4] = node(&k, st, 2, 1, OP_MAX2, 2, OP_CONV3);
    int cat[2] = {st[3], st[4]};
    return gb_concat(g, nm(&k, "concat", buf), 2, cat);
  }
  st[2] = node(&k, st, 0, 0, OP_SEP3, 0, OP_CONV3);
  st[3] = node(&k, st, 1, 2, OP_ID, 0, OP_AVG2);
  st[4] = node(&k, st, 2, 2, OP_MAX3, 0, OP_ID);
  int fr = gb_fr(g, nm(&k, "final_combine.ops.0", buf), st[1], c, o->train);
  int cat[3] = {fr, st[3], st[4]};
  return gb_concat(g, nm(&k, "concat", buf), 3, cat);
}

static void aux_head(IrGraph *g, const GbNet *o, int x) {
  int y = gb_relu(g, "auxiliary_head.relu", x);
  y = gb_pool(g, "auxiliary_head.pool", y, 0, 2, 2, 2, 2, 0, 0, 0, 0, 1);
  y = gb_conv_sq(g, "auxiliary_head.conv1", y, 8, 1, 1, 0, 1);
  y = gb_bn(g, "auxiliary_head.bn1", y, 1, 1);
  y = gb_relu(g, "auxiliary_head.relu1", y);
  int k = g->tensors[y].h;
  y = gb_conv(g, "auxiliary_head.conv2", y, 12, k, k, 1, 1, 0, 0, 0, 0, 1);
  y = gb_bn(g, "auxiliary_head.bn2", y, 1, 1);
  y = gb_relu(g, "auxiliary_head.relu2", y);
  g->aux_logits = gb_linear(g, "auxiliary_head.classifier", y, o->classes);
  gb_xent(g, "aux_loss", g->aux_logits, 0.1f, 0.4f);
}

void gb_net_defaults(GbNet *o) {
  *o = (GbNet){.train = 1, .aux = 1, .c = 4, .hw = 8, .n_cells = 3, .reduce = 2u,
               .classes = 5, .drop_keep = 0.6f, .path_keep = 0.7f};
}

void gb_nao_net(IrGraph *g, const GbNet *o) {
  int x = gb_input(g, 3, o->hw, o->hw);
  gb_labels(g);
  int stem = gb_conv_sq(g, "stem.0", x, 3 * o->c, 3, 1, 1, 1);
  stem = gb_bn(g, "stem.1", stem, o->train, o->train);
  int s0 = stem, s1 = stem, c = o->c, last_reduce = -1;
  for (int i = 0; i < o->n_cells; i++)
    if ((o->reduce >> i) & 1) last_reduce = i;
  for (int i = 0; i < o->n_cells; i++) {
    if ((o->reduce >> i) & 1) c *= 2;
    int out = cell(g, o, i, c, s0, s1);
    s0 = s1;
    s1 = out;
    if (i == last_reduce && o->train && o->aux) aux_head(g, o, out);
  }
  int y = gb_gap(g, "global_pooling", s1);
  if (o->train) y = gb_dropout(g, "dropout", y, o->drop_keep);
  g->logits = gb_linear(g, "classifier", y, o->classes);
  gb_xent(g, "loss", g->logits, 0.1f, 1.0f);
  gb_finish(g);
}
