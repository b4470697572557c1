// compiler/plan.c — step order, liveness and arena assignment (plan.h).
//
// Steps: every node in index order (a valid execution order by the IR's
// invariant), except the concats that are in place (ir_concat_in_place: their
// inputs already are their output's slices, executing them does nothing) and
// dead nodes (ir_dead_nodes: nothing reads what they compute, e.g. the ReLUs
// ir_share_relus made redundant); their outputs get no storage.
//
// Liveness is per root tensor (a view shares its root's block, so a root lives
// from the first step that writes or reads it or any of its views to the last
// such step): the interval [start, end] of step indices, both ends included, so
// a node's inputs and outputs never share memory (no kernel runs in place).
// The graph's outputs (logits, aux_logits, loss) live to the end. A forward
// tensor read by a backward node lives until that node, by construction.
//
// Assignment: batched tensors (activations, labels: an int32 in a float-sized
// slot per sample) go to the arena, measured in floats per image; unbatched
// ones (per-channel statistics, losses) to the fixed region. Every block is
// rounded up to PLAN_ALIGN floats, so every block starts 64-byte aligned for
// any batch size. With reuse, blocks are placed greedy by size: the largest
// first, each at the lowest-waste gap (best fit) between the blocks already
// placed whose lifetimes overlap its own, or above them all. Without reuse,
// each block gets its own space, in tensor order.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/plan.h"

enum { PLAN_ALIGN = 16 };

typedef struct {
  int root;
  int fixed;       // 1: fixed region
  int start, end;  // step interval, inclusive
  size_t size;     // floats per image (arena) or floats (fixed), aligned
  size_t off;
} Block;

static size_t align_up(size_t n) { return (n + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN; }

static int is_batched(IrTensorKind k) { return k == IR_T_ACT || k == IR_T_LABELS; }

// Floats one sample (batched) or the whole tensor (unbatched) takes.
static size_t tensor_floats(const IrTensor *t) {
  return t->kind == IR_T_LABELS ? 1 : ir_tensor_numel(t);
}

static int check_tensors(const IrGraph *g, char *err, size_t errlen) {
  for (int t = 0; t < g->n_tensors; t++) {
    const IrTensor *x = &g->tensors[t];
    if (x->view_of < 0) continue;
    if (x->view_of >= g->n_tensors || x->view_of == t) {
      snprintf(err, errlen, "plan: tensor %s is a view of a bad tensor index %d", x->name,
               x->view_of);
      return -1;
    }
    int r = ir_root(g, t), off = ir_root_offset(g, t);
    const IrTensor *b = &g->tensors[r];
    if (x->kind != IR_T_ACT || b->kind != IR_T_ACT || b->h != x->h || b->w != x->w ||
        off < 0 || off + x->c > b->c) {
      snprintf(err, errlen, "plan: view %s (channels %d..%d) does not fit in %s", x->name, off,
               off + x->c, b->name);
      return -1;
    }
  }
  return 0;
}

static void make_steps(const IrGraph *g, Plan *p) {
  p->steps = xmalloc(sizeof(int) * (size_t)(g->n_nodes ? g->n_nodes : 1));
  p->n_steps = 0;
  unsigned char *dead = ir_dead_nodes(g);
  for (int i = 0; i < g->n_nodes; i++)
    if (!ir_concat_in_place(g, i) && !dead[i]) p->steps[p->n_steps++] = i;
  free(dead);
}

// Liveness of every root; reads before any write are an error.
static int lifetimes(const IrGraph *g, const Plan *p, int *start, int *end, char *err,
                     size_t errlen) {
  int nt = g->n_tensors;
  int *written = xmalloc(sizeof(int) * (size_t)(nt ? nt : 1));
  for (int t = 0; t < nt; t++) start[t] = INT_MAX, end[t] = -1, written[t] = INT_MAX;
  int rc = 0;
  for (int s = 0; s < p->n_steps && rc == 0; s++) {
    const IrNode *n = &g->nodes[p->steps[s]];
    for (int k = 0; k < n->n_in + n->n_out; k++) {
      int is_in = k < n->n_in;
      int t = is_in ? n->in[k] : n->out[k - n->n_in];
      int r = ir_root(g, t);
      int reads = is_in || (n->accumulate & (1 << (k - n->n_in)));
      if (reads && written[r] >= s && written[t] >= s) {
        snprintf(err, errlen, "plan: node %d (%s) reads %s before any node writes it",
                 p->steps[s], n->name, g->tensors[t].name);
        rc = -1;
        break;
      }
      if (!is_in) {
        if (written[t] > s) written[t] = s;
        if (written[r] > s) written[r] = s;
      }
      if (start[r] > s) start[r] = s;
      if (end[r] < s) end[r] = s;
    }
  }
  int outs[3] = {g->logits, g->aux_logits, g->loss};
  for (int k = 0; k < 3; k++)
    if (outs[k] >= 0 && end[ir_root(g, outs[k])] >= 0) end[ir_root(g, outs[k])] = p->n_steps;
  free(written);
  return rc;
}

// ---------------------------------------------------------------- assignment

static int cmp_size_desc(const void *pa, const void *pb) {
  const Block *a = pa, *b = pb;
  if (a->size != b->size) return a->size > b->size ? -1 : 1;
  if (a->start != b->start) return a->start < b->start ? -1 : 1;
  return a->root < b->root ? -1 : a->root > b->root;
}

static int cmp_off(const void *pa, const void *pb) {
  const Block *a = *(const Block *const *)pa, *b = *(const Block *const *)pb;
  if (a->off != b->off) return a->off < b->off ? -1 : 1;
  return a->size < b->size ? -1 : a->size > b->size;
}

// Places blocks [0, n) (all of one region), sorted by size, greedy best fit.
static size_t place_greedy(Block *b, int n) {
  qsort(b, (size_t)n, sizeof *b, cmp_size_desc);
  const Block **near = xmalloc(sizeof *near * (size_t)(n ? n : 1));
  size_t top = 0;
  for (int i = 0; i < n; i++) {
    int m = 0;
    for (int j = 0; j < i; j++)
      if (b[j].start <= b[i].end && b[i].start <= b[j].end) near[m++] = &b[j];
    qsort(near, (size_t)m, sizeof *near, cmp_off);
    size_t prev = 0, best = 0, best_gap = SIZE_MAX;
    for (int j = 0; j < m; j++) {
      if (near[j]->off >= prev) {
        size_t gap = near[j]->off - prev;
        if (gap >= b[i].size && gap < best_gap) best = prev, best_gap = gap;
      }
      if (near[j]->off + near[j]->size > prev) prev = near[j]->off + near[j]->size;
    }
    b[i].off = best_gap != SIZE_MAX ? best : prev;
    if (b[i].off + b[i].size > top) top = b[i].off + b[i].size;
  }
  free(near);
  return top;
}

static size_t place_disjoint(Block *b, int n) {
  size_t top = 0;
  for (int i = 0; i < n; i++) {
    b[i].off = top;
    top += b[i].size;
  }
  return top;
}

static void assign(const IrGraph *g, const PlanOptions *opt, Plan *p, const int *start,
                   const int *end) {
  int nt = g->n_tensors;
  Block *blk = xmalloc(sizeof *blk * (size_t)(nt ? nt : 1));
  int n_arena = 0, n_fixed = 0;
  for (int pass = 0; pass < 2; pass++)  // arena blocks first, then fixed ones
    for (int t = 0; t < nt; t++) {
      const IrTensor *x = &g->tensors[t];
      if (x->view_of >= 0 || end[t] < 0 || is_batched(x->kind) == pass) continue;
      Block *b = &blk[n_arena + n_fixed];
      b->root = t;
      b->fixed = pass;
      b->start = start[t];
      b->end = end[t];
      b->size = align_up(tensor_floats(x));
      b->off = 0;
      if (pass) n_fixed++;
      else n_arena++;
    }
  p->naive_per_image = 0;
  for (int i = 0; i < n_arena; i++) p->naive_per_image += blk[i].size;
  int reuse = opt && opt->reuse;
  p->arena_per_image = reuse ? place_greedy(blk, n_arena) : place_disjoint(blk, n_arena);
  p->fixed_floats = reuse ? place_greedy(blk + n_arena, n_fixed)
                          : place_disjoint(blk + n_arena, n_fixed);
  for (int i = 0; i < n_arena + n_fixed; i++) {
    PlanLoc *l = &p->loc[blk[i].root];
    const IrTensor *x = &g->tensors[blk[i].root];
    l->region = blk[i].fixed ? LOC_FIXED : LOC_ARENA;
    l->scaled = blk[i].fixed ? 0 : blk[i].off;
    l->unscaled = blk[i].fixed ? blk[i].off : 0;
    l->sample_stride = blk[i].fixed ? 0 : tensor_floats(x);
  }
  for (int t = 0; t < nt; t++) {  // views: their root's block, at their channel
    if (g->tensors[t].view_of < 0) continue;
    int r = ir_root(g, t);
    if (p->loc[r].region == LOC_NONE) continue;
    p->loc[t] = p->loc[r];
    p->loc[t].unscaled += (size_t)ir_root_offset(g, t) * (size_t)g->tensors[t].h *
                          (size_t)g->tensors[t].w;
  }
  free(blk);
}

int plan_build(const IrGraph *g, const PlanOptions *opt, Plan *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (ir_check_indices(g, err, errlen) < 0 || check_tensors(g, err, errlen) < 0) return -1;
  make_steps(g, out);
  int nt = g->n_tensors;
  int *start = xmalloc(sizeof(int) * (size_t)(nt ? nt : 1));
  int *end = xmalloc(sizeof(int) * (size_t)(nt ? nt : 1));
  int rc = lifetimes(g, out, start, end, err, errlen);
  if (rc == 0) {
    out->loc = xcalloc((size_t)(nt ? nt : 1), sizeof *out->loc);
    assign(g, opt, out, start, end);
  } else {
    plan_free(out);
  }
  free(start);
  free(end);
  return rc;
}

void plan_free(Plan *p) {
  free(p->steps);
  free(p->loc);
  memset(p, 0, sizeof *p);
}

void plan_stats(const IrGraph *g, const Plan *p, PlanStats *s) {
  memset(s, 0, sizeof *s);
  s->arena_bytes_per_image = p->arena_per_image * sizeof(float);
  s->naive_bytes_per_image = p->naive_per_image * sizeof(float);
  s->fixed_bytes = p->fixed_floats * sizeof(float);
  s->n_steps = p->n_steps;
  for (int t = 0; t < g->n_tensors; t++) {
    if (p->loc[t].region == LOC_NONE) continue;
    if (g->tensors[t].view_of >= 0) s->n_views++;
    else if (p->loc[t].region == LOC_ARENA) s->n_arena_tensors++;
    else s->n_fixed_tensors++;
  }
  s->n_elided = g->n_nodes - p->n_steps;
}
