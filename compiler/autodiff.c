// compiler/autodiff.c — reverse mode over the IR (autodiff.h).
//
// Two analyses over the forward nodes, then one backward sweep:
//  - dep[t]:  t depends on a trainable parameter (forward sweep);
//  - live[t]: t reaches the loss through differentiable edges (reverse sweep,
//    seeded by the XENT nodes whose loss output is summed into g->loss).
// need[t] = dep[t] && live[t]: exactly the activation gradients computed. A
// node is "active" (gets backward nodes) when its output 0 is needed.
// n_contrib[t] counts the backward contributions t will receive (one per
// active consumer slot), so the sweep knows, before the first one arrives,
// whether a tensor gets a single contribution (which may then alias an
// existing gradient) or several (the first writes, the others add).
//
// The sweep visits forward nodes in reverse index order. Every consumer of a
// tensor comes after its producer, so when a node is visited the gradient of
// its output is complete: nothing writes it any more (asserted).
//
// Which backward kinds add into their output (accumulate bit 0): all of them
// (conv_bwd_data, bn_bwd, relu_bwd, pool_bwd, gap_bwd, linear_bwd, mask_bwd,
// xent_bwd, accum). A contribution that is an existing tensor (the output
// gradient passed through an add or an accum copy, a channel slice of a concat
// gradient) goes through an IR_ACCUM node, unless it is the tensor's only
// contribution: then the gradient is a view of it (no copy, see the safety
// argument in docs/autodiff-and-plan.md).
#include "compiler/autodiff.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  IrGraph *g;
  int n_fwd;           // forward nodes
  int nt;              // tensors before the sweep (the forward tensors)
  int *cons_start;     // CSR of consumers over forward nodes: tensor -> (node, slot)
  int *cons_node;
  int *cons_slot;
  unsigned char *dep;
  unsigned char *live;
  unsigned char *xent_on;  // per forward node: an XENT whose loss is in g->loss
  int *n_contrib;
  int *n_recv;
  int *grad;           // gradient tensor of each forward tensor, -1 while none
  unsigned char *pgrad;  // per parameter: gradient slot written once already
  char *err;
  size_t errlen;
} Ad;

static int ad_fail(Ad *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ad_fail(Ad *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->err, a->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

// ---------------------------------------------------------------- views

int ir_root(const IrGraph *g, int t) {
  while (g->tensors[t].view_of >= 0) t = g->tensors[t].view_of;
  return t;
}

int ir_root_offset(const IrGraph *g, int t) {
  int off = 0;
  while (g->tensors[t].view_of >= 0) {
    off += g->tensors[t].chan_offset;
    t = g->tensors[t].view_of;
  }
  return off;
}

static int check_node_indices(const IrGraph *g, int i, char *err, size_t errlen) {
  const IrNode *n = &g->nodes[i];
  int bad = n->n_in < 0 || n->n_in > IR_MAX_IN || n->n_out < 0 || n->n_out > IR_MAX_OUT ||
            n->n_param < 0 || n->n_param > IR_MAX_PARAM || (int)n->kind < 0 ||
            n->kind >= IR_KIND_COUNT;
  for (int k = 0; !bad && k < n->n_in; k++) bad = n->in[k] < 0 || n->in[k] >= g->n_tensors;
  for (int k = 0; !bad && k < n->n_out; k++) bad = n->out[k] < 0 || n->out[k] >= g->n_tensors;
  for (int k = 0; !bad && k < n->n_param; k++)
    bad = !g->params || n->param[k] < 0 || n->param[k] >= g->params->n;
  if (bad) snprintf(err, errlen, "node %d (%s) has a bad kind, count or index", i, n->name);
  return bad ? -1 : 0;
}

int ir_check_indices(const IrGraph *g, char *err, size_t errlen) {
  if (g->n_fwd_nodes < 0 || g->n_fwd_nodes > g->n_nodes) {
    snprintf(err, errlen, "n_fwd_nodes %d is not within the %d nodes", g->n_fwd_nodes, g->n_nodes);
    return -1;
  }
  for (int i = 0; i < g->n_nodes; i++)
    if (check_node_indices(g, i, err, errlen) < 0) return -1;
  for (int t = 0; t < g->n_tensors; t++) {
    int v = t, steps = 0;
    while (v >= 0 && v < g->n_tensors && g->tensors[v].view_of >= 0 && steps++ <= g->n_tensors)
      v = g->tensors[v].view_of;
    if (v < 0 || v >= g->n_tensors || steps > g->n_tensors) {
      snprintf(err, errlen, "tensor %d (%s) is a view of a bad tensor or of itself", t,
               g->tensors[t].name);
      return -1;
    }
  }
  return 0;
}

// ---------------------------------------------------------------- analyses

// Inputs through which a forward kind passes a gradient.
static int diff_input(const IrNode *n, int k) {
  switch (n->kind) {
  case IR_ADD:
  case IR_CONCAT: return 1;
  case IR_CONV:
  case IR_BN:
  case IR_RELU:
  case IR_POOL:
  case IR_GAP:
  case IR_LINEAR:
  case IR_DROPOUT:
  case IR_DROPPATH:
  case IR_XENT:
  case IR_ACCUM: return k == 0;
  default: return 0;
  }
}

static int trainable(const IrGraph *g, int p) { return g->params->items[p].trainable; }

static int has_trainable_param(const IrGraph *g, const IrNode *n) {
  if (n->kind != IR_CONV && n->kind != IR_BN && n->kind != IR_LINEAR) return 0;
  int np = n->kind == IR_BN ? 2 : n->n_param;  // BN: mean/var are buffers
  for (int k = 0; k < np; k++)
    if (trainable(g, n->param[k])) return 1;
  return 0;
}

static void build_consumers(Ad *a) {
  const IrGraph *g = a->g;
  a->cons_start = xcalloc((size_t)a->nt + 1, sizeof(int));
  int total = 0;
  for (int i = 0; i < a->n_fwd; i++) total += g->nodes[i].n_in;
  a->cons_node = xmalloc(sizeof(int) * (size_t)(total ? total : 1));
  a->cons_slot = xmalloc(sizeof(int) * (size_t)(total ? total : 1));
  for (int i = 0; i < a->n_fwd; i++)
    for (int k = 0; k < g->nodes[i].n_in; k++) a->cons_start[g->nodes[i].in[k] + 1]++;
  for (int t = 0; t < a->nt; t++) a->cons_start[t + 1] += a->cons_start[t];
  int *fill = xcalloc((size_t)a->nt, sizeof(int));
  for (int i = 0; i < a->n_fwd; i++)
    for (int k = 0; k < g->nodes[i].n_in; k++) {
      int t = g->nodes[i].in[k];
      int at = a->cons_start[t] + fill[t]++;
      a->cons_node[at] = i;
      a->cons_slot[at] = k;
    }
  free(fill);
}

// 1 when the loss output t of an XENT is summed into g->loss with weight 1:
// t is g->loss, or every consumer of t is an ADD of losses, taking t once,
// whose output is summed into g->loss in the same way.
static int loss_path(Ad *a, int t, int depth) {
  const IrGraph *g = a->g;
  if (t == g->loss) return 1;
  if (depth > 64) return 0;
  int n_cons = a->cons_start[t + 1] - a->cons_start[t];
  if (n_cons == 0) return 0;
  for (int c = a->cons_start[t]; c < a->cons_start[t + 1]; c++) {
    const IrNode *n = &g->nodes[a->cons_node[c]];
    if (n->kind != IR_ADD || g->tensors[n->out[0]].kind != IR_T_SCALAR) return -1;
    int seen = 0;
    for (int k = 0; k < n->n_in; k++) seen += n->in[k] == t;
    if (seen != 1) return -1;
    int r = loss_path(a, n->out[0], depth + 1);
    if (r != 1) return r == 0 ? -1 : r;
  }
  return 1;
}

static int analyse(Ad *a) {
  IrGraph *g = a->g;
  for (int i = 0; i < a->n_fwd; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->kind > IR_XENT && n->kind != IR_ACCUM)
      return ad_fail(a, "autodiff: node %s: a backward node among the forward nodes", n->name);
    if (n->kind == IR_ACCUM && (n->accumulate & 1))
      return ad_fail(a, "autodiff: node %s: a forward accum must copy (no accumulate bit)",
                     n->name);
    int d = has_trainable_param(g, n);
    for (int k = 0; k < n->n_in; k++)
      if (diff_input(n, k) && a->dep[n->in[k]]) d = 1;
    if (d && n->n_out > 0 && n->kind != IR_INPUT && n->kind != IR_LABELS) a->dep[n->out[0]] = 1;
  }
  int any = 0;
  for (int i = 0; i < a->n_fwd; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->kind != IR_XENT) continue;
    if (n->n_out != 2) return ad_fail(a, "autodiff: xent %s must output loss and softmax", n->name);
    int r = loss_path(a, n->out[0], 0);
    if (r < 0)
      return ad_fail(a, "autodiff: the loss of xent %s reaches g->loss through a node "
                        "other than a sum of losses", n->name);
    a->xent_on[i] = (unsigned char)r;
    any |= r;
  }
  if (!any) return ad_fail(a, "autodiff: no cross-entropy loss is summed into the loss");
  for (int i = a->n_fwd - 1; i >= 0; i--) {
    const IrNode *n = &g->nodes[i];
    int active = n->kind == IR_XENT ? a->xent_on[i] : (n->n_out > 0 && a->live[n->out[0]]);
    if (!active || (g->tensors[n->out[0]].kind == IR_T_SCALAR && n->kind != IR_XENT)) continue;
    for (int k = 0; k < n->n_in; k++)
      if (diff_input(n, k)) a->live[n->in[k]] = 1;
  }
  return 0;
}

static int need(const Ad *a, int t) {
  return a->dep[t] && a->live[t] && a->g->tensors[t].kind == IR_T_ACT;
}

// A node gets backward nodes when the gradient of its output 0 is needed
// (an XENT: when it is in the loss and its logits need a gradient).
static int active(const Ad *a, int i) {
  const IrNode *n = &a->g->nodes[i];
  if (n->kind == IR_XENT) return a->xent_on[i] && need(a, n->in[0]);
  if (n->kind == IR_INPUT || n->kind == IR_LABELS || n->n_out == 0) return 0;
  return need(a, n->out[0]);
}

static void count_contributions(Ad *a) {
  for (int i = 0; i < a->n_fwd; i++) {
    if (!active(a, i)) continue;
    const IrNode *n = &a->g->nodes[i];
    for (int k = 0; k < n->n_in; k++)
      if (diff_input(n, k) && need(a, n->in[k])) a->n_contrib[n->in[k]]++;
  }
}

// ---------------------------------------------------------------- emission helpers

static IrNode bwd_node(const IrNode *f, int fwd, IrKind kind) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = kind;
  memcpy(n.name, f->name, sizeof n.name);
  n.fwd = fwd;
  n.aux = f->aux;
  n.a = f->a;  // attributes travel with the backward node (conv, pool, bn, xent)
  return n;
}

static int new_tensor_like(Ad *a, int t, const char *prefix, const char *suffix) {
  IrGraph *g = a->g;
  char name[IR_NAME_MAX * 2];
  snprintf(name, sizeof name, "%s%s%s", prefix, g->tensors[t].name, suffix);
  const IrTensor *src = &g->tensors[t];
  return ir_add_tensor(g, src->kind, src->c, src->h, src->w, name);
}

// A view of channels [off, off + c) of tensor `of` (flattened to its root),
// shaped like forward tensor t.
static int new_view(Ad *a, int of, int off, int t, const char *prefix, const char *suffix) {
  IrGraph *g = a->g;
  int v = new_tensor_like(a, t, prefix, suffix);
  g->tensors[v].view_of = ir_root(g, of);
  g->tensors[v].chan_offset = ir_root_offset(g, of) + off;
  return v;
}

// The node's output 0 is a contribution to t's gradient: it writes the
// gradient (creating it) or adds to it.
static void route_out(Ad *a, IrNode *bn, int t) {
  if (a->grad[t] < 0) {
    a->grad[t] = new_tensor_like(a, t, "grad:", "");
    a->g->tensors[a->grad[t]].grad_of = t;
  } else {
    bn->accumulate |= 1;
  }
  bn->out[0] = a->grad[t];
  bn->n_out = 1;
  a->n_recv[t]++;
}

// The existing tensor c (shaped like t) is a contribution to t's gradient.
// The only contribution: the gradient is a view of c. Otherwise an accum.
static void route_existing(Ad *a, const IrNode *f, int fwd, int t, int c) {
  if (a->n_contrib[t] == 1) {
    NAO_ASSERT(a->grad[t] < 0);
    int v = new_view(a, c, 0, t, "grad:", "");
    a->g->tensors[v].grad_of = t;
    a->grad[t] = v;
    a->n_recv[t]++;
    return;
  }
  IrNode bn = bwd_node(f, fwd, IR_ACCUM);
  bn.n_in = 1;
  bn.in[0] = c;
  route_out(a, &bn, t);
  ir_add_node(a->g, &bn);
}

static void route_param(Ad *a, IrNode *bn, int k) {
  int p = bn->param[k];
  if (a->pgrad[p]) bn->accumulate |= 1 << (IR_MAX_OUT + k);
  a->pgrad[p] = 1;
}

static void copy_params(IrNode *bn, const IrNode *f) {
  bn->n_param = f->n_param;
  memcpy(bn->param, f->param, sizeof bn->param);
}

// ---------------------------------------------------------------- per kind

static void emit_conv(Ad *a, const IrNode *f, int i, int dy) {
  int x = f->in[0];
  if (trainable(a->g, f->param[0])) {
    IrNode bn = bwd_node(f, i, IR_CONV_BWD_FILTER);
    bn.n_in = 2;
    bn.in[0] = x;
    bn.in[1] = dy;
    copy_params(&bn, f);
    route_param(a, &bn, 0);
    ir_add_node(a->g, &bn);
  }
  if (need(a, x)) {
    IrNode bn = bwd_node(f, i, IR_CONV_BWD_DATA);
    bn.n_in = 1;
    bn.in[0] = dy;
    copy_params(&bn, f);
    route_out(a, &bn, x);
    ir_add_node(a->g, &bn);
  }
}

static int emit_bn(Ad *a, const IrNode *f, int i, int dy) {
  if (f->n_param != 4 || !trainable(a->g, f->param[0]) || !trainable(a->g, f->param[1]))
    return ad_fail(a, "autodiff: bn %s needs trainable gamma and beta", f->name);
  IrNode bn = bwd_node(f, i, IR_BN_BWD);
  bn.n_in = 2;
  bn.in[0] = f->in[0];
  bn.in[1] = dy;
  if (f->a.bn.batch_stats) {
    if (f->n_out != 3)
      return ad_fail(a, "autodiff: bn %s with batch statistics must output mean and invstd",
                     f->name);
    bn.n_in = 4;
    bn.in[2] = f->out[1];
    bn.in[3] = f->out[2];
  }
  copy_params(&bn, f);
  route_param(a, &bn, 0);
  route_param(a, &bn, 1);
  int x = f->in[0];
  if (need(a, x)) {
    route_out(a, &bn, x);
  } else {  // the contract always has dx; this one is never read
    bn.out[0] = new_tensor_like(a, x, "grad(unused):", "");
    bn.n_out = 1;
  }
  ir_add_node(a->g, &bn);
  return 0;
}

static int emit_linear(Ad *a, const IrNode *f, int i, int dy) {
  if (f->n_param != 2 || !trainable(a->g, f->param[0]) || !trainable(a->g, f->param[1]))
    return ad_fail(a, "autodiff: linear %s needs a trainable weight and bias", f->name);
  IrNode bn = bwd_node(f, i, IR_LINEAR_BWD);
  bn.n_in = 2;
  bn.in[0] = f->in[0];
  bn.in[1] = dy;
  copy_params(&bn, f);
  route_param(a, &bn, 0);
  route_param(a, &bn, 1);
  if (need(a, f->in[0])) route_out(a, &bn, f->in[0]);
  ir_add_node(a->g, &bn);
  return 0;
}

// Kinds whose one backward node reads (in0, in1, in2) and writes dx of in0.
static void emit_unary(Ad *a, const IrNode *f, int i, IrKind kind, int n_in, int in0, int in1, int in2) {
  IrNode bn = bwd_node(f, i, kind);
  const int ins[3] = {in0, in1, in2};
  bn.n_in = n_in;
  for (int k = 0; k < n_in; k++) bn.in[k] = ins[k];
  route_out(a, &bn, f->in[0]);
  ir_add_node(a->g, &bn);
}

static void emit_concat(Ad *a, const IrNode *f, int i, int dy) {
  IrGraph *g = a->g;
  int off = 0;
  for (int k = 0; k < f->n_in; k++) {
    int t = f->in[k];
    if (need(a, t)) {
      char suffix[48];
      snprintf(suffix, sizeof suffix, "[c%d:%d]", off, off + g->tensors[t].c);
      if (a->n_contrib[t] == 1) {  // the gradient is the slice itself
        int v = new_view(a, dy, off, t, "grad:", "");
        g->tensors[v].grad_of = t;
        a->grad[t] = v;
        a->n_recv[t]++;
      } else {
        int v = new_view(a, dy, off, t, "grad-slice:", suffix);
        route_existing(a, f, i, t, v);
      }
    }
    off += g->tensors[t].c;
  }
}

static int emit_node(Ad *a, int i) {
  IrGraph *g = a->g;
  const IrNode f = g->nodes[i];  // a copy: emission grows (and may move) g->nodes
  int dy = -1;
  if (f.kind != IR_XENT) {
    int y = f.out[0];
    dy = a->grad[y];
    if (dy < 0 || a->n_recv[y] != a->n_contrib[y])
      nao_internal("autodiff: gradient of %s incomplete at its producer (%d of %d)",
                   g->tensors[y].name, a->n_recv[y], a->n_contrib[y]);
  }
  switch (f.kind) {
  case IR_CONV: emit_conv(a, &f, i, dy); return 0;
  case IR_BN: return emit_bn(a, &f, i, dy);
  case IR_LINEAR: return emit_linear(a, &f, i, dy);
  case IR_RELU: emit_unary(a, &f, i, IR_RELU_BWD, 2, f.out[0], dy, -1); return 0;
  case IR_POOL: emit_unary(a, &f, i, IR_POOL_BWD, 3, f.in[0], f.out[0], dy); return 0;
  case IR_GAP: emit_unary(a, &f, i, IR_GAP_BWD, 1, dy, -1, -1); return 0;
  case IR_DROPOUT:
  case IR_DROPPATH:
    if (f.n_out != 2) return ad_fail(a, "autodiff: %s must output its mask", f.name);
    emit_unary(a, &f, i, IR_MASK_BWD, 2, f.out[1], dy, -1);
    return 0;
  case IR_XENT: emit_unary(a, &f, i, IR_XENT_BWD, 2, f.out[1], f.in[1], -1); return 0;
  case IR_ADD:
    for (int k = 0; k < f.n_in; k++)
      if (need(a, f.in[k])) route_existing(a, &f, i, f.in[k], dy);
    return 0;
  case IR_ACCUM: route_existing(a, &f, i, f.in[0], dy); return 0;
  case IR_CONCAT: emit_concat(a, &f, i, dy); return 0;
  default: return ad_fail(a, "autodiff: node %s: kind cannot be differentiated", f.name);
  }
}

// ---------------------------------------------------------------- driver

static void ad_free(Ad *a) {
  free(a->cons_start);
  free(a->cons_node);
  free(a->cons_slot);
  free(a->dep);
  free(a->live);
  free(a->xent_on);
  free(a->n_contrib);
  free(a->n_recv);
  free(a->grad);
  free(a->pgrad);
}

static int sweep(Ad *a) {
  for (int i = a->n_fwd - 1; i >= 0; i--)
    if (active(a, i) && emit_node(a, i) < 0) return -1;
  for (int t = 0; t < a->nt; t++)
    if (need(a, t) && a->n_recv[t] != a->n_contrib[t])
      nao_internal("autodiff: %s received %d of %d gradient contributions",
                   a->g->tensors[t].name, a->n_recv[t], a->n_contrib[t]);
  return 0;
}

int ir_autodiff(IrGraph *g, char *err, size_t errlen) {
  if (ir_check_indices(g, err, errlen) < 0) return -1;
  if (g->n_fwd_nodes == 0 && g->n_nodes > 0) {
    snprintf(err, errlen, "autodiff: n_fwd_nodes is not set (%d nodes)", g->n_nodes);
    return -1;
  }
  if (g->n_nodes != g->n_fwd_nodes) {
    snprintf(err, errlen, "autodiff: the graph already has backward nodes (%d nodes, %d forward)",
             g->n_nodes, g->n_fwd_nodes);
    return -1;
  }
  if (g->loss < 0 || g->loss >= g->n_tensors || !g->params) {
    snprintf(err, errlen, "autodiff: the graph has no loss");
    return -1;
  }
  Ad a;
  memset(&a, 0, sizeof a);
  a.g = g;
  a.n_fwd = g->n_fwd_nodes;
  a.nt = g->n_tensors;
  a.err = err;
  a.errlen = errlen;
  size_t nt = (size_t)a.nt;
  a.dep = xcalloc(nt, 1);
  a.live = xcalloc(nt, 1);
  a.xent_on = xcalloc((size_t)a.n_fwd + 1, 1);
  a.n_contrib = xcalloc(nt, sizeof(int));
  a.n_recv = xcalloc(nt, sizeof(int));
  a.grad = xmalloc(sizeof(int) * (nt ? nt : 1));
  for (size_t t = 0; t < nt; t++) a.grad[t] = -1;
  a.pgrad = xcalloc((size_t)g->params->n + 1, 1);
  build_consumers(&a);
  int rc = analyse(&a);
  if (rc == 0) {
    count_contributions(&a);
    rc = sweep(&a);
  }
  if (rc < 0) {  // leave the forward graph as it was
    g->n_nodes = a.n_fwd;
    g->n_tensors = a.nt;
  }
  ad_free(&a);
  return rc;
}

void ir_grad_params_written(const IrGraph *g, unsigned char *written) {
  for (int i = 0; i < g->n_nodes; i++) {
    const IrNode *n = &g->nodes[i];
    switch (n->kind) {
    case IR_CONV_BWD_FILTER: written[n->param[0]] = 1; break;
    case IR_BN_BWD:
    case IR_LINEAR_BWD:
      written[n->param[0]] = 1;
      written[n->param[1]] = 1;
      break;
    default: break;
    }
  }
}
