// compiler/emit_cuda_pw.c — the pointwise driver: stores and per-channel
// reductions over one (c, h, w) space.
//
// Layout: one block per (channel, chunk of samples), so per-channel values
// (BN scale and shift, biases) are hoisted into registers and per-channel
// sums are block-local; grid (C, ceil(N / NB)). Threads walk the chunk's
// planes with float4 accesses when the plane is a multiple of 4 floats (every
// plane then starts 16-byte aligned: arena blocks are 128-byte aligned and
// sample strides are multiples of the plane).
#include <stdio.h>

#include "compiler/emit_cuda_int.h"

int emit_pw(KGen *k) {
  const FuseGroup *G = k->G;
  int hw = G->h * G->w;
  int v = k->nb->opt.vec && hw % 4 == 0 ? 4 : 1;
  int per = hw / v;
  k->pattern = "pw";
  k->grid_x = G->c;
  int nb = G->batched ? kg_choose_nb(k, G->c, hw) : 1;
  k->grid_nb = G->batched ? nb : 0;
  k->table_nb = nb;
  kg_head(k, "const int c = blockIdx.x;");
  if (G->batched) {
    kg_head(k, "const int n0 = blockIdx.y * %d;", nb);
    kg_head(k, "const int nb = min(%d, a.n - n0);", nb);
  }
  kg_epilogue_decls(k);
  if (G->batched) kg_line(k, "for (int i = threadIdx.x; i < nb * %d; i += %d) {", per, k->block);
  else kg_line(k, "for (int i = threadIdx.x; i < %d; i += %d) {", per, k->block);
  k->indent++;
  size_t mark = k->body.len;
  FxCtx x = {.lanes = v, .n = "n", .nl = G->batched ? "nl" : NULL, .c = "c", .e = "e",
             .chan_uniform = 1, .sc = G->c, .sh = G->h, .sw = G->w};
  kg_site_begin(k, &x);
  kg_epilogue(k, &x);
  kg_flush_stores(k, &x);
  KgVar vars[3] = {{"nl", ""}, {"e", ""}, {"n", ""}};
  if (G->batched) {
    snprintf(vars[0].def, sizeof vars[0].def, "const int nl = i / %d;", per);
    if (v > 1) snprintf(vars[1].def, sizeof vars[1].def, "const int e = (i - nl * %d) * %d;", per, v);
    else snprintf(vars[1].def, sizeof vars[1].def, "const int e = i - nl * %d;", per);
    snprintf(vars[2].def, sizeof vars[2].def, "const int n = n0 + nl;");
  } else {
    snprintf(vars[0].def, sizeof vars[0].def, "const int nl = 0;");
    snprintf(vars[1].def, sizeof vars[1].def, "const int e = i * %d;", v);
    snprintf(vars[2].def, sizeof vars[2].def, "const int n = 0;");
  }
  kg_insert_vars(k, mark, vars, 3);
  k->indent--;
  kg_line(k, "}");
  kg_reduce_tail(k, "(int)gridDim.x");
  kg_fill_mask_tables(k, "n0", "nb");
  return kg_finish(k, k->fp->ops[G->ops[0]].node);
}
