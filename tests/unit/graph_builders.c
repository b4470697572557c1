// tests/unit/graph_builders.c — hand-built IrGraphs (graph_builders.h).
#include "tests/unit/graph_builders.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/rng.h"

static IrNode fresh(IrKind kind, const char *name) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = kind;
  snprintf(n.name, sizeof n.name, "%s", name);
  n.fwd = -1;
  return n;
}

static int tensor(IrGraph *g, IrTensorKind kind, int c, int h, int w, const char *name,
                  const char *suffix) {
  char buf[IR_NAME_MAX * 2];
  snprintf(buf, sizeof buf, "%s%s", name, suffix);
  return ir_add_tensor(g, kind, c, h, w, buf);
}

static int unary(IrGraph *g, IrNode *n, int x, int c, int h, int w) {
  int y = tensor(g, IR_T_ACT, c, h, w, n->name, ":out");
  n->n_in = 1;
  n->in[0] = x;
  n->n_out = 1;
  n->out[0] = y;
  ir_add_node(g, n);
  return y;
}

static int param(IrGraph *g, const char *name, const char *suffix, int ndim, const int *dims,
                 int trainable, ParamInit init, int fan_in) {
  char buf[PARAM_NAME_MAX];
  snprintf(buf, sizeof buf, "%s%s", name, suffix);
  return params_get(g->params, buf, ndim, dims, trainable, init, fan_in, 0);
}

int gb_input(IrGraph *g, int c, int h, int w) {
  IrNode n = fresh(IR_INPUT, "input");
  g->input = tensor(g, IR_T_ACT, c, h, w, "input", "");
  n.n_out = 1;
  n.out[0] = g->input;
  ir_add_node(g, &n);
  return g->input;
}

int gb_labels(IrGraph *g) {
  IrNode n = fresh(IR_LABELS, "labels");
  g->labels = tensor(g, IR_T_LABELS, 1, 1, 1, "labels", "");
  n.n_out = 1;
  n.out[0] = g->labels;
  ir_add_node(g, &n);
  g->has_loss = 1;
  return g->labels;
}

int gb_conv(IrGraph *g, const char *name, int x, int cout, int kh, int kw, int sh, int sw,
            int pt, int pl, int pb, int pr, int groups) {
  const IrTensor *xt = &g->tensors[x];
  int cin = xt->c, h = xt->h, w = xt->w;
  IrNode n = fresh(IR_CONV, name);
  IrConvAttr *a = &n.a.conv;
  *a = (IrConvAttr){kh, kw, sh, sw, pt, pl, pb, pr, groups, cin, cout};
  int dims[4] = {cout, cin / groups, kh, kw};
  n.n_param = 1;
  n.param[0] = param(g, name, ".weight", 4, dims, 1, PINIT_KAIMING_NORMAL, cin / groups * kh * kw);
  return unary(g, &n, x, cout, (h + pt + pb - kh) / sh + 1, (w + pl + pr - kw) / sw + 1);
}

int gb_conv_sq(IrGraph *g, const char *name, int x, int cout, int k, int s, int pad, int groups) {
  return gb_conv(g, name, x, cout, k, k, s, s, pad, pad, pad, pad, groups);
}

int gb_bn(IrGraph *g, const char *name, int x, int batch_stats, int update_running) {
  const IrTensor *xt = &g->tensors[x];
  int c = xt->c, h = xt->h, w = xt->w;
  IrNode n = fresh(IR_BN, name);
  n.a.bn = (IrBnAttr){1e-5f, 0.1f, batch_stats, update_running};
  int dims[1] = {c};
  n.n_param = 4;
  n.param[0] = param(g, name, ".weight", 1, dims, 1, PINIT_ONES, 0);
  n.param[1] = param(g, name, ".bias", 1, dims, 1, PINIT_ZEROS, 0);
  n.param[2] = param(g, name, ".running_mean", 1, dims, 0, PINIT_ZEROS, 0);
  n.param[3] = param(g, name, ".running_var", 1, dims, 0, PINIT_ONES, 0);
  n.n_in = 1;
  n.in[0] = x;
  n.n_out = 1;
  n.out[0] = tensor(g, IR_T_ACT, c, h, w, name, ":out");
  if (batch_stats) {
    n.n_out = 3;
    n.out[1] = tensor(g, IR_T_STAT, c, 1, 1, name, ":mean");
    n.out[2] = tensor(g, IR_T_STAT, c, 1, 1, name, ":invstd");
  }
  ir_add_node(g, &n);
  return n.out[0];
}

int gb_relu(IrGraph *g, const char *name, int x) {
  IrNode n = fresh(IR_RELU, name);
  const IrTensor *xt = &g->tensors[x];
  return unary(g, &n, x, xt->c, xt->h, xt->w);
}

static int multi(IrGraph *g, IrKind kind, const char *name, int nx, const int *xs, int c) {
  IrNode n = fresh(kind, name);
  const IrTensor *x0 = &g->tensors[xs[0]];
  IrTensorKind tk = x0->kind;
  int h = x0->h, w = x0->w;
  n.n_in = nx;
  for (int k = 0; k < nx; k++) n.in[k] = xs[k];
  n.n_out = 1;
  n.out[0] = tensor(g, tk, c, h, w, name, ":out");
  ir_add_node(g, &n);
  return n.out[0];
}

int gb_add(IrGraph *g, const char *name, int n, const int *xs) {
  return multi(g, IR_ADD, name, n, xs, g->tensors[xs[0]].c);
}

int gb_concat(IrGraph *g, const char *name, int n, const int *xs) {
  int c = 0;
  for (int k = 0; k < n; k++) c += g->tensors[xs[k]].c;
  return multi(g, IR_CONCAT, name, n, xs, c);
}

int gb_pool(IrGraph *g, const char *name, int x, int is_max, int kh, int kw, int sh, int sw,
            int pt, int pl, int pb, int pr, int pad_counted) {
  const IrTensor *xt = &g->tensors[x];
  int c = xt->c, h = xt->h, w = xt->w;
  IrNode n = fresh(IR_POOL, name);
  n.a.pool = (IrPoolAttr){is_max, kh, kw, sh, sw, pt, pl, pb, pr, pad_counted};
  return unary(g, &n, x, c, (h + pt + pb - kh) / sh + 1, (w + pl + pr - kw) / sw + 1);
}

int gb_gap(IrGraph *g, const char *name, int x) {
  IrNode n = fresh(IR_GAP, name);
  return unary(g, &n, x, g->tensors[x].c, 1, 1);
}

int gb_linear(IrGraph *g, const char *name, int x, int k) {
  IrNode n = fresh(IR_LINEAR, name);
  int f = (int)ir_tensor_numel(&g->tensors[x]);
  int wd[2] = {k, f}, bd[1] = {k};
  n.n_param = 2;
  n.param[0] = param(g, name, ".weight", 2, wd, 1, PINIT_KAIMING_NORMAL, f);
  n.param[1] = param(g, name, ".bias", 1, bd, 1, PINIT_LINEAR_BIAS, f);
  return unary(g, &n, x, k, 1, 1);
}

static int masked(IrGraph *g, IrNode *n, int x, int per_sample) {
  const IrTensor *xt = &g->tensors[x];
  int c = xt->c, h = xt->h, w = xt->w;
  n->n_in = 1;
  n->in[0] = x;
  n->n_out = 2;
  n->out[0] = tensor(g, IR_T_ACT, c, h, w, n->name, ":out");
  n->out[1] = per_sample ? tensor(g, IR_T_ACT, 1, 1, 1, n->name, ":mask")
                         : tensor(g, IR_T_ACT, c, h, w, n->name, ":mask");
  ir_add_node(g, n);
  return n->out[0];
}

int gb_dropout(IrGraph *g, const char *name, int x, float keep) {
  IrNode n = fresh(IR_DROPOUT, name);
  n.a.drop.keep = keep;
  return masked(g, &n, x, 0);
}

int gb_droppath(IrGraph *g, const char *name, int x, float keep, int cell, int n_cells) {
  IrNode n = fresh(IR_DROPPATH, name);
  n.a.drop = (IrDropAttr){keep, cell, n_cells};
  return masked(g, &n, x, 1);
}

static int xent(IrGraph *g, const char *name, int logits, float smoothing, float weight,
                int own) {
  const IrTensor *z = &g->tensors[logits];
  int k = z->c;
  IrNode n = fresh(IR_XENT, name);
  n.a.xent = (IrXentAttr){smoothing, weight};
  n.n_in = 2;
  n.in[0] = logits;
  n.in[1] = g->labels;
  n.n_out = 2;
  if (own) {
    n.out[0] = tensor(g, IR_T_SCALAR, 1, 1, 1, name, ":loss");
  } else {
    if (g->loss < 0) g->loss = tensor(g, IR_T_SCALAR, 1, 1, 1, "loss", "");
    else n.accumulate = 1;
    n.out[0] = g->loss;
  }
  n.out[1] = tensor(g, IR_T_ACT, k, 1, 1, name, ":softmax");
  ir_add_node(g, &n);
  return n.out[0];
}

int gb_xent(IrGraph *g, const char *name, int logits, float smoothing, float weight) {
  return xent(g, name, logits, smoothing, weight, 0);
}

int gb_xent_own(IrGraph *g, const char *name, int logits, float smoothing, float weight) {
  return xent(g, name, logits, smoothing, weight, 1);
}

void gb_finish(IrGraph *g) { g->n_fwd_nodes = g->n_nodes; }

// ---------------------------------------------------------------- composites

int gb_relu_conv_bn(IrGraph *g, const char *name, int x, int cout, int k, int s, int train) {
  char buf[IR_NAME_MAX];
  snprintf(buf, sizeof buf, "%s.relu", name);
  int r = gb_relu(g, buf, x);
  snprintf(buf, sizeof buf, "%s.conv", name);
  int y = gb_conv_sq(g, buf, r, cout, k, s, k / 2, 1);
  snprintf(buf, sizeof buf, "%s.bn", name);
  return gb_bn(g, buf, y, train, train);
}

int gb_fr(IrGraph *g, const char *name, int x, int cout, int train) {
  char buf[IR_NAME_MAX];
  snprintf(buf, sizeof buf, "%s.path1.1", name);
  int p1 = gb_conv(g, buf, x, cout / 2, 1, 1, 2, 2, 0, 0, 0, 0, 1);
  snprintf(buf, sizeof buf, "%s.path2.1", name);
  int p2 = gb_conv(g, buf, x, cout / 2, 1, 1, 2, 2, -1, -1, 1, 1, 1);
  snprintf(buf, sizeof buf, "%s.cat", name);
  int parts[2] = {p1, p2};
  int cat = gb_concat(g, buf, 2, parts);
  snprintf(buf, sizeof buf, "%s.bn", name);
  return gb_bn(g, buf, cat, train, train);
}

int gb_sep(IrGraph *g, const char *name, int x, int k, int s, int train) {
  char buf[IR_NAME_MAX];
  int c = g->tensors[x].c, y = x;
  for (int half = 0; half < 2; half++) {
    int base = half * 4;
    snprintf(buf, sizeof buf, "%s.op.%d", name, base);
    y = gb_relu(g, buf, y);
    snprintf(buf, sizeof buf, "%s.op.%d", name, base + 1);
    y = gb_conv_sq(g, buf, y, c, k, half ? 1 : s, k / 2, c);
    snprintf(buf, sizeof buf, "%s.op.%d", name, base + 2);
    y = gb_conv_sq(g, buf, y, c, 1, 1, 0, 1);
    snprintf(buf, sizeof buf, "%s.op.%d", name, base + 3);
    y = gb_bn(g, buf, y, train, train);
  }
  return y;
}

// ---------------------------------------------------------------- values

void gb_random_params(const IrGraph *g, RefState *s, uint64_t seed) {
  Rng r;
  rng_seed(&r, seed);
  for (int i = 0; i < g->params->n; i++) {
    const ParamInfo *p = &g->params->items[i];
    double *v = (p->trainable ? s->params : s->buffers) + p->offset;
    for (size_t j = 0; j < p->numel; j++) {
      switch (p->init) {
      case PINIT_KAIMING_NORMAL: v[j] = rng_normal(&r) * sqrt(2.0 / p->fan_in); break;
      case PINIT_LINEAR_BIAS: v[j] = (2 * rng_uniform(&r) - 1) / sqrt((double)p->fan_in); break;
      case PINIT_ONES: v[j] = p->trainable ? 1 + 0.3 * rng_normal(&r) : 1 + 0.5 * rng_uniform(&r); break;
      case PINIT_ZEROS: v[j] = 0.2 * rng_normal(&r); break;
      }
    }
  }
}

void gb_random_data(const IrGraph *g, RefState *s, uint64_t seed) {
  Rng r;
  rng_seed(&r, seed);
  if (g->input >= 0) {
    size_t per = ir_tensor_numel(&g->tensors[g->input]);
    for (int n = 0; n < s->batch; n++)
      for (size_t j = 0; j < per; j++) *ref_at(s, g->input, n, j) = rng_normal(&r);
  }
  if (g->labels >= 0 && g->logits >= 0) {
    int k = g->tensors[g->logits].c;
    for (int n = 0; n < s->batch; n++) *ref_at(s, g->labels, n, 0) = (double)rng_below(&r, (uint64_t)k);
  }
}
