// compiler/emit_cuda_mem.c — where the stored tensors of a CUDA program live.
//
// The GPU schedule is the fusion schedule, not the IR's node order, and fused
// tensors kept in registers need no memory; so the CUDA program lays out its
// own arena in plan.h's terms (PlanLoc): a batched root tensor owns a block of
// numel * N floats at offset `scaled * N`, its channel slices share it
// (unscaled = channel offset * plane), statistics and losses go to the fixed
// region. A root is live from the first group that touches it (any slice)
// to the last; the input and labels from the start, the logits and losses to
// the end. Blocks are reused greedily (best fit, in schedule order); block
// offsets are multiples of 32 floats so every block is 128-byte aligned for
// any batch size.
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda_int.h"
#include "compiler/fuse_internal.h"

enum { MEM_ALIGN = 32 };

typedef struct {
  size_t off, size;
} FreeBlock;

typedef struct {
  FreeBlock *v;
  int n, cap;
  size_t top;
} FreeList;

static size_t fl_alloc(FreeList *f, size_t size) {
  int best = -1;
  for (int i = 0; i < f->n; i++)
    if (f->v[i].size >= size && (best < 0 || f->v[i].size < f->v[best].size)) best = i;
  if (best < 0) {
    // grow: reuse a free block that ends at the top
    if (f->n > 0 && f->v[f->n - 1].off + f->v[f->n - 1].size == f->top) {
      size_t off = f->v[f->n - 1].off;
      f->top = off + size;
      f->n--;
      return off;
    }
    size_t off = f->top;
    f->top += size;
    return off;
  }
  size_t off = f->v[best].off;
  f->v[best].off += size;
  f->v[best].size -= size;
  if (f->v[best].size == 0) {
    memmove(&f->v[best], &f->v[best + 1], sizeof *f->v * (size_t)(f->n - best - 1));
    f->n--;
  }
  return off;
}

static void fl_free(FreeList *f, size_t off, size_t size) {
  int i = 0;
  while (i < f->n && f->v[i].off < off) i++;
  if (f->n == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 16;
    f->v = xrealloc(f->v, sizeof *f->v * (size_t)f->cap);
  }
  memmove(&f->v[i + 1], &f->v[i], sizeof *f->v * (size_t)(f->n - i));
  f->v[i] = (FreeBlock){off, size};
  f->n++;
  // merge with neighbours
  if (i + 1 < f->n && f->v[i].off + f->v[i].size == f->v[i + 1].off) {
    f->v[i].size += f->v[i + 1].size;
    memmove(&f->v[i + 1], &f->v[i + 2], sizeof *f->v * (size_t)(f->n - i - 2));
    f->n--;
  }
  if (i > 0 && f->v[i - 1].off + f->v[i - 1].size == f->v[i].off) {
    f->v[i - 1].size += f->v[i].size;
    memmove(&f->v[i], &f->v[i + 1], sizeof *f->v * (size_t)(f->n - i - 1));
    f->n--;
  }
}

static void touch(int *first, int *last, int r, int s) {
  if (first[r] < 0 || s < first[r]) first[r] = s;
  if (s > last[r]) last[r] = s;
}

static size_t align_up(size_t x) { return (x + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN; }

void emit_plan_memory(ProgRec *pr, const FusePlan *fp, int reuse) {
  int nt = fp->n_tensors;
  int *first = xmalloc(sizeof(int) * (size_t)nt), *last = xmalloc(sizeof(int) * (size_t)nt);
  for (int t = 0; t < nt; t++) first[t] = last[t] = -1;
  pr->locs = xcalloc((size_t)nt, sizeof *pr->locs);
  for (int s = 0; s < fp->n_sched; s++) {
    const FuseGroup *G = &fp->groups[fp->sched[s]];
    for (int k = 0; k < G->n_ops; k++) {
      const FuseOp *o = &fp->ops[G->ops[k]];
      for (int i = 0; i < o->n_reads; i++)
        if (fp->stored[o->reads[i]]) touch(first, last, fuse_root(fp, o->reads[i], NULL), s + 1);
      for (int i = 0; i < o->n_writes; i++)
        if (fp->stored[o->writes[i]]) touch(first, last, fuse_root(fp, o->writes[i], NULL), s + 1);
    }
  }
  const IrGraph *g = fp->g;
  int starts[2] = {g->input, g->labels}, ends[3] = {g->logits, g->aux_logits, g->loss};
  for (int i = 0; i < 2; i++)
    if (starts[i] >= 0) touch(first, last, fuse_root(fp, starts[i], NULL), 0);
  for (int i = 0; i < 3; i++)
    if (ends[i] >= 0) touch(first, last, fuse_root(fp, ends[i], NULL), fp->n_sched + 1);
  // Fixed region: statistics and scalars, no reuse (they are small).
  size_t fixed = 0;
  for (int t = 0; t < nt; t++) {
    const IrTensor *x = &fp->tensors[t];
    if (x->view_of >= 0 || first[t] < 0) continue;
    if (x->kind == IR_T_STAT || x->kind == IR_T_SCALAR) {
      pr->locs[t] = (PlanLoc){LOC_FIXED, 0, fixed, 0};
      fixed += (ir_tensor_numel(x) + 3) / 4 * 4;
    }
  }
  // Arena: roots in order of first use; free after the last.
  FreeList fl = {0};
  int *order = xmalloc(sizeof(int) * (size_t)nt);
  for (int s = 0; s <= fp->n_sched + 1; s++) {
    for (int t = 0; t < nt; t++)  // release roots whose last use was before s
      if (reuse && first[t] >= 0 && last[t] == s - 1 && pr->locs[t].region == LOC_ARENA)
        fl_free(&fl, pr->locs[t].scaled, align_up(ir_tensor_numel(&fp->tensors[t])));
    int n = 0;
    for (int t = 0; t < nt; t++)
      if (first[t] == s && fp->tensors[t].view_of < 0 &&
          (fp->tensors[t].kind == IR_T_ACT || fp->tensors[t].kind == IR_T_LABELS))
        order[n++] = t;
    for (int i = 0; i < n; i++) {
      int t = order[i];
      size_t numel = ir_tensor_numel(&fp->tensors[t]);
      size_t off = fl_alloc(&fl, align_up(numel));
      pr->locs[t] = (PlanLoc){LOC_ARENA, off, 0, numel};
    }
  }
  // Slices share their root's block.
  for (int t = 0; t < nt; t++) {
    if (fp->tensors[t].view_of < 0) continue;
    int c0;
    int r = fuse_root(fp, t, &c0);
    const PlanLoc *rl = &pr->locs[r];
    if (rl->region == LOC_NONE) continue;
    const IrTensor *x = &fp->tensors[t];
    pr->locs[t] = (PlanLoc){rl->region, rl->scaled,
                            rl->unscaled + (size_t)c0 * (size_t)x->h * (size_t)x->w,
                            rl->sample_stride};
  }
  pr->arena = fl.top;
  pr->fixed = fixed;
  free(fl.v);
  free(order);
  free(first);
  free(last);
}
