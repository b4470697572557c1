// runtime/exec_cpu_check.c — validation of a graph and plan before the CPU
// executor runs them.
//
// Every step's node is checked against the contract of its kind (ir.h):
// arity, which accumulate bits the kernels honour, shapes (convolution and
// pooling output sizes from the attributes, weight sizes from the ParamTable),
// and every tensor it touches against its plan location (region, sample
// stride, bounds for every batch size up to max_batch). A failure names the
// node and what is wrong: the graph or the plan is broken, so the caller
// reports it as an internal error.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "runtime/exec_cpu_internal.h"

#define OUT(k) (1 << (k))
#define GRAD(k) (1 << (IR_MAX_OUT + (k)))

typedef struct {
  int in_min, in_max, out_min, out_max, par_min, par_max;
  int acc_ok;  // accumulate bits the executor honours
} KindRule;

static const KindRule kind_rules[IR_KIND_COUNT] = {
    [IR_INPUT] = {0, 0, 1, 1, 0, 0, 0},
    [IR_LABELS] = {0, 0, 1, 1, 0, 0, 0},
    [IR_CONV] = {1, 1, 1, 1, 1, 1, OUT(0)},
    [IR_BN] = {1, 1, 1, 3, 4, 4, 0},
    [IR_RELU] = {1, 1, 1, 1, 0, 0, 0},
    [IR_ADD] = {1, IR_MAX_IN, 1, 1, 0, 0, OUT(0)},
    [IR_CONCAT] = {1, IR_MAX_IN, 1, 1, 0, 0, 0},
    [IR_POOL] = {1, 1, 1, 1, 0, 0, 0},
    [IR_GAP] = {1, 1, 1, 1, 0, 0, OUT(0)},
    [IR_LINEAR] = {1, 1, 1, 1, 1, 2, OUT(0)},
    [IR_DROPOUT] = {1, 1, 2, 2, 0, 0, 0},
    [IR_DROPPATH] = {1, 1, 2, 2, 0, 0, 0},
    [IR_XENT] = {2, 2, 1, 2, 0, 0, 0},
    [IR_CONV_BWD_DATA] = {1, 1, 1, 1, 1, 1, OUT(0)},
    [IR_CONV_BWD_FILTER] = {2, 2, 0, 0, 1, 1, GRAD(0)},
    [IR_BN_BWD] = {2, 4, 0, 1, 4, 4, OUT(0) | GRAD(0) | GRAD(1)},
    [IR_RELU_BWD] = {2, 2, 1, 1, 0, 0, OUT(0)},
    [IR_POOL_BWD] = {3, 3, 1, 1, 0, 0, OUT(0)},
    [IR_GAP_BWD] = {1, 1, 1, 1, 0, 0, OUT(0)},
    [IR_LINEAR_BWD] = {2, 2, 0, 1, 1, 2, OUT(0) | GRAD(0) | GRAD(1)},
    [IR_MASK_BWD] = {2, 2, 1, 1, 0, 0, OUT(0)},
    [IR_XENT_BWD] = {2, 2, 1, 1, 0, 0, OUT(0)},
    [IR_ACCUM] = {1, 1, 1, 1, 0, 0, OUT(0)},
};

__attribute__((format(printf, 3, 4))) static int fail(CpuExec *ex, int i, const char *fmt, ...) {
  const IrNode *nd = &ex->g->nodes[i];
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(ex->err, sizeof ex->err, "cpu backend: node %d '%s' (%s): %s", i, nd->name,
           ir_kind_name(nd->kind), msg);
  return -1;
}

CpuConvShape ex_conv_shape(const IrConvAttr *a, const IrTensor *x, const IrTensor *y, int n) {
  CpuConvShape s = {n, x->c, x->h, x->w, y->c, y->h, y->w, a->kh, a->kw, a->sh, a->sw,
                    a->pt, a->pl, a->groups, CPU_CONV_AUTO};
  return s;
}

static int out_size(int in, int pa, int pb, int k, int s) { return (in + pa + pb - k) / s + 1; }

static int check_conv(CpuExec *ex, int i, const IrConvAttr *a, int xt, int yt, int wp) {
  const IrTensor *x = ex_t(ex, xt), *y = ex_t(ex, yt);
  if (a->kh < 1 || a->kw < 1 || a->sh < 1 || a->sw < 1 || a->groups < 1)
    return fail(ex, i, "bad kernel %dx%d, stride %dx%d or groups %d", a->kh, a->kw, a->sh, a->sw,
                a->groups);
  if (x->c != a->cin || y->c != a->cout || a->cin % a->groups || a->cout % a->groups)
    return fail(ex, i, "channels %d -> %d do not fit attributes %d -> %d in %d groups", x->c, y->c,
                a->cin, a->cout, a->groups);
  int oh = out_size(x->h, a->pt, a->pb, a->kh, a->sh), ow = out_size(x->w, a->pl, a->pr, a->kw, a->sw);
  if (oh != y->h || ow != y->w || oh < 1 || ow < 1)
    return fail(ex, i, "output %dx%d, expected %dx%d from input %dx%d", y->h, y->w, oh, ow, x->h,
                x->w);
  const ParamInfo *w = &ex->g->params->items[wp];
  size_t want = (size_t)a->cout * (size_t)(a->cin / a->groups) * (size_t)a->kh * (size_t)a->kw;
  if (w->numel != want || !w->trainable)
    return fail(ex, i, "weight %s has %zu floats, expected %zu trainable", w->name, w->numel, want);
  return 0;
}

static int check_pool(CpuExec *ex, int i, const IrPoolAttr *a, int xt, int yt) {
  const IrTensor *x = ex_t(ex, xt), *y = ex_t(ex, yt);
  if (a->kh < 1 || a->kw < 1 || a->sh < 1 || a->sw < 1 || a->kh > 64 || a->kw > 64)
    return fail(ex, i, "bad window %dx%d (at most 64x64) or stride %dx%d", a->kh, a->kw, a->sh,
                a->sw);
  int oh = out_size(x->h, a->pt, a->pb, a->kh, a->sh), ow = out_size(x->w, a->pl, a->pr, a->kw, a->sw);
  if (x->c != y->c || oh != y->h || ow != y->w || oh < 1 || ow < 1)
    return fail(ex, i, "output %dx%dx%d, expected %dx%dx%d", y->c, y->h, y->w, x->c, oh, ow);
  return 0;
}

static int check_same(CpuExec *ex, int i, int a, int b) {
  const IrTensor *ta = ex_t(ex, a), *tb = ex_t(ex, b);
  if (ir_tensor_numel(ta) != ir_tensor_numel(tb) || ex_batched(ta) != ex_batched(tb))
    return fail(ex, i, "tensors '%s' (%dx%dx%d) and '%s' (%dx%dx%d) differ", ta->name, ta->c,
                ta->h, ta->w, tb->name, tb->c, tb->h, tb->w);
  return 0;
}

static int check_bn(CpuExec *ex, int i, const IrNode *nd, int xt) {
  const IrTensor *x = ex_t(ex, xt);
  for (int k = 0; k < 4; k++) {
    const ParamInfo *p = &ex->g->params->items[nd->param[k]];
    if (p->numel != (size_t)x->c || p->trainable != (k < 2))
      return fail(ex, i, "parameter %s: %zu floats (%s), expected %d (%s)", p->name, p->numel,
                  p->trainable ? "trainable" : "buffer", x->c, k < 2 ? "trainable" : "buffer");
  }
  const IrNode *an = ex_attr_node(ex, nd);
  if (an->kind != IR_BN) return fail(ex, i, "its forward node is not a bn");
  return 0;
}

static int check_linear(CpuExec *ex, int i, const IrNode *nd, int xt, int yt) {
  const IrTensor *x = ex_t(ex, xt), *y = ex_t(ex, yt);
  const ParamInfo *w = &ex->g->params->items[nd->param[0]];
  if (y->h != 1 || y->w != 1 || w->numel != ir_tensor_numel(x) * (size_t)y->c || !w->trainable)
    return fail(ex, i, "weight %s (%zu floats) does not map %zu features to %d", w->name, w->numel,
                ir_tensor_numel(x), y->c);
  if (nd->n_param > 1 && ex->g->params->items[nd->param[1]].numel != (size_t)y->c)
    return fail(ex, i, "bias %s is not %d floats", ex->g->params->items[nd->param[1]].name, y->c);
  return 0;
}

static int check_xent(CpuExec *ex, int i, int logits, int labels) {
  const IrTensor *l = ex_t(ex, logits), *y = ex_t(ex, labels);
  if (l->kind != IR_T_ACT || l->h != 1 || l->w != 1 || y->kind != IR_T_LABELS)
    return fail(ex, i, "expects logits (K,1,1) and labels");
  return 0;
}

// Kind-specific checks.
static int check_kind(CpuExec *ex, int i) {
  const IrNode *nd = &ex->g->nodes[i];
  const IrNode *an = ex_attr_node(ex, nd);
  switch (nd->kind) {
    case IR_INPUT:
    case IR_LABELS:
      return 0;
    case IR_CONV:
      return check_conv(ex, i, &nd->a.conv, nd->in[0], nd->out[0], nd->param[0]);
    case IR_CONV_BWD_DATA:
      if (an->kind != IR_CONV) return fail(ex, i, "its forward node is not a conv");
      return check_conv(ex, i, &an->a.conv, nd->out[0], nd->in[0], nd->param[0]);
    case IR_CONV_BWD_FILTER:
      if (an->kind != IR_CONV) return fail(ex, i, "its forward node is not a conv");
      return check_conv(ex, i, &an->a.conv, nd->in[0], nd->in[1], nd->param[0]);
    case IR_BN:
      if (nd->n_out > 1 && !nd->a.bn.batch_stats)
        return fail(ex, i, "statistics outputs without batch statistics");
      if (check_same(ex, i, nd->in[0], nd->out[0])) return -1;
      return check_bn(ex, i, nd, nd->in[0]);
    case IR_BN_BWD:
      if (nd->n_in == 3) return fail(ex, i, "takes 2 or 4 inputs");
      if (check_same(ex, i, nd->in[0], nd->in[1])) return -1;
      if (nd->n_out && check_same(ex, i, nd->in[0], nd->out[0])) return -1;
      return check_bn(ex, i, nd, nd->in[0]);
    case IR_RELU:
    case IR_GAP_BWD:
    case IR_ACCUM:
    case IR_DROPOUT:
    case IR_DROPPATH:
      if (nd->kind == IR_GAP_BWD) {
        const IrTensor *dy = ex_t(ex, nd->in[0]), *dx = ex_t(ex, nd->out[0]);
        if (dy->c != dx->c || dy->h != 1 || dy->w != 1) return fail(ex, i, "shape mismatch");
        return 0;
      }
      if (nd->kind == IR_DROPOUT && check_same(ex, i, nd->in[0], nd->out[1])) return -1;
      if (nd->kind == IR_DROPPATH && ir_tensor_numel(ex_t(ex, nd->out[1])) != 1)
        return fail(ex, i, "the drop-path mask must be one float per sample");
      return check_same(ex, i, nd->in[0], nd->out[0]);
    case IR_RELU_BWD:
      if (check_same(ex, i, nd->in[0], nd->in[1])) return -1;
      return check_same(ex, i, nd->in[1], nd->out[0]);
    case IR_MASK_BWD: {
      size_t mn = ir_tensor_numel(ex_t(ex, nd->in[0]));
      if (mn != 1 && mn != ir_tensor_numel(ex_t(ex, nd->in[1])))
        return fail(ex, i, "mask is neither per element nor per sample");
      return check_same(ex, i, nd->in[1], nd->out[0]);
    }
    case IR_ADD:
      for (int k = 0; k < nd->n_in; k++)
        if (check_same(ex, i, nd->in[k], nd->out[0])) return -1;
      return 0;
    case IR_CONCAT: {
      const IrTensor *y = ex_t(ex, nd->out[0]);
      int c = 0;
      for (int k = 0; k < nd->n_in; k++) {
        const IrTensor *x = ex_t(ex, nd->in[k]);
        if (x->h != y->h || x->w != y->w || !ex_batched(x)) return fail(ex, i, "input %d shape", k);
        c += x->c;
      }
      if (c != y->c) return fail(ex, i, "inputs have %d channels, output %d", c, y->c);
      return 0;
    }
    case IR_POOL:
      return check_pool(ex, i, &nd->a.pool, nd->in[0], nd->out[0]);
    case IR_POOL_BWD:
      if (an->kind != IR_POOL) return fail(ex, i, "its forward node is not a pool");
      if (check_same(ex, i, nd->in[0], nd->out[0]) || check_same(ex, i, nd->in[1], nd->in[2]))
        return -1;
      return check_pool(ex, i, &an->a.pool, nd->in[0], nd->in[1]);
    case IR_GAP: {
      const IrTensor *x = ex_t(ex, nd->in[0]), *y = ex_t(ex, nd->out[0]);
      if (x->c != y->c || y->h != 1 || y->w != 1) return fail(ex, i, "shape mismatch");
      return 0;
    }
    case IR_LINEAR:
      return check_linear(ex, i, nd, nd->in[0], nd->out[0]);
    case IR_LINEAR_BWD:
      if (nd->n_out && check_same(ex, i, nd->in[0], nd->out[0])) return -1;
      return check_linear(ex, i, nd, nd->in[0], nd->in[1]);
    case IR_XENT:
      if (nd->n_out > 1 && check_same(ex, i, nd->in[0], nd->out[1])) return -1;
      return check_xent(ex, i, nd->in[0], nd->in[1]);
    case IR_XENT_BWD:
      if (an->kind != IR_XENT) return fail(ex, i, "its forward node is not a xent");
      if (check_same(ex, i, nd->in[0], nd->out[0])) return -1;
      return check_xent(ex, i, nd->in[0], nd->in[1]);
    case IR_KIND_COUNT:
      break;
  }
  return fail(ex, i, "kind %d is not supported by the cpu backend", (int)nd->kind);
}

int ex_check_loc(CpuExec *ex, int node, int t) {
  const IrTensor *tt = ex_t(ex, t);
  const PlanLoc *l = &ex->p->loc[t];
  const size_t numel = ir_tensor_numel(tt);
  if (l->region == LOC_FIXED) {
    if (ex_batched(tt)) return fail(ex, node, "batched tensor '%s' in the fixed region", tt->name);
    if (l->unscaled + numel > ex->p->fixed_floats)
      return fail(ex, node, "tensor '%s' ends past the fixed region", tt->name);
    return 0;
  }
  if (l->region != LOC_ARENA) return fail(ex, node, "tensor '%s' has no location", tt->name);
  if (ex_batched(tt) && l->sample_stride < numel)
    return fail(ex, node, "tensor '%s': sample stride %zu < %zu floats", tt->name,
                l->sample_stride, numel);
  // The end is affine in the batch size: checking 1 and max_batch covers all.
  for (int k = 0; k < 2; k++) {
    size_t n = k ? (size_t)ex->max_batch : 1;
    size_t end = l->scaled * n + l->unscaled + numel + (ex_batched(tt) ? (n - 1) * l->sample_stride : 0);
    if (end > ex->p->arena_per_image * n)
      return fail(ex, node, "tensor '%s' ends past the arena for batch %zu", tt->name, n);
  }
  return 0;
}

int ex_check_node(CpuExec *ex, int i) {
  const IrGraph *g = ex->g;
  const IrNode *nd = &g->nodes[i];
  if ((int)nd->kind < 0 || nd->kind >= IR_KIND_COUNT)
    return fail(ex, i, "kind %d is not supported by the cpu backend", (int)nd->kind);
  const KindRule *r = &kind_rules[nd->kind];
  if (nd->n_in < r->in_min || nd->n_in > r->in_max || nd->n_out < r->out_min ||
      nd->n_out > r->out_max || nd->n_param < r->par_min || nd->n_param > r->par_max)
    return fail(ex, i, "%d inputs, %d outputs, %d parameters do not fit the kind", nd->n_in,
                nd->n_out, nd->n_param);
  if (nd->accumulate & ~r->acc_ok)
    return fail(ex, i, "accumulate bits 0x%x are not supported for this kind", nd->accumulate);
  if (nd->kind == IR_BN_BWD && !(nd->accumulate & GRAD(0)) != !(nd->accumulate & GRAD(1)))
    return fail(ex, i, "gamma and beta gradients must accumulate alike");
  for (int k = 0; k < nd->n_in; k++) {
    if (nd->in[k] < 0 || nd->in[k] >= g->n_tensors) return fail(ex, i, "input %d out of range", k);
    if (ex_check_loc(ex, i, nd->in[k])) return -1;
  }
  for (int k = 0; k < nd->n_out; k++) {
    if (nd->out[k] < 0 || nd->out[k] >= g->n_tensors) return fail(ex, i, "output %d out of range", k);
    if (ex_check_loc(ex, i, nd->out[k])) return -1;
  }
  for (int k = 0; k < nd->n_param; k++)
    if (!g->params || nd->param[k] < 0 || nd->param[k] >= g->params->n)
      return fail(ex, i, "parameter %d out of range", k);
  return check_kind(ex, i);
}

size_t ex_node_ws(const CpuExec *ex, int i) {
  const IrNode *nd = &ex->g->nodes[i];
  const IrNode *an = ex_attr_node(ex, nd);
  const int th = tp_threads(ex->tp), n = ex->max_batch;
  CpuConvShape s;
  switch (nd->kind) {
    case IR_CONV:
      s = ex_conv_shape(&nd->a.conv, ex_t(ex, nd->in[0]), ex_t(ex, nd->out[0]), n);
      s.algo = ex->conv_algo;
      return cpu_conv_ws_floats(&s, CPU_CONV_FWD, th);
    case IR_CONV_BWD_DATA:
      s = ex_conv_shape(&an->a.conv, ex_t(ex, nd->out[0]), ex_t(ex, nd->in[0]), n);
      s.algo = ex->conv_algo;
      return cpu_conv_ws_floats(&s, CPU_CONV_BWD_DATA, th);
    case IR_CONV_BWD_FILTER:
      s = ex_conv_shape(&an->a.conv, ex_t(ex, nd->in[0]), ex_t(ex, nd->in[1]), n);
      s.algo = ex->conv_algo;
      return cpu_conv_ws_floats(&s, CPU_CONV_BWD_FILTER, th);
    default:
      return 0;
  }
}
