// tests/unit/emu_nets.c — the small networks the CUDA emitter is tested on,
// built by hand (emu_nets.h): shared by the unit tests, the golden net.cu
// files and the NVRTC check.
#include "tests/unit/emu_nets.h"

#include <stdio.h>
#include <string.h>

// ReLU -> depthwise 3x3 -> 1x1 -> BN -> ReLU -> GAP -> linear -> loss.
static void net_chain(TG *t) {
  int x = tg_input(t, 6, 7, 7);
  int lab = tg_labels(t);
  int r = tg_relu(t, "op.0", x);
  int d = tg_conv(t, "op.1", r, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6);
  int p = tg_conv(t, "op.2", d, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1);
  int b = tg_bn(t, "op.3", p);
  int r2 = tg_relu(t, "op.4", b);
  int gp = tg_gap(t, "gap", r2);
  int lg = tg_linear(t, "classifier", gp, 5);
  tg_xent(t, "loss", lg, lab, 0.1f, 1.0f);
}

// ReLU -> conv (k x k, groups g) -> BN, the reference's ReLUConvBN.
static int rcb(TG *t, const char *name, int x, int cout, int kh, int kw, int s, int ph, int pw) {
  char a[96], b[96], c[96];
  snprintf(a, sizeof a, "%s.0", name);
  snprintf(b, sizeof b, "%s.1", name);
  snprintf(c, sizeof c, "%s.2", name);
  int r = tg_relu(t, a, x);
  int y = tg_conv(t, b, r, cout, kh, kw, s, s, ph, pw, ph, pw, 1);
  return tg_bn(t, c, y);
}

// Separable convolution: ReLU dw pw BN ReLU dw pw BN (NAO-SPEC.md op 0/1).
static int sep(TG *t, const char *name, int x, int k, int s) {
  int c = t->g.tensors[x].c, p = k / 2;
  char n[8][96];
  for (int i = 0; i < 8; i++) snprintf(n[i], sizeof n[i], "%s.op.%d", name, i);
  int y = tg_relu(t, n[0], x);
  y = tg_conv(t, n[1], y, c, k, k, s, s, p, p, p, p, c);
  y = tg_conv(t, n[2], y, c, 1, 1, 1, 1, 0, 0, 0, 0, 1);
  y = tg_bn(t, n[3], y);
  y = tg_relu(t, n[4], y);
  y = tg_conv(t, n[5], y, c, k, k, 1, 1, p, p, p, p, c);
  y = tg_conv(t, n[6], y, c, 1, 1, 1, 1, 0, 0, 0, 0, 1);
  return tg_bn(t, n[7], y);
}

// A normal cell of the NAO family at 8x8 with 8 channels: calibration,
// three nodes mixing separable convolutions, pools, identity and a 3x3
// convolution with drop-path, the loose ends concatenated by slices.
static void net_cell(TG *t) {
  int x = tg_input(t, 3, 8, 8);
  int lab = tg_labels(t);
  int stem = tg_conv(t, "stem.0", x, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  int s0 = tg_bn(t, "stem.1", stem);
  int s1 = rcb(t, "cells.0.preprocess_y", s0, 8, 1, 1, 1, 0, 0);
  int out = tg_act(t, 24, 8, 8, "cells.0:out");
  // node 2 = sep3x3(s0) + identity(s1), both through drop-path
  int a = sep(t, "cells.0.ops.0.x_op", s0, 3, 1);
  a = tg_droppath(t, "cells.0.ops.0.x_dp", a, 0.8f, 0, 5);
  int b = tg_droppath(t, "cells.0.ops.0.y_dp", s1, 0.8f, 0, 5);
  int h2 = tg_act(t, 8, 8, 8, "cells.0.node2");
  t->g.tensors[h2].view_of = out;
  t->g.tensors[h2].chan_offset = 0;
  int in2[2] = {a, b};
  tg_node(t, IR_ADD, "cells.0.node2", 2, in2, 1, &h2, 0, NULL);
  // node 3 = avg3x3(h2, not counting pads) + max3x3(s1)
  int p1 = tg_pool(t, "cells.0.ops.1.x_op", h2, 0, 3, 1, 1, 1, 1, 1, 0);
  int p2 = tg_pool(t, "cells.0.ops.1.y_op", s1, 1, 3, 1, 1, 1, 1, 1, 0);
  int h3 = tg_act(t, 8, 8, 8, "cells.0.node3");
  t->g.tensors[h3].view_of = out;
  t->g.tensors[h3].chan_offset = 8;
  int in3[2] = {p1, p2};
  tg_node(t, IR_ADD, "cells.0.node3", 2, in3, 1, &h3, 0, NULL);
  // node 4 = conv3x3(h2) + sep5x5(s0): written into a fresh tensor, copied by the concat
  int c4 = rcb(t, "cells.0.ops.2.x_op", h2, 8, 3, 3, 1, 1, 1);
  int s4 = sep(t, "cells.0.ops.2.y_op", s0, 5, 1);
  int in4[2] = {c4, s4};
  int h4 = tg_add(t, "cells.0.node4", 2, in4);
  int parts[3] = {h2, h3, h4};
  tg_concat(t, "cells.0.concat", 3, parts, out);
  int gp = tg_gap(t, "gap", out);
  int lg = tg_linear(t, "classifier", gp, 7);
  tg_xent(t, "loss", lg, lab, 0.1f, 1.0f);
}

// Reduction pieces at odd-free and odd sizes: factorized reduction (two 1x1
// stride-2 convolutions, the second on the input cropped by one row and
// column, into the slices of a concatenation) -> BN; depthwise 5x5 stride 2;
// max 2x2 over a right/bottom zero pad; average 2x2 counting it; average 3x3
// stride 2 counting pads; 1x3 then 3x1 convolutions; an auxiliary-head-like
// 5x5/3 pool, 1x1 and 2x2 convolution, second loss with weight 0.4.
static void net_reduce(TG *t) {
  int x = tg_input(t, 4, 10, 10);
  int lab = tg_labels(t);
  int s = tg_bn(t, "stem.1", tg_conv(t, "stem.0", x, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1));
  int fr = tg_act(t, 8, 5, 5, "fr:cat");
  int f1 = tg_act(t, 4, 5, 5, "fr.path1:out");
  t->g.tensors[f1].view_of = fr;
  int f2 = tg_act(t, 4, 5, 5, "fr.path2:out");
  t->g.tensors[f2].view_of = fr;
  t->g.tensors[f2].chan_offset = 4;
  tg_conv_out(t, "fr.path1.1", s, f1, 1, 1, 2, 2, 0, 0, 0, 0, 1);
  tg_conv_out(t, "fr.path2.1", s, f2, 1, 1, 2, 2, -1, -1, 1, 1, 1);
  int fparts[2] = {f1, f2};
  tg_concat(t, "fr.cat", 2, fparts, fr);
  int frb = tg_bn(t, "fr.bn", fr);
  int d = tg_conv(t, "dw5", tg_relu(t, "dw5.r", s), 8, 5, 5, 2, 2, 2, 2, 2, 2, 8);
  int m2 = tg_pool(t, "max2", s, 1, 2, 2, 0, 0, 1, 1, 1);
  int a2 = tg_pool(t, "avg2", s, 0, 2, 2, 0, 0, 1, 1, 1);
  int a3 = tg_pool(t, "avg3", s, 0, 3, 2, 1, 1, 1, 1, 1);
  int pr = rcb(t, "pair.a", frb, 8, 1, 3, 1, 0, 1);
  pr = rcb(t, "pair.b", pr, 8, 3, 1, 1, 1, 0);
  int sum_in[6] = {frb, d, m2, a2, a3, pr};
  int h = tg_add(t, "node", 6, sum_in);
  // auxiliary head on h (5x5)
  int ar = tg_relu(t, "aux.0", h);
  int ap = tg_pool(t, "aux.1", ar, 0, 3, 2, 0, 0, 0, 0, 1);
  int ac = tg_bn(t, "aux.bn1", tg_conv(t, "aux.conv1", ap, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1));
  ac = tg_relu(t, "aux.2", ac);
  int ac2 = tg_bn(t, "aux.bn2", tg_conv(t, "aux.conv2", ac, 10, 2, 2, 1, 1, 0, 0, 0, 0, 1));
  ac2 = tg_relu(t, "aux.3", ac2);
  int al = tg_linear(t, "aux.classifier", ac2, 6);
  int gp = tg_gap(t, "gap", h);
  int dr = tg_dropout(t, "dropout", gp, 0.7f);
  int lg = tg_linear(t, "classifier", dr, 6);
  t->g.logits = lg;
  t->g.aux_logits = al;
  tg_xent(t, "loss", lg, lab, 0.1f, 1.0f);
  tg_xent(t, "aux_loss", al, lab, 0.1f, 0.4f);
}

static const EmuNet nets[] = {
    {"chain", IR_MODE_TRAIN, net_chain},
    {"cell", IR_MODE_TRAIN, net_cell},
    {"reduce", IR_MODE_TRAIN, net_reduce},
    {"cell-eval", IR_MODE_EVAL, net_cell},
};

int emu_net_count(void) { return (int)(sizeof nets / sizeof nets[0]); }
const EmuNet *emu_net_at(int i) { return &nets[i]; }

const EmuNet *emu_net_find(const char *name) {
  for (int i = 0; i < emu_net_count(); i++)
    if (strcmp(nets[i].name, name) == 0) return &nets[i];
  return NULL;
}

void emu_net_make(const EmuNet *net, TG *t) {
  tg_init(t, net->mode);
  net->build(t);
  if (net->mode == IR_MODE_TRAIN) tg_backward(t);
  else t->g.n_fwd_nodes = t->g.n_nodes;
}
