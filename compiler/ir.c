// compiler/ir.c — building, querying, dumping and verifying IrGraphs (ir.h).
//
// ir_verify checks the per-kind contract of ir.h (counts, tensor kinds, shapes
// against the attributes, parameters' shapes), the order (every input written
// by an earlier node, every output written by exactly one node unless it is
// accumulated into), the links of backward nodes to their forward nodes, and
// that views lie inside their base. It never modifies the graph.
#include "compiler/ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ir_init(IrGraph *g, ParamTable *params, IrMode mode) {
  memset(g, 0, sizeof *g);
  g->params = params;
  g->mode = mode;
  g->input = g->labels = g->logits = g->aux_logits = g->loss = -1;
}

void ir_free(IrGraph *g) {
  free(g->nodes);
  free(g->tensors);
  g->nodes = NULL;
  g->tensors = NULL;
  g->n_nodes = g->n_tensors = g->cap_nodes = g->cap_tensors = 0;
}

int ir_add_tensor(IrGraph *g, IrTensorKind kind, int c, int h, int w, const char *name) {
  if (g->n_tensors == g->cap_tensors) {
    g->cap_tensors = g->cap_tensors ? 2 * g->cap_tensors : 256;
    g->tensors = xrealloc(g->tensors, sizeof *g->tensors * (size_t)g->cap_tensors);
  }
  IrTensor *t = &g->tensors[g->n_tensors];
  memset(t, 0, sizeof *t);
  size_t n = strlen(name);
  if (n >= IR_NAME_MAX) n = IR_NAME_MAX - 1;
  memcpy(t->name, name, n);
  t->kind = kind;
  t->c = c;
  t->h = h;
  t->w = w;
  t->producer = -1;
  t->view_of = -1;
  t->grad_of = -1;
  return g->n_tensors++;
}

int ir_add_node(IrGraph *g, const IrNode *node) {
  if (g->n_nodes == g->cap_nodes) {
    g->cap_nodes = g->cap_nodes ? 2 * g->cap_nodes : 256;
    g->nodes = xrealloc(g->nodes, sizeof *g->nodes * (size_t)g->cap_nodes);
  }
  NAO_ASSERT(node->n_in <= IR_MAX_IN && node->n_out <= IR_MAX_OUT && node->n_param <= IR_MAX_PARAM);
  int id = g->n_nodes++;
  g->nodes[id] = *node;
  for (int k = 0; k < node->n_out; k++) {
    NAO_ASSERT(node->out[k] >= 0 && node->out[k] < g->n_tensors);
    if (!(node->accumulate & (1 << k))) g->tensors[node->out[k]].producer = id;
  }
  return id;
}

static const char *const kind_names[IR_KIND_COUNT] = {
    [IR_INPUT] = "input",
    [IR_LABELS] = "labels",
    [IR_CONV] = "conv",
    [IR_BN] = "bn",
    [IR_RELU] = "relu",
    [IR_ADD] = "add",
    [IR_CONCAT] = "concat",
    [IR_POOL] = "pool",
    [IR_GAP] = "gap",
    [IR_LINEAR] = "linear",
    [IR_DROPOUT] = "dropout",
    [IR_DROPPATH] = "droppath",
    [IR_XENT] = "xent",
    [IR_CONV_BWD_DATA] = "conv_bwd_data",
    [IR_CONV_BWD_FILTER] = "conv_bwd_filter",
    [IR_BN_BWD] = "bn_bwd",
    [IR_RELU_BWD] = "relu_bwd",
    [IR_POOL_BWD] = "pool_bwd",
    [IR_GAP_BWD] = "gap_bwd",
    [IR_LINEAR_BWD] = "linear_bwd",
    [IR_MASK_BWD] = "mask_bwd",
    [IR_XENT_BWD] = "xent_bwd",
    [IR_ACCUM] = "accum",
};

const char *ir_kind_name(IrKind kind) {
  if ((int)kind < 0 || kind >= IR_KIND_COUNT || !kind_names[kind]) return "?";
  return kind_names[kind];
}

size_t ir_tensor_numel(const IrTensor *t) { return (size_t)t->c * (size_t)t->h * (size_t)t->w; }

long long ir_macs(const IrGraph *g, int exclude_aux) {
  long long macs = 0;
  for (int i = 0; i < g->n_fwd_nodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (exclude_aux && n->aux) continue;
    if (n->kind == IR_CONV) {
      const IrTensor *y = &g->tensors[n->out[0]];
      const IrConvAttr *c = &n->a.conv;
      macs += (long long)y->c * y->h * y->w * (c->cin / c->groups) * c->kh * c->kw;
    } else if (n->kind == IR_LINEAR) {
      const IrTensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out[0]];
      macs += (long long)ir_tensor_numel(x) * y->c;
    }
  }
  return macs;
}

// ---------------------------------------------------------------- dump

static void dump_tensor(const IrGraph *g, int t, StrBuf *out) {
  if (t < 0 || t >= g->n_tensors) {
    sb_printf(out, "t%d[?]", t);
    return;
  }
  const IrTensor *x = &g->tensors[t];
  switch (x->kind) {
    case IR_T_ACT: sb_printf(out, "t%d[%d,%d,%d]", t, x->c, x->h, x->w); break;
    case IR_T_LABELS: sb_printf(out, "t%d[labels]", t); break;
    case IR_T_STAT: sb_printf(out, "t%d[%d]stat", t, x->c); break;
    case IR_T_SCALAR: sb_printf(out, "t%d[scalar]", t); break;
  }
  if (x->view_of >= 0) sb_printf(out, "@t%d+%d", x->view_of, x->chan_offset);
}

static void dump_tensors(const IrGraph *g, const int *ts, int n, StrBuf *out) {
  for (int k = 0; k < n; k++) {
    if (k) sb_append(out, " ");
    dump_tensor(g, ts[k], out);
  }
}

static void dump_params(const IrGraph *g, const IrNode *n, StrBuf *out) {
  for (int k = 0; k < n->n_param; k++) {
    int p = n->param[k];
    sb_append(out, k ? " " : "  {");
    if (!g->params || p < 0 || p >= g->params->n) {
      sb_printf(out, "p%d?", p);
    } else {
      const ParamInfo *pi = &g->params->items[p];
      sb_printf(out, "%s[", pi->name);
      for (int d = 0; d < pi->ndim; d++) sb_printf(out, d ? ",%d" : "%d", pi->dims[d]);
      sb_append(out, "]");
    }
    if (k == n->n_param - 1) sb_append(out, "}");
  }
}

static void dump_attrs(const IrNode *n, StrBuf *out) {
  switch (n->kind) {
    case IR_CONV: {
      const IrConvAttr *a = &n->a.conv;
      sb_printf(out, "  k=%dx%d stride=%dx%d pad=%d,%d,%d,%d groups=%d", a->kh, a->kw, a->sh,
                a->sw, a->pt, a->pl, a->pb, a->pr, a->groups);
      break;
    }
    case IR_POOL: {
      const IrPoolAttr *a = &n->a.pool;
      sb_printf(out, "  %s k=%dx%d stride=%dx%d pad=%d,%d,%d,%d %s", a->is_max ? "max" : "avg",
                a->kh, a->kw, a->sh, a->sw, a->pt, a->pl, a->pb, a->pr,
                a->pad_counted ? "pad-counted" : "pad-ignored");
      break;
    }
    case IR_BN:
      sb_printf(out, "  eps=%g momentum=%g %s%s", (double)n->a.bn.eps, (double)n->a.bn.momentum,
                n->a.bn.batch_stats ? "batch-stats" : "running-stats",
                n->a.bn.update_running ? " update-running" : "");
      break;
    case IR_DROPOUT: sb_printf(out, "  keep=%g", (double)n->a.drop.keep); break;
    case IR_DROPPATH:
      sb_printf(out, "  keep=%g cell=%d/%d", (double)n->a.drop.keep, n->a.drop.cell,
                n->a.drop.n_cells);
      break;
    case IR_XENT:
      sb_printf(out, "  smoothing=%g weight=%g", (double)n->a.xent.smoothing,
                (double)n->a.xent.weight);
      break;
    default: break;
  }
  if (n->aux) sb_append(out, " aux");
  if (n->fwd >= 0) sb_printf(out, " fwd=%d", n->fwd);
  if (n->accumulate) sb_printf(out, " accumulate=0x%x", (unsigned)n->accumulate);
}

void ir_dump(const IrGraph *g, StrBuf *out) {
  sb_printf(out, "# ir %s%s: %d nodes (%d forward), %d tensors, %d parameters\n",
            g->mode == IR_MODE_TRAIN ? "train" : "eval", g->has_loss ? " with loss" : "",
            g->n_nodes, g->n_fwd_nodes, g->n_tensors, g->params ? g->params->n : 0);
  sb_printf(out, "# input=t%d labels=t%d logits=t%d aux_logits=t%d loss=t%d\n", g->input,
            g->labels, g->logits, g->aux_logits, g->loss);
  for (int i = 0; i < g->n_nodes; i++) {
    const IrNode *n = &g->nodes[i];
    sb_printf(out, "%5d %-15s %s  ", i, ir_kind_name(n->kind), n->name);
    dump_tensors(g, n->in, n->n_in, out);
    sb_append(out, n->n_in ? " -> " : "-> ");
    dump_tensors(g, n->out, n->n_out, out);
    dump_params(g, n, out);
    dump_attrs(n, out);
    sb_append(out, "\n");
  }
}

// ---------------------------------------------------------------- verify
// Every check of ir_verify names the node (index, kind, name) or the tensor
// and says what the contract of ir.h wants.

typedef struct {
  const IrGraph *g;
  char *err;
  size_t errlen;
  int node;        // the node being checked, -1 for graph-level checks
  int *ready;      // per tensor: 1 once written (by its producer, or all its views)
} Verify;

static int vfail(Verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vfail(Verify *v, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (v->node >= 0) {
    const IrNode *n = &v->g->nodes[v->node];
    snprintf(v->err, v->errlen, "node %d (%s %s): %s", v->node, ir_kind_name(n->kind), n->name,
             msg);
  } else {
    snprintf(v->err, v->errlen, "%s", msg);
  }
  return -1;
}

static const IrTensor *vt(Verify *v, int t) { return &v->g->tensors[t]; }

static int same_shape(const IrTensor *a, const IrTensor *b) {
  return a->kind == b->kind && a->c == b->c && a->h == b->h && a->w == b->w;
}

#define VCHECK(cond, ...)                    \
  do {                                       \
    if (!(cond)) return vfail(v, __VA_ARGS__); \
  } while (0)

static int verify_tensor(Verify *v, int t) {
  const IrGraph *g = v->g;
  const IrTensor *x = &g->tensors[t];
  const char *nm = x->name;
  VCHECK(x->kind >= IR_T_ACT && x->kind <= IR_T_SCALAR, "tensor %d (%s): unknown kind", t, nm);
  VCHECK(x->c >= 1 && x->h >= 1 && x->w >= 1, "tensor %d (%s): shape %dx%dx%d", t, nm, x->c, x->h,
         x->w);
  if (x->kind == IR_T_LABELS || x->kind == IR_T_SCALAR)
    VCHECK(x->c == 1 && x->h == 1 && x->w == 1, "tensor %d (%s): labels and scalars are 1x1x1", t, nm);
  if (x->kind == IR_T_STAT) VCHECK(x->h == 1 && x->w == 1, "tensor %d (%s): statistics are (C)", t, nm);
  VCHECK(x->producer >= -1 && x->producer < g->n_nodes, "tensor %d (%s): producer %d out of range",
         t, nm, x->producer);
  VCHECK(x->grad_of >= -1 && x->grad_of < g->n_tensors, "tensor %d (%s): grad_of %d out of range",
         t, nm, x->grad_of);
  if (x->view_of < 0) return 0;
  VCHECK(x->view_of < g->n_tensors && x->view_of != t, "tensor %d (%s): view_of %d out of range",
         t, nm, x->view_of);
  const IrTensor *b = &g->tensors[x->view_of];
  VCHECK(b->view_of < 0, "tensor %d (%s): a view of a view", t, nm);
  VCHECK(x->kind == IR_T_ACT && b->kind == IR_T_ACT, "tensor %d (%s): only activations have views",
         t, nm);
  VCHECK(b->h == x->h && b->w == x->w && x->chan_offset >= 0 && x->chan_offset + x->c <= b->c,
         "tensor %d (%s): channels %d..%d of %dx%dx%d do not fit %s (%dx%dx%d)", t, nm,
         x->chan_offset, x->chan_offset + x->c - 1, x->c, x->h, x->w, b->name, b->c, b->h, b->w);
  return 0;
}

static int verify_well_known(Verify *v) {
  const IrGraph *g = v->g;
  struct {
    const char *what;
    int t;
    IrTensorKind kind;
  } wk[] = {{"input", g->input, IR_T_ACT},    {"labels", g->labels, IR_T_LABELS},
            {"logits", g->logits, IR_T_ACT},  {"aux_logits", g->aux_logits, IR_T_ACT},
            {"loss", g->loss, IR_T_SCALAR}};
  for (size_t k = 0; k < sizeof wk / sizeof wk[0]; k++) {
    if (wk[k].t == -1) continue;
    VCHECK(wk[k].t >= 0 && wk[k].t < g->n_tensors, "graph: %s tensor %d out of range", wk[k].what,
           wk[k].t);
    VCHECK(g->tensors[wk[k].t].kind == wk[k].kind, "graph: %s tensor %d has the wrong kind",
           wk[k].what, wk[k].t);
  }
  if (g->has_loss)
    VCHECK(g->loss >= 0 && g->labels >= 0, "graph: has_loss without a loss and labels tensor");
  return 0;
}

// Parameter slot k: `trainable`, ndim dims (a dim < 0 matches anything).
static int vparam(Verify *v, const IrNode *n, int k, int trainable, int ndim, int d0, int d1,
                  int d2, int d3) {
  const ParamTable *pt = v->g->params;
  int p = n->param[k];
  VCHECK(pt && p >= 0 && p < pt->n, "param %d: index %d out of range", k, p);
  const ParamInfo *pi = &pt->items[p];
  int want[4] = {d0, d1, d2, d3};
  VCHECK(pi->trainable == trainable, "param %d (%s): expected a %s", k, pi->name,
         trainable ? "trainable parameter" : "buffer");
  VCHECK(pi->ndim == ndim, "param %d (%s): %d dims, expected %d", k, pi->name, pi->ndim, ndim);
  for (int d = 0; d < ndim; d++)
    VCHECK(want[d] < 0 || pi->dims[d] == want[d], "param %d (%s): dim %d is %d, expected %d", k,
           pi->name, d, pi->dims[d], want[d]);
  return 0;
}

static int counts(Verify *v, const IrNode *n, int n_in, int n_param, int n_out) {
  VCHECK(n->n_in == n_in && n->n_param == n_param && n->n_out == n_out,
         "has %d inputs, %d params, %d outputs; the contract is %d, %d, %d", n->n_in, n->n_param,
         n->n_out, n_in, n_param, n_out);
  return 0;
}

static int window_ok(int in, int k, int s, int pa, int pb, int out) {
  int span = in + pa + pb - k;
  return k >= 1 && s >= 1 && span >= 0 && span / s + 1 == out;
}

static int verify_conv(Verify *v, const IrNode *n) {
  if (counts(v, n, 1, 1, 1)) return -1;
  const IrConvAttr *a = &n->a.conv;
  const IrTensor *x = vt(v, n->in[0]), *y = vt(v, n->out[0]);
  VCHECK(x->kind == IR_T_ACT && y->kind == IR_T_ACT, "input and output must be activations");
  VCHECK(a->groups >= 1 && a->cin % a->groups == 0 && a->cout % a->groups == 0,
         "groups %d do not divide %d -> %d channels", a->groups, a->cin, a->cout);
  VCHECK(x->c == a->cin && y->c == a->cout, "channels %d -> %d, attrs say %d -> %d", x->c, y->c,
         a->cin, a->cout);
  VCHECK(window_ok(x->h, a->kh, a->sh, a->pt, a->pb, y->h) &&
             window_ok(x->w, a->kw, a->sw, a->pl, a->pr, y->w),
         "%dx%d -> %dx%d does not match k=%dx%d stride=%dx%d pad=%d,%d,%d,%d", x->h, x->w, y->h,
         y->w, a->kh, a->kw, a->sh, a->sw, a->pt, a->pl, a->pb, a->pr);
  return vparam(v, n, 0, 1, 4, a->cout, a->cin / a->groups, a->kh, a->kw);
}

static int verify_pool(Verify *v, const IrNode *n) {
  if (counts(v, n, 1, 0, 1)) return -1;
  const IrPoolAttr *a = &n->a.pool;
  const IrTensor *x = vt(v, n->in[0]), *y = vt(v, n->out[0]);
  VCHECK(x->kind == IR_T_ACT && y->kind == IR_T_ACT && x->c == y->c, "pools keep the channels");
  VCHECK((a->is_max == 0 || a->is_max == 1) && (a->pad_counted == 0 || a->pad_counted == 1),
         "is_max and pad_counted are 0 or 1");
  VCHECK(a->pt >= 0 && a->pl >= 0 && a->pb >= 0 && a->pr >= 0 && a->pt < a->kh && a->pb < a->kh &&
             a->pl < a->kw && a->pr < a->kw,
         "padding %d,%d,%d,%d must be in 0..kernel-1 (every window meets the image)", a->pt, a->pl,
         a->pb, a->pr);
  VCHECK(window_ok(x->h, a->kh, a->sh, a->pt, a->pb, y->h) &&
             window_ok(x->w, a->kw, a->sw, a->pl, a->pr, y->w),
         "%dx%d -> %dx%d does not match k=%dx%d stride=%dx%d pad=%d,%d,%d,%d", x->h, x->w, y->h,
         y->w, a->kh, a->kw, a->sh, a->sw, a->pt, a->pl, a->pb, a->pr);
  return 0;
}

static int verify_bn(Verify *v, const IrNode *n) {
  const IrBnAttr *a = &n->a.bn;
  if (counts(v, n, 1, 4, a->batch_stats ? 3 : 1)) return -1;
  const IrTensor *x = vt(v, n->in[0]), *y = vt(v, n->out[0]);
  VCHECK(x->kind == IR_T_ACT && same_shape(x, y), "output must have the input's shape");
  VCHECK(a->eps > 0 && a->momentum >= 0 && a->momentum <= 1, "eps %g, momentum %g", (double)a->eps,
         (double)a->momentum);
  VCHECK(!a->update_running || a->batch_stats, "update_running needs batch_stats");
  for (int k = 1; k < n->n_out; k++) {
    const IrTensor *s = vt(v, n->out[k]);
    VCHECK(s->kind == IR_T_STAT && s->c == x->c, "output %d must be statistics of %d channels", k,
           x->c);
  }
  for (int k = 0; k < 4; k++)
    if (vparam(v, n, k, k < 2, 1, x->c, 0, 0, 0)) return -1;
  return 0;
}

static int verify_add(Verify *v, const IrNode *n) {
  VCHECK(n->n_in >= 1 && n->n_param == 0 && n->n_out == 1, "add takes n >= 1 inputs, one output");
  const IrTensor *y = vt(v, n->out[0]);
  VCHECK(y->kind == IR_T_ACT || y->kind == IR_T_SCALAR, "adds activations or scalars");
  for (int k = 0; k < n->n_in; k++)
    VCHECK(same_shape(vt(v, n->in[k]), y), "input %d's shape differs from the output's", k);
  return 0;
}

static int verify_concat(Verify *v, const IrNode *n) {
  VCHECK(n->n_in >= 1 && n->n_param == 0 && n->n_out == 1, "concat takes n >= 1 inputs, one output");
  const IrTensor *y = vt(v, n->out[0]);
  int c = 0;
  for (int k = 0; k < n->n_in; k++) {
    const IrTensor *x = vt(v, n->in[k]);
    VCHECK(x->kind == IR_T_ACT && x->h == y->h && x->w == y->w, "input %d is not %dx%d", k, y->h,
           y->w);
    c += x->c;
  }
  VCHECK(y->kind == IR_T_ACT && y->c == c, "output has %d channels, the inputs %d", y->c, c);
  return 0;
}

static int verify_unary(Verify *v, const IrNode *n) {
  if (counts(v, n, 1, 0, 1)) return -1;
  const IrTensor *x = vt(v, n->in[0]);
  VCHECK(x->kind == IR_T_ACT && same_shape(x, vt(v, n->out[0])),
         "output must have the input's shape");
  return 0;
}

static int verify_gap(Verify *v, const IrNode *n) {
  if (counts(v, n, 1, 0, 1)) return -1;
  const IrTensor *x = vt(v, n->in[0]), *y = vt(v, n->out[0]);
  VCHECK(x->kind == IR_T_ACT && y->kind == IR_T_ACT && y->c == x->c && y->h == 1 && y->w == 1,
         "(C,H,W) -> (C,1,1)");
  return 0;
}

static int verify_linear(Verify *v, const IrNode *n) {
  if (counts(v, n, 1, 2, 1)) return -1;
  const IrTensor *x = vt(v, n->in[0]), *y = vt(v, n->out[0]);
  VCHECK(x->kind == IR_T_ACT && y->kind == IR_T_ACT && y->h == 1 && y->w == 1,
         "(C,H,W) -> (K,1,1)");
  if (vparam(v, n, 0, 1, 2, y->c, (int)ir_tensor_numel(x), 0, 0)) return -1;
  return vparam(v, n, 1, 1, 1, y->c, 0, 0, 0);
}

static int verify_drop(Verify *v, const IrNode *n) {
  if (counts(v, n, 1, 0, 2)) return -1;
  const IrDropAttr *a = &n->a.drop;
  const IrTensor *x = vt(v, n->in[0]), *y = vt(v, n->out[0]), *m = vt(v, n->out[1]);
  VCHECK(a->keep > 0 && a->keep <= 1, "keep %g is not in (0, 1]", (double)a->keep);
  VCHECK(x->kind == IR_T_ACT && same_shape(x, y), "output must have the input's shape");
  if (n->kind == IR_DROPOUT) {
    VCHECK(same_shape(x, m), "the dropout mask has the input's shape");
  } else {
    VCHECK(m->kind == IR_T_ACT && m->c == 1 && m->h == 1 && m->w == 1,
           "the drop-path mask is (1,1,1) per sample");
    VCHECK(a->n_cells >= 1 && a->cell >= 0 && a->cell < a->n_cells, "cell %d of %d", a->cell,
           a->n_cells);
  }
  return 0;
}

static int verify_xent(Verify *v, const IrNode *n) {
  if (counts(v, n, 2, 0, 2)) return -1;
  const IrTensor *z = vt(v, n->in[0]), *l = vt(v, n->in[1]);
  const IrTensor *loss = vt(v, n->out[0]), *p = vt(v, n->out[1]);
  VCHECK(z->kind == IR_T_ACT && z->h == 1 && z->w == 1, "logits are (K,1,1)");
  VCHECK(l->kind == IR_T_LABELS, "input 1 must be the labels");
  VCHECK(loss->kind == IR_T_SCALAR, "output 0 is the scalar loss");
  VCHECK(same_shape(p, z), "output 1 (softmax) has the logits' shape");
  VCHECK(n->a.xent.smoothing >= 0 && n->a.xent.smoothing < 1, "smoothing %g is not in [0, 1)",
         (double)n->a.xent.smoothing);
  return 0;
}

static int verify_source(Verify *v, const IrNode *n, IrTensorKind kind) {
  if (counts(v, n, 0, 0, 1)) return -1;
  VCHECK(vt(v, n->out[0])->kind == kind, "output has the wrong kind");
  return 0;
}

// ---------------------------------------------------------------- verify: backward

// The forward node a backward node serves, of one of two kinds.
static const IrNode *vfwd(Verify *v, const IrNode *n, IrKind k1, IrKind k2) {
  if (n->fwd < 0 || n->fwd >= v->g->n_fwd_nodes) return NULL;
  const IrNode *f = &v->g->nodes[n->fwd];
  return f->kind == k1 || f->kind == k2 ? f : NULL;
}

#define VFWD(f, n, k1, k2)                                                              \
  const IrNode *f = vfwd(v, n, k1, k2);                                                 \
  do {                                                                                  \
    if (!f) return vfail(v, "fwd %d is not a forward %s node", n->fwd, ir_kind_name(k1)); \
  } while (0)

static int like(Verify *v, int t, int ref, const char *what) {
  VCHECK(same_shape(vt(v, t), vt(v, ref)), "%s must have the shape of %s", what,
         v->g->tensors[ref].name);
  return 0;
}

static int same_params(Verify *v, const IrNode *n, const IrNode *f) {
  VCHECK(n->n_param == f->n_param, "uses %d params, its forward node %d", n->n_param, f->n_param);
  for (int k = 0; k < n->n_param; k++)
    VCHECK(n->param[k] == f->param[k], "param %d differs from its forward node's", k);
  return 0;
}

static int verify_backward(Verify *v, const IrNode *n) {
  switch (n->kind) {
    case IR_CONV_BWD_DATA: {
      VFWD(f, n, IR_CONV, IR_CONV);
      if (counts(v, n, 1, 1, 1) || same_params(v, n, f)) return -1;
      return like(v, n->in[0], f->out[0], "dy") || like(v, n->out[0], f->in[0], "dx");
    }
    case IR_CONV_BWD_FILTER: {
      VFWD(f, n, IR_CONV, IR_CONV);
      if (counts(v, n, 2, 1, 0) || same_params(v, n, f)) return -1;
      return like(v, n->in[0], f->in[0], "x") || like(v, n->in[1], f->out[0], "dy");
    }
    case IR_BN_BWD: {
      VFWD(f, n, IR_BN, IR_BN);
      if (counts(v, n, f->a.bn.batch_stats ? 4 : 2, 4, 1) || same_params(v, n, f)) return -1;
      if (like(v, n->in[0], f->in[0], "x") || like(v, n->in[1], f->out[0], "dy") ||
          like(v, n->out[0], f->in[0], "dx"))
        return -1;
      if (f->a.bn.batch_stats)
        return like(v, n->in[2], f->out[1], "mean") || like(v, n->in[3], f->out[2], "invstd");
      return 0;
    }
    case IR_RELU_BWD: {
      VFWD(f, n, IR_RELU, IR_RELU);
      if (counts(v, n, 2, 0, 1)) return -1;
      return like(v, n->in[0], f->out[0], "y") || like(v, n->in[1], f->out[0], "dy") ||
             like(v, n->out[0], f->in[0], "dx");
    }
    case IR_POOL_BWD: {
      VFWD(f, n, IR_POOL, IR_POOL);
      if (counts(v, n, 3, 0, 1)) return -1;
      return like(v, n->in[0], f->in[0], "x") || like(v, n->in[1], f->out[0], "y") ||
             like(v, n->in[2], f->out[0], "dy") || like(v, n->out[0], f->in[0], "dx");
    }
    case IR_GAP_BWD: {
      VFWD(f, n, IR_GAP, IR_GAP);
      if (counts(v, n, 1, 0, 1)) return -1;
      return like(v, n->in[0], f->out[0], "dy") || like(v, n->out[0], f->in[0], "dx");
    }
    case IR_LINEAR_BWD: {
      VFWD(f, n, IR_LINEAR, IR_LINEAR);
      VCHECK(n->n_in == 2 && (n->n_out == 0 || n->n_out == 1),
             "linear_bwd takes x, dy and gives [dx]");
      if (same_params(v, n, f) || like(v, n->in[0], f->in[0], "x") ||
          like(v, n->in[1], f->out[0], "dy"))
        return -1;
      return n->n_out ? like(v, n->out[0], f->in[0], "dx") : 0;
    }
    case IR_MASK_BWD: {
      VFWD(f, n, IR_DROPOUT, IR_DROPPATH);
      if (counts(v, n, 2, 0, 1)) return -1;
      return like(v, n->in[0], f->out[1], "mask") || like(v, n->in[1], f->out[0], "dy") ||
             like(v, n->out[0], f->in[0], "dx");
    }
    case IR_XENT_BWD: {
      VFWD(f, n, IR_XENT, IR_XENT);
      if (counts(v, n, 2, 0, 1)) return -1;
      return like(v, n->in[0], f->out[1], "softmax") || like(v, n->in[1], f->in[1], "labels") ||
             like(v, n->out[0], f->in[0], "dlogits");
    }
    case IR_ACCUM:
      if (counts(v, n, 1, 0, 1)) return -1;
      return like(v, n->out[0], n->in[0], "the accumulated gradient");
    default: return vfail(v, "not a backward kind");
  }
}

// ---------------------------------------------------------------- verify: per node

static int is_backward(IrKind k) { return k >= IR_CONV_BWD_DATA && k < IR_KIND_COUNT; }
static int writes_param_grads(IrKind k) {
  return k == IR_CONV_BWD_FILTER || k == IR_BN_BWD || k == IR_LINEAR_BWD;
}

static int verify_kind(Verify *v, const IrNode *n) {
  switch (n->kind) {
    case IR_INPUT: return verify_source(v, n, IR_T_ACT);
    case IR_LABELS: return verify_source(v, n, IR_T_LABELS);
    case IR_CONV: return verify_conv(v, n);
    case IR_BN: return verify_bn(v, n);
    case IR_RELU: return verify_unary(v, n);
    case IR_ADD: return verify_add(v, n);
    case IR_CONCAT: return verify_concat(v, n);
    case IR_POOL: return verify_pool(v, n);
    case IR_GAP: return verify_gap(v, n);
    case IR_LINEAR: return verify_linear(v, n);
    case IR_DROPOUT:
    case IR_DROPPATH: return verify_drop(v, n);
    case IR_XENT: return verify_xent(v, n);
    default: return verify_backward(v, n);
  }
}

// Counts, indices, order (inputs written before), single writers, flags.
static int verify_wiring(Verify *v, const IrNode *n, int i) {
  const IrGraph *g = v->g;
  VCHECK(n->kind >= 0 && n->kind < IR_KIND_COUNT, "unknown kind %d", (int)n->kind);
  VCHECK(n->n_in >= 0 && n->n_in <= IR_MAX_IN && n->n_out >= 0 && n->n_out <= IR_MAX_OUT &&
             n->n_param >= 0 && n->n_param <= IR_MAX_PARAM,
         "counts out of range");
  if (is_backward(n->kind))
    VCHECK(i >= g->n_fwd_nodes, "a backward node inside the forward pass (n_fwd_nodes %d)",
           g->n_fwd_nodes);
  else
    VCHECK(n->fwd == -1, "a forward node with fwd = %d", n->fwd);
  if (n->kind == IR_INPUT || n->kind == IR_LABELS)
    VCHECK(i < g->n_fwd_nodes, "a source node after the forward pass");
  for (int k = 0; k < n->n_in; k++) {
    int t = n->in[k];
    VCHECK(t >= 0 && t < g->n_tensors, "input %d: tensor %d out of range", k, t);
    VCHECK(v->ready[t], "input %d: tensor %d (%s) is read before it is written", k, t,
           g->tensors[t].name);
  }
  int allowed = (1 << n->n_out) - 1;
  if (writes_param_grads(n->kind)) allowed |= ((1 << n->n_param) - 1) << IR_MAX_OUT;
  VCHECK((n->accumulate & ~allowed) == 0, "accumulate flags 0x%x name no output", (unsigned)n->accumulate);
  for (int k = 0; k < n->n_out; k++) {
    int t = n->out[k];
    VCHECK(t >= 0 && t < g->n_tensors, "output %d: tensor %d out of range", k, t);
    for (int j = 0; j < k; j++) VCHECK(n->out[j] != t, "writes tensor %d twice", t);
    if (n->accumulate & (1 << k))
      VCHECK(v->ready[t], "output %d: adds to tensor %d (%s) before it is written", k, t,
             g->tensors[t].name);
    else
      VCHECK(g->tensors[t].producer == i, "output %d: tensor %d (%s) has producer %d", k, t,
             g->tensors[t].name, g->tensors[t].producer);
  }
  return 0;
}

// After node i: its outputs are written; a view base without a producer of
// its own is written once all its views are (views_left counts down).
static void mark_ready(Verify *v, const IrNode *n, int *views_left) {
  for (int k = 0; k < n->n_out; k++) {
    int t = n->out[k];
    v->ready[t] = 1;
    int b = v->g->tensors[t].view_of;
    if (b >= 0 && views_left[b] > 0 && --views_left[b] == 0) v->ready[b] = 1;
  }
}

int ir_verify(const IrGraph *g, char *err, size_t errlen) {
  Verify v = {g, err, errlen, -1, NULL};
  if (g->n_nodes < 0 || g->n_tensors < 0 || g->n_fwd_nodes < 0 || g->n_fwd_nodes > g->n_nodes)
    return vfail(&v, "graph: counts out of range (%d nodes, %d forward, %d tensors)", g->n_nodes,
                 g->n_fwd_nodes, g->n_tensors);
  for (int t = 0; t < g->n_tensors; t++)
    if (verify_tensor(&v, t)) return -1;
  if (verify_well_known(&v)) return -1;
  v.ready = xcalloc((size_t)g->n_tensors + 1, sizeof(int));
  int *views_left = xcalloc((size_t)g->n_tensors + 1, sizeof(int));
  for (int t = 0; t < g->n_tensors; t++)
    if (g->tensors[t].view_of >= 0 && g->tensors[g->tensors[t].view_of].producer < 0)
      views_left[g->tensors[t].view_of]++;
  int rc = 0;
  for (int i = 0; i < g->n_nodes && rc == 0; i++) {
    v.node = i;
    const IrNode *n = &g->nodes[i];
    rc = verify_wiring(&v, n, i);
    if (rc == 0) rc = verify_kind(&v, n);
    if (rc == 0) mark_ready(&v, n, views_left);
  }
  free(v.ready);
  free(views_left);
  return rc ? -1 : 0;  // checks chained with || give 1
}
