// compiler/fuse.c — dependencies, groups, merging and the schedule (fuse.h).
//
// After fuse_ops.c made the ops and decided inlining, every executed op gets a
// group. Dependencies between ops come from what they read and write: tensors
// by (root, channel range) so that concat slices and their root are related,
// and parameter gradients by parameter (the first writer writes, the others
// add). A pointwise op then joins a group that produces what it reads when the
// spaces agree and the group graph stays acyclic; the schedule is a
// topological order of the groups that keeps the IR's order where it can.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/cuda_plan.h"
#include "compiler/fuse_internal.h"

typedef struct {
  int op, c0, c1, write;
} Access;

typedef struct {
  Access *v;
  int n, cap;
} AccessList;

typedef struct {
  int *v;
  int n, cap;
} IntVec;

static void iv_push(IntVec *x, int v) {
  if (x->n == x->cap) {
    x->cap = x->cap ? 2 * x->cap : 4;
    x->v = xrealloc(x->v, sizeof(int) * (size_t)x->cap);
  }
  x->v[x->n++] = v;
}

typedef struct {
  FuseBuild *b;
  FusePlan *fp;
  IntVec *succ, *pred;  // per op
  int *g_of;            // per op: its group, -1 when not executed
  int *stamp;           // per group, for searches
  int cur_stamp;
  int *stack;
} Fz;

static int executed(const Fz *z, int op) {
  return !z->fp->ops[op].dead && !z->b->inlined[op] && z->fp->ops[op].kind != FOP_NOP;
}

// ---------------------------------------------------------------- dependencies

static void access(Fz *z, AccessList *lists, int res, int c0, int c1, int op, int write) {
  AccessList *l = &lists[res];
  for (int i = 0; i < l->n; i++) {
    const Access *a = &l->v[i];
    if (a->op == op || (!write && !a->write)) continue;
    if (a->c1 <= c0 || c1 <= a->c0) continue;
    iv_push(&z->succ[a->op], op);
    iv_push(&z->pred[op], a->op);
  }
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 4;
    l->v = xrealloc(l->v, sizeof *l->v * (size_t)l->cap);
  }
  l->v[l->n++] = (Access){op, c0, c1, write};
}

static void tensor_access(Fz *z, AccessList *lists, int t, int op, int write) {
  int c0;
  int r = fuse_root(z->fp, t, &c0);
  access(z, lists, r, c0, c0 + z->fp->tensors[t].c, op, write);
}

static void build_deps(Fz *z) {
  FusePlan *fp = z->fp;
  int n_params = fp->g->params ? fp->g->params->n : 0;
  AccessList *tl = xcalloc((size_t)fp->n_tensors, sizeof *tl);
  AccessList *pl = xcalloc((size_t)n_params + 1, sizeof *pl);
  for (int i = 0; i < fp->n_ops; i++) {
    if (!executed(z, i)) continue;
    const FuseOp *o = &fp->ops[i];
    for (int k = 0; k < o->n_reads; k++) tensor_access(z, tl, o->reads[k], i, 0);
    for (int k = 0; k < o->n_writes; k++) tensor_access(z, tl, o->writes[k], i, 1);
    int gw[2] = {z->b->gwrite[i], z->b->gwrite2[i]};
    for (int k = 0; k < 2; k++)
      if (gw[k] >= 0 && gw[k] < n_params) access(z, pl, gw[k], 0, 1, i, 1);
  }
  for (int t = 0; t < fp->n_tensors; t++) free(tl[t].v);
  for (int p = 0; p <= n_params; p++) free(pl[p].v);
  free(tl);
  free(pl);
}

// ---------------------------------------------------------------- groups

static FuseGroupKind group_kind(FuseOpKind k) {
  switch (k) {
    case FOP_CONV_DW: return FG_CONV_DW;
    case FOP_CONV_DW_DATA:
    case FOP_CONV_DW_FILTER: return FG_CONV_DW_BWD;
    case FOP_POOL: return FG_POOL;
    case FOP_POOL_BWD: return FG_POOL_BWD;
    case FOP_GAP: return FG_GAP;
    case FOP_XENT: return FG_XENT;
    case FOP_LIB_CONV:
    case FOP_LIB_CONV_DATA:
    case FOP_LIB_CONV_FILTER:
    case FOP_LIB_GEMM: return FG_LIB;
    default: return FG_PW;
  }
}

// The tensor whose shape is the op's iteration space.
static int space_tensor(const FusePlan *fp, const FuseOp *o) {
  const IrNode *n = &fp->g->nodes[o->node];
  switch (o->kind) {
    case FOP_BN_STATS:
    case FOP_BNB_REDUCE:
    case FOP_XENT: return n->in[0];
    case FOP_BIAS_GRAD:
    case FOP_CONV_DW_FILTER: return n->in[1];
    default: return o->out;
  }
}

static void set_space(FusePlan *fp, FuseGroup *g, int t) {
  const IrTensor *x = &fp->tensors[t];
  g->batched = x->kind == IR_T_ACT || x->kind == IR_T_LABELS;
  g->c = x->c;
  g->h = x->h;
  g->w = x->w;
}

static void make_groups(Fz *z) {
  FusePlan *fp = z->fp;
  fp->groups = xcalloc((size_t)fp->n_ops + 1, sizeof *fp->groups);
  for (int i = 0; i < fp->n_ops; i++) {
    z->g_of[i] = -1;
    if (!executed(z, i)) continue;
    const FuseOp *o = &fp->ops[i];
    FuseGroup *g = &fp->groups[fp->n_groups];
    g->kind = group_kind(o->kind);
    g->anchor = g->kind == FG_PW ? -1 : i;
    g->anchor2 = -1;
    g->merged_into = -1;
    g->first_op = i;
    g->ops = xmalloc(sizeof(int));
    g->ops[0] = i;
    g->n_ops = 1;
    if (g->kind != FG_LIB) set_space(fp, g, space_tensor(fp, o));
    z->g_of[i] = fp->n_groups++;
  }
}

// ---------------------------------------------------------------- acyclicity

static int group_search(Fz *z, int src, int dst, int skip_direct) {
  FusePlan *fp = z->fp;
  z->cur_stamp++;
  int sp = 0;
  z->stamp[src] = z->cur_stamp;
  z->stack[sp++] = src;
  int first = 1;
  while (sp > 0) {
    int g = z->stack[--sp];
    const FuseGroup *G = &fp->groups[g];
    for (int k = 0; k < G->n_ops; k++) {
      const IntVec *s = &z->succ[G->ops[k]];
      for (int j = 0; j < s->n; j++) {
        int h = z->g_of[s->v[j]];
        if (h < 0 || h == g) continue;
        if (h == dst) {
          if (!(first && skip_direct)) return 1;
          continue;
        }
        if (z->stamp[h] == z->cur_stamp) continue;
        z->stamp[h] = z->cur_stamp;
        z->stack[sp++] = h;
      }
    }
    first = 0;
  }
  return 0;
}

// Merging x into h keeps the group graph acyclic.
static int merge_acyclic(Fz *z, int h, int x) {
  if (group_search(z, x, h, 0)) return 0;  // x must run before h
  return !group_search(z, h, x, 1);        // h reaches x through a third group
}

static void merge(Fz *z, int h, int x) {
  FusePlan *fp = z->fp;
  FuseGroup *H = &fp->groups[h], *X = &fp->groups[x];
  int *ops = xmalloc(sizeof(int) * (size_t)(H->n_ops + X->n_ops));
  int i = 0, j = 0, n = 0;
  while (i < H->n_ops || j < X->n_ops) {
    if (j >= X->n_ops || (i < H->n_ops && H->ops[i] < X->ops[j])) ops[n++] = H->ops[i++];
    else ops[n++] = X->ops[j++];
  }
  for (int k = 0; k < X->n_ops; k++) z->g_of[X->ops[k]] = h;
  free(H->ops);
  free(X->ops);
  X->ops = NULL;
  X->n_ops = 0;
  X->merged_into = h;
  H->ops = ops;
  H->n_ops = n;
  if (ops[0] < H->first_op) H->first_op = ops[0];
}

// ---------------------------------------------------------------- host checks

static int overlaps(const FusePlan *fp, int a, int b) {
  int ca, cb;
  int ra = fuse_root(fp, a, &ca), rb = fuse_root(fp, b, &cb);
  return ra == rb && ca < cb + fp->tensors[b].c && cb < ca + fp->tensors[a].c;
}

static int is_reduction(FuseOpKind k) {
  return k == FOP_BN_STATS || k == FOP_BNB_REDUCE || k == FOP_BIAS_GRAD || k == FOP_XENT ||
         k == FOP_CONV_DW_FILTER;
}

static int is_anchor(FuseOpKind k) {
  return k == FOP_CONV_DW || k == FOP_CONV_DW_DATA || k == FOP_CONV_DW_FILTER || k == FOP_POOL ||
         k == FOP_POOL_BWD || k == FOP_GAP || k == FOP_XENT;
}

// Parameters an op's expressions name (BN gamma/beta, running statistics, biases).
static void param_leaves(const FxPool *p, int e, IntVec *out) {
  if (e < 0) return;
  const FxNode *x = &p->v[e];
  if (x->kind == FX_CHAN_P || x->kind == FX_CHAN_B) iv_push(out, -(x->t + 1));
  param_leaves(p, x->a, out);
  param_leaves(p, x->b, out);
}

static void op_args(const FusePlan *fp, const FuseOp *o, IntVec *out) {
  for (int k = 0; k < o->n_reads; k++) iv_push(out, o->reads[k]);
  for (int k = 0; k < o->n_writes; k++) iv_push(out, o->writes[k]);
  param_leaves(&fp->fx, o->expr, out);
  param_leaves(&fp->fx, o->in_expr[0], out);
  param_leaves(&fp->fx, o->in_expr[1], out);
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static int distinct_args(const FusePlan *fp, const FuseGroup *a, const FuseGroup *b) {
  IntVec v = {0};
  for (int k = 0; k < a->n_ops; k++) op_args(fp, &fp->ops[a->ops[k]], &v);
  for (int k = 0; k < b->n_ops; k++) op_args(fp, &fp->ops[b->ops[k]], &v);
  qsort(v.v, (size_t)v.n, sizeof(int), cmp_int);
  int n = 0;
  for (int i = 0; i < v.n; i++)
    if (i == 0 || v.v[i] != v.v[i - 1]) n++;
  free(v.v);
  return n;
}

// Can pointwise op group x run in h's epilogue?
static int can_host(Fz *z, int h, int x) {
  FusePlan *fp = z->fp;
  const FuseGroup *H = &fp->groups[h], *X = &fp->groups[x];
  if (h == x || H->merged_into >= 0 || H->kind == FG_LIB) return 0;
  if (H->batched != X->batched || H->c != X->c || H->h != X->h || H->w != X->w) return 0;
  const FuseOp *xo = &fp->ops[X->ops[0]];
  int red = is_reduction(xo->kind);
  switch (H->kind) {
    case FG_PW:
    case FG_CONV_DW:
    case FG_POOL:
    case FG_POOL_BWD:
      break;
    case FG_CONV_DW_BWD:
      if (fp->ops[H->anchor].kind != FOP_CONV_DW_DATA) return 0;
      break;
    case FG_GAP:
    case FG_XENT:
      if (red) return 0;
      break;
    default:
      return 0;
  }
  for (int k = 0; k < H->n_ops; k++) {
    const FuseOp *ho = &fp->ops[H->ops[k]];
    if (is_reduction(ho->kind)) {  // its results exist only after the kernel
      int r1 = ho->kind == FOP_XENT ? -1 : ho->out;  // the softmax is per element
      int r2 = ho->out2;
      for (int r = 0; r < xo->n_reads; r++)
        if ((r1 >= 0 && overlaps(fp, xo->reads[r], r1)) ||
            (r2 >= 0 && overlaps(fp, xo->reads[r], r2)))
          return 0;
    }
    // A read of memory the host writes under another name (a view of it, or
    // its root) would load the element before the host's store of it.
    for (int r = 0; r < xo->n_reads; r++)
      for (int w = 0; w < ho->n_writes; w++)
        if (xo->reads[r] != ho->writes[w] && overlaps(fp, xo->reads[r], ho->writes[w])) return 0;
    if (is_anchor(ho->kind)) {  // stencil reads see other elements: no writes to them
      for (int r = 0; r < ho->n_reads; r++)
        for (int w = 0; w < xo->n_writes; w++)
          if (overlaps(fp, ho->reads[r], xo->writes[w])) return 0;
    }
  }
  if (distinct_args(fp, H, X) > NAO_KARGS_MAX - 3) return 0;
  return merge_acyclic(z, h, x);
}

// The depthwise backward op with the same weight and dy as op i, if any.
static int dw_sibling(Fz *z, int i) {
  FusePlan *fp = z->fp;
  const FuseOp *o = &fp->ops[i];
  FuseOpKind want = o->kind == FOP_CONV_DW_DATA ? FOP_CONV_DW_FILTER : FOP_CONV_DW_DATA;
  int dy = o->kind == FOP_CONV_DW_DATA ? o->in_expr[0] : o->in_expr[1];
  const IrNode *n = &fp->g->nodes[o->node];
  for (int j = i - 1; j >= 0; j--) {
    const FuseOp *p = &fp->ops[j];
    if (p->kind != want || z->g_of[j] < 0) continue;
    const IrNode *m = &fp->g->nodes[p->node];
    int pdy = p->kind == FOP_CONV_DW_DATA ? p->in_expr[0] : p->in_expr[1];
    if (m->param[0] == n->param[0] && pdy == dy &&
        memcmp(fuse_conv_attr(fp->g, m), fuse_conv_attr(fp->g, n), sizeof(IrConvAttr)) == 0)
      return j;
  }
  return -1;
}

static void merge_dw_bwd(Fz *z, int i) {
  FusePlan *fp = z->fp;
  int j = dw_sibling(z, i);
  if (j < 0) return;
  int h = z->g_of[j], x = z->g_of[i];
  FuseGroup *H = &fp->groups[h];
  if (H->merged_into >= 0 || H->anchor2 >= 0 || fp->groups[x].n_ops != 1) return;
  if (!merge_acyclic(z, h, x)) return;
  int data = fp->ops[i].kind == FOP_CONV_DW_DATA ? i : j;
  int filt = data == i ? j : i;
  merge(z, h, x);
  H = &fp->groups[h];
  H->anchor = data;
  H->anchor2 = filt;
  set_space(fp, H, fp->ops[data].out);
}

static void merge_all(Fz *z) {
  FusePlan *fp = z->fp;
  IntVec cand = {0};
  for (int i = 0; i < fp->n_ops; i++) {
    int x = z->g_of[i];
    if (x < 0) continue;
    const FuseOp *o = &fp->ops[i];
    if (o->kind == FOP_CONV_DW_DATA || o->kind == FOP_CONV_DW_FILTER) {
      merge_dw_bwd(z, i);
      continue;
    }
    if (fp->groups[x].kind != FG_PW) continue;
    cand.n = 0;
    for (int k = 0; k < z->pred[i].n; k++) iv_push(&cand, z->pred[i].v[k]);
    qsort(cand.v, (size_t)cand.n, sizeof(int), cmp_int);
    for (int k = cand.n - 1; k >= 0; k--) {
      if (k + 1 < cand.n && cand.v[k] == cand.v[k + 1]) continue;
      int h = z->g_of[cand.v[k]];
      if (h >= 0 && can_host(z, h, x)) {
        merge(z, h, x);
        break;
      }
    }
  }
  free(cand.v);
}

// ---------------------------------------------------------------- schedule

static void heap_push(int *heap, int *n, const FuseGroup *gs, int g) {
  int i = (*n)++;
  heap[i] = g;
  while (i > 0) {
    int p = (i - 1) / 2;
    if (gs[heap[p]].first_op <= gs[heap[i]].first_op) break;
    int t = heap[p];
    heap[p] = heap[i];
    heap[i] = t;
    i = p;
  }
}

static int heap_pop(int *heap, int *n, const FuseGroup *gs) {
  int top = heap[0];
  heap[0] = heap[--(*n)];
  int i = 0;
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < *n && gs[heap[l]].first_op < gs[heap[m]].first_op) m = l;
    if (r < *n && gs[heap[r]].first_op < gs[heap[m]].first_op) m = r;
    if (m == i) break;
    int t = heap[m];
    heap[m] = heap[i];
    heap[i] = t;
    i = m;
  }
  return top;
}

static int schedule(Fz *z) {
  FusePlan *fp = z->fp;
  int ng = fp->n_groups;
  IntVec *gsucc = xcalloc((size_t)ng, sizeof *gsucc);
  int *indeg = xcalloc((size_t)ng, sizeof(int));
  for (int g = 0; g < ng; g++) {
    const FuseGroup *G = &fp->groups[g];
    if (G->merged_into >= 0) continue;
    for (int k = 0; k < G->n_ops; k++)
      for (int j = 0; j < z->succ[G->ops[k]].n; j++) {
        int h = z->g_of[z->succ[G->ops[k]].v[j]];
        if (h >= 0 && h != g) iv_push(&gsucc[g], h);
      }
    if (gsucc[g].n > 1) qsort(gsucc[g].v, (size_t)gsucc[g].n, sizeof(int), cmp_int);
    int n = 0;
    for (int i = 0; i < gsucc[g].n; i++)
      if (i == 0 || gsucc[g].v[i] != gsucc[g].v[i - 1]) gsucc[g].v[n++] = gsucc[g].v[i];
    gsucc[g].n = n;
    for (int i = 0; i < n; i++) indeg[gsucc[g].v[i]]++;
  }
  int *heap = xmalloc(sizeof(int) * (size_t)(ng + 1)), nh = 0;
  fp->sched = xmalloc(sizeof(int) * (size_t)(ng + 1));
  int live = 0;
  for (int g = 0; g < ng; g++) {
    if (fp->groups[g].merged_into >= 0) continue;
    live++;
    if (indeg[g] == 0) heap_push(heap, &nh, fp->groups, g);
  }
  while (nh > 0) {
    int g = heap_pop(heap, &nh, fp->groups);
    fp->sched[fp->n_sched++] = g;
    for (int i = 0; i < gsucc[g].n; i++)
      if (--indeg[gsucc[g].v[i]] == 0) heap_push(heap, &nh, fp->groups, gsucc[g].v[i]);
  }
  for (int g = 0; g < ng; g++) free(gsucc[g].v);
  free(gsucc);
  free(indeg);
  free(heap);
  return fp->n_sched == live ? 0 : -1;
}

// ---------------------------------------------------------------- storage

// A tensor needs memory when anything outside the group that writes it reads
// it, when several groups write it, or when it is a slice, a statistic or read
// by a library call or the program.
static void decide_stored(Fz *z) {
  FusePlan *fp = z->fp;
  int nt = fp->n_tensors;
  int *wgroup = xmalloc(sizeof(int) * (size_t)nt);
  fp->stored = xcalloc((size_t)nt, sizeof(int));
  for (int t = 0; t < nt; t++) {
    wgroup[t] = -1;
    const IrTensor *x = &fp->tensors[t];
    if (fp->mem_read[t] || x->view_of >= 0 || x->kind != IR_T_ACT) fp->stored[t] = 1;
    if (x->view_of >= 0) fp->stored[fuse_root(fp, t, NULL)] = 1;
  }
  for (int i = 0; i < fp->n_ops; i++) {
    int g = z->g_of[i];
    if (g < 0) continue;
    const FuseOp *o = &fp->ops[i];
    for (int k = 0; k < o->n_writes; k++) {
      int t = o->writes[k];
      if (wgroup[t] == -1) {
        wgroup[t] = g;
        if (o->kind == FOP_DEF && o->accumulate) fp->stored[t] = 1;  // adds to memory
      } else if (wgroup[t] != g) {
        fp->stored[t] = 1;
      }
    }
    for (int k = 0; k < o->n_reads; k++) {
      int t = o->reads[k];
      if (wgroup[t] != g) fp->stored[t] = 1;
    }
  }
  // Tensors no executed op writes (inlined, dead) need no memory unless the
  // program provides them (input, labels) or a slice of them is written.
  int *root_written = xcalloc((size_t)nt, sizeof(int));
  for (int u = 0; u < nt; u++)
    if (fp->tensors[u].view_of >= 0 && wgroup[u] >= 0) root_written[fuse_root(fp, u, NULL)] = 1;
  for (int t = 0; t < nt; t++)
    if (wgroup[t] == -1 && !fp->mem_read[t] && fp->tensors[t].view_of < 0 && !root_written[t])
      fp->stored[t] = 0;
  free(root_written);
  free(wgroup);
}

// ---------------------------------------------------------------- entry

static void mark_outputs(FusePlan *fp, const IrGraph *g) {
  int outs[5] = {g->input, g->labels, g->logits, g->aux_logits, g->loss};
  for (int k = 0; k < 5; k++)
    if (outs[k] >= 0) fp->mem_read[outs[k]] = 1;
}

static void free_build(FuseBuild *b, Fz *z) {
  FusePlan *fp = b->fp;
  for (int i = 0; i < fp->n_ops; i++) {
    free(b->raw[i]);
    if (z) {
      free(z->succ[i].v);
      free(z->pred[i].v);
    }
  }
  free(b->raw);
  free(b->n_raw);
  free(b->cap_raw);
  free(b->inlined);
  free(b->gwrite);
  free(b->gwrite2);
  if (z) {
    free(z->succ);
    free(z->pred);
    free(z->g_of);
    free(z->stamp);
    free(z->stack);
  }
}

int fuse_build(const IrGraph *g, const FuseOptions *opt, FusePlan *out, char *err,
               size_t errlen) {
  FuseOptions defaults = {0};
  memset(out, 0, sizeof *out);
  out->g = g;
  fx_init(&out->fx);
  FuseBuild b = {.fp = out, .g = g, .opt = opt ? opt : &defaults, .err = err, .errlen = errlen};
  b.cap_tensors = g->n_tensors + 64;
  out->tensors = xmalloc(sizeof *out->tensors * (size_t)b.cap_tensors);
  out->def_expr = xmalloc(sizeof(int) * (size_t)b.cap_tensors);
  out->mem_read = xcalloc((size_t)b.cap_tensors, sizeof(int));
  memcpy(out->tensors, g->tensors, sizeof *g->tensors * (size_t)g->n_tensors);
  out->n_tensors = g->n_tensors;
  for (int t = 0; t < b.cap_tensors; t++) out->def_expr[t] = -1;
  mark_outputs(out, g);
  if (fuse_make_ops(&b) || fuse_inline(&b)) {
    free_build(&b, NULL);
    return -1;
  }
  Fz z = {.b = &b, .fp = out};
  z.succ = xcalloc((size_t)out->n_ops + 1, sizeof *z.succ);
  z.pred = xcalloc((size_t)out->n_ops + 1, sizeof *z.pred);
  z.g_of = xmalloc(sizeof(int) * ((size_t)out->n_ops + 1));
  z.stamp = xcalloc((size_t)out->n_ops + 1, sizeof(int));
  z.stack = xmalloc(sizeof(int) * ((size_t)out->n_ops + 1));
  build_deps(&z);
  make_groups(&z);
  if (!b.opt->no_fuse) merge_all(&z);
  int rc = schedule(&z);
  if (rc) snprintf(err, errlen, "internal: fusion groups form a cycle");
  else decide_stored(&z);
  free_build(&b, &z);
  return rc;
}

void fuse_free(FusePlan *fp) {
  fx_free(&fp->fx);
  for (int g = 0; g < fp->n_groups; g++) free(fp->groups[g].ops);
  free(fp->groups);
  free(fp->ops);
  free(fp->sched);
  free(fp->tensors);
  free(fp->def_expr);
  free(fp->stored);
  free(fp->mem_read);
  free(fp->mask_node);
  memset(fp, 0, sizeof *fp);
}

// ---------------------------------------------------------------- text

const char *fuse_op_kind_name(FuseOpKind k) {
  static const char *const names[] = {
      [FOP_NOP] = "nop", [FOP_DEF] = "def", [FOP_BN_STATS] = "bn_stats",
      [FOP_BNB_REDUCE] = "bnb_reduce", [FOP_BIAS_GRAD] = "bias_grad",
      [FOP_CONV_DW] = "dwconv", [FOP_CONV_DW_DATA] = "dwconv_data",
      [FOP_CONV_DW_FILTER] = "dwconv_filter", [FOP_POOL] = "pool", [FOP_POOL_BWD] = "pool_bwd",
      [FOP_GAP] = "gap", [FOP_XENT] = "xent", [FOP_LIB_CONV] = "lib_conv",
      [FOP_LIB_CONV_DATA] = "lib_conv_data", [FOP_LIB_CONV_FILTER] = "lib_conv_filter",
      [FOP_LIB_GEMM] = "lib_gemm",
  };
  if ((int)k < 0 || k > FOP_LIB_GEMM) return "?";
  return names[k];
}

static const char *group_kind_name(FuseGroupKind k) {
  static const char *const names[] = {"pw", "dwconv", "dwconv_bwd", "pool", "pool_bwd",
                                      "gap", "xent", "lib"};
  return (int)k >= 0 && k <= FG_LIB ? names[k] : "?";
}

void fuse_dump(const FusePlan *fp, StrBuf *out) {
  for (int s = 0; s < fp->n_sched; s++) {
    const FuseGroup *G = &fp->groups[fp->sched[s]];
    sb_printf(out, "group %d %s", s, group_kind_name(G->kind));
    if (G->kind != FG_LIB) sb_printf(out, " (%s%d,%d,%d)", G->batched ? "N," : "", G->c, G->h, G->w);
    sb_append(out, ":");
    for (int k = 0; k < G->n_ops; k++) {
      const FuseOp *o = &fp->ops[G->ops[k]];
      sb_printf(out, " %s[%s]", fuse_op_kind_name(o->kind), fp->g->nodes[o->node].name);
      if (o->out >= 0) sb_printf(out, "->%s%s%s", fp->tensors[o->out].name,
                                 o->accumulate ? "(+=)" : "", fp->stored[o->out] ? "" : "(reg)");
    }
    sb_append(out, "\n");
  }
}
