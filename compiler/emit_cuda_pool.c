// compiler/emit_cuda_pool.c — max and average pooling, forward and backward.
//
// Same layout as the depthwise convolution (one block per channel and chunk
// of samples, planes staged in shared memory with the pad value in the
// border). Semantics of ir.h: pad_counted 1 means padded cells are zeros that
// take part (max sees 0, average divides by kh*kw); 0 means they are ignored
// (max: -inf, average: the in-image count). Max pooling's backward pass
// recomputes each window's argmax from x (the first maximum in row-major order
// wins, as PyTorch's does), stores it in shared memory, then every input sums
// the dy of the windows whose argmax it is, in increasing window order: a
// gather, so no atomics and a deterministic sum.
#include <stdio.h>

#include "compiler/emit_cuda_int.h"
#include "compiler/fuse_internal.h"

typedef struct {
  int c, h, w, ho, wo;
  int kh, kw, sh, sw, pt, pl;
  int hp, wp;
  int is_max, counted;
} PoolGeom;

static PoolGeom pool_geom(const KGen *k, const IrNode *n, int x, int y) {
  const FusePlan *fp = k->fp;
  const IrPoolAttr *a = fuse_pool_attr(fp->g, n);
  const IrTensor *tx = &fp->tensors[x], *ty = &fp->tensors[y];
  PoolGeom g = {tx->c, tx->h, tx->w, ty->h, ty->w, a->kh, a->kw, a->sh, a->sw, a->pt, a->pl,
                0, 0, a->is_max, a->pad_counted};
  g.hp = (g.ho - 1) * g.sh + g.kh;
  g.wp = (g.wo - 1) * g.sw + g.kw;
  return g;
}

static const char *pad_value(const PoolGeom *g) {
  return g->is_max && !g->counted ? "__int_as_float(0xff800000)" : "0.0f";
}

// Shared helpers of emit_cuda_conv.c's shape, repeated here to keep each
// driver readable on its own.
static void head_common(KGen *k, int nb) {
  kg_head(k, "const int c = blockIdx.x;");
  kg_head(k, "const int n0 = blockIdx.y * %d;", nb);
  kg_head(k, "const int nb = min(%d, a.n - n0);", nb);
}

static void loop_vars(KGen *k, size_t mark, int h, int w, const char *yn, const char *xn) {
  KgVar vars[6] = {{"sl", ""}, {"e", ""}, {yn, ""}, {xn, ""}, {"nl", ""}, {"n", ""}};
  snprintf(vars[0].def, sizeof vars[0].def, "const int sl = i / %d;", h * w);
  snprintf(vars[1].def, sizeof vars[1].def, "const int e = i - sl * %d;", h * w);
  snprintf(vars[2].def, sizeof vars[2].def, "const int %s = e / %d;", yn, w);
  snprintf(vars[3].def, sizeof vars[3].def, "const int %s = e - %s * %d;", xn, yn, w);
  snprintf(vars[4].def, sizeof vars[4].def, "const int nl = s0 + sl;");
  snprintf(vars[5].def, sizeof vars[5].def, "const int n = n0 + nl;");
  kg_insert_vars(k, mark, vars, 6);
}

static void stage_padded(KGen *k, const PoolGeom *g, int e) {
  int plane = g->hp * g->wp;
  kg_line(k, "for (int i = threadIdx.x; i < ns * %d; i += %d) {", plane, k->block);
  k->indent++;
  size_t mark = k->body.len;
  kg_line(k, "float v = %s;", pad_value(g));
  kg_line(k, "if (iy >= 0 && iy < %d && ix >= 0 && ix < %d) {", g->h, g->w);
  k->indent++;
  size_t mark2 = k->body.len;
  FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = "e", .chan_uniform = 1,
             .sc = g->c, .sh = g->h, .sw = g->w};
  kg_site_begin(k, &x);
  kg_line(k, "v = %s;", kg_expr(k, &x, e, 0));
  KgVar in[1] = {{"e", ""}};
  snprintf(in[0].def, sizeof in[0].def, "const int e = iy * %d + ix;", g->w);
  kg_insert_vars(k, mark2, in, 1);
  k->indent--;
  kg_line(k, "}");
  kg_line(k, "s_x[i] = v;");
  KgVar vars[6] = {{"sl", ""}, {"r", ""}, {"iy", ""}, {"ix", ""}, {"nl", ""}, {"n", ""}};
  snprintf(vars[0].def, sizeof vars[0].def, "const int sl = i / %d;", plane);
  snprintf(vars[1].def, sizeof vars[1].def, "const int r = i - sl * %d;", plane);
  snprintf(vars[2].def, sizeof vars[2].def, "const int iy = r / %d - %d;", g->wp, g->pt);
  snprintf(vars[3].def, sizeof vars[3].def, "const int ix = r - (r / %d) * %d - %d;", g->wp, g->wp, g->pl);
  snprintf(vars[4].def, sizeof vars[4].def, "const int nl = s0 + sl;");
  snprintf(vars[5].def, sizeof vars[5].def, "const int n = n0 + nl;");
  kg_insert_vars(k, mark, vars, 6);
  k->indent--;
  kg_line(k, "}");
}

static void stage_dy(KGen *k, const PoolGeom *g, int e) {
  int plane = g->ho * g->wo;
  kg_line(k, "for (int i = threadIdx.x; i < ns * %d; i += %d) {", plane, k->block);
  k->indent++;
  size_t mark = k->body.len;
  FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = "e", .chan_uniform = 1,
             .sc = g->c, .sh = g->ho, .sw = g->wo};
  kg_site_begin(k, &x);
  kg_line(k, "s_dy[i] = %s;", kg_expr(k, &x, e, 0));
  KgVar vars[4] = {{"sl", ""}, {"e", ""}, {"nl", ""}, {"n", ""}};
  snprintf(vars[0].def, sizeof vars[0].def, "const int sl = i / %d;", plane);
  snprintf(vars[1].def, sizeof vars[1].def, "const int e = i - sl * %d;", plane);
  snprintf(vars[2].def, sizeof vars[2].def, "const int nl = s0 + sl;");
  snprintf(vars[3].def, sizeof vars[3].def, "const int n = n0 + nl;");
  kg_insert_vars(k, mark, vars, 4);
  k->indent--;
  kg_line(k, "}");
}

static void epilogue_at(KGen *k, int c, int h, int w, int out, int acc, const char *value) {
  FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = "e", .chan_uniform = 1,
             .sc = c, .sh = h, .sw = w};
  kg_site_begin(k, &x);
  snprintf(x.result[0], KG_NAME, "%s", value);
  kg_set_value(k, &x, out, acc);
  kg_epilogue(k, &x);
  kg_flush_stores(k, &x);
}

// The in-image count of window (oy, ox) when padding is not counted.
static void count_line(KGen *k, const PoolGeom *g, const char *oy, const char *ox, const char *var) {
  kg_line(k, "const int %s = (min(%s * %d - %d + %d, %d) - max(%s * %d - %d, 0)) * "
             "(min(%s * %d - %d + %d, %d) - max(%s * %d - %d, 0));",
          var, oy, g->sh, g->pt, g->kh, g->h, oy, g->sh, g->pt, ox, g->sw, g->pl, g->kw, g->w, ox,
          g->sw, g->pl);
}

static int samples_staged(const KGen *k, int nb, long long bytes) {
  int lim = k->nb->opt.smem_limit > 0 ? k->nb->opt.smem_limit : 32768;
  if (bytes > lim) return 0;
  int ns = (int)(lim / bytes);
  return ns < nb ? ns : nb;
}

// ---------------------------------------------------------------- forward

static void window_smem(KGen *k, const PoolGeom *g) {
  kg_line(k, "const float *s = s_x + sl * %d + oy * %d + ox * %d;", g->hp * g->wp, g->sh * g->wp, g->sw);
  if (g->is_max) {
    kg_line(k, "float acc = s[0];");
    for (int ky = 0; ky < g->kh; ky++)
      for (int kx = 0; kx < g->kw; kx++)
        if (ky || kx) kg_line(k, "if (!(s[%d] <= acc)) acc = s[%d];", ky * g->wp + kx, ky * g->wp + kx);
    return;
  }
  kg_line(k, "float sum = s[0];");
  for (int ky = 0; ky < g->kh; ky++)
    for (int kx = 0; kx < g->kw; kx++)
      if (ky || kx) kg_line(k, "sum += s[%d];", ky * g->wp + kx);
  if (g->counted) kg_line(k, "const float acc = sum / %d.0f;", g->kh * g->kw);
  else {
    count_line(k, g, "oy", "ox", "cnt");
    kg_line(k, "const float acc = sum / (float)cnt;");
  }
}

static void window_direct(KGen *k, const PoolGeom *g, int e) {
  kg_line(k, "float acc = %s;", g->is_max ? "__int_as_float(0xff800000)" : "0.0f");
  kg_line(k, "for (int ky = 0; ky < %d; ky++) {", g->kh);
  k->indent++;
  kg_line(k, "const int iy = oy * %d - %d + ky;", g->sh, g->pt);
  kg_line(k, "for (int kx = 0; kx < %d; kx++) {", g->kw);
  k->indent++;
  kg_line(k, "const int ix = ox * %d - %d + kx;", g->sw, g->pl);
  kg_line(k, "float v = 0.0f;");
  kg_line(k, "if (iy >= 0 && iy < %d && ix >= 0 && ix < %d) {", g->h, g->w);
  k->indent++;
  char ee[64];
  snprintf(ee, sizeof ee, "(iy * %d + ix)", g->w);
  FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = ee, .chan_uniform = 1,
             .sc = g->c, .sh = g->h, .sw = g->w};
  kg_site_begin(k, &x);
  kg_line(k, "v = %s;", kg_expr(k, &x, e, 0));
  k->indent--;
  if (g->counted || !g->is_max) kg_line(k, "}");
  else kg_line(k, "} else continue;");
  if (g->is_max) kg_line(k, "if (!(v <= acc)) acc = v;");
  else kg_line(k, "acc += v;");
  k->indent--;
  kg_line(k, "}");
  k->indent--;
  kg_line(k, "}");
  if (!g->is_max) {
    if (g->counted) kg_line(k, "acc = acc / %d.0f;", g->kh * g->kw);
    else {
      count_line(k, g, "oy", "ox", "cnt");
      kg_line(k, "acc = acc / (float)cnt;");
    }
  }
}

int emit_pool(KGen *k) {
  const FuseGroup *G = k->G;
  const FuseOp *o = &k->fp->ops[G->anchor];
  const IrNode *n = &k->fp->g->nodes[o->node];
  PoolGeom g = pool_geom(k, n, n->in[0], o->out);
  k->pattern = "pool";
  int nb = kg_choose_nb(k, g.c, (long long)g.ho * g.wo);
  int ns = samples_staged(k, nb, 4LL * g.hp * g.wp);
  k->grid_x = g.c;
  k->grid_nb = nb;
  k->table_nb = nb;
  head_common(k, nb);
  kg_epilogue_decls(k);
  if (ns) {
    k->smem = 4 * ns * g.hp * g.wp;
    kg_line(k, "__shared__ float s_x[%d];", ns * g.hp * g.wp);
    kg_line(k, "for (int s0 = 0; s0 < nb; s0 += %d) {", ns);
    k->indent++;
    kg_line(k, "const int ns = min(%d, nb - s0);", ns);
    kg_line(k, "__syncthreads();");
    stage_padded(k, &g, o->in_expr[0]);
    kg_line(k, "__syncthreads();");
  } else {
    kg_line(k, "{");
    k->indent++;
    kg_line(k, "const int s0 = 0, ns = nb;");
  }
  kg_line(k, "for (int i = threadIdx.x; i < ns * %d; i += %d) {", g.ho * g.wo, k->block);
  k->indent++;
  size_t mark = k->body.len;
  if (ns) window_smem(k, &g);
  else window_direct(k, &g, o->in_expr[0]);
  epilogue_at(k, g.c, g.ho, g.wo, o->out, o->accumulate, "acc");
  loop_vars(k, mark, g.ho, g.wo, "oy", "ox");
  k->indent--;
  kg_line(k, "}");
  k->indent--;
  kg_line(k, "}");
  kg_reduce_tail(k, "(int)gridDim.x");
  kg_fill_mask_tables(k, "n0", "nb");
  return kg_finish(k, o->node);
}

// ---------------------------------------------------------------- backward

// Taps in decreasing (ky, kx): windows in increasing row-major order.
static void gather_smem(KGen *k, const PoolGeom *g) {
  int op = g->ho * g->wo;
  kg_line(k, "const float *d = s_dy + sl * %d;", op);
  if (g->is_max) kg_line(k, "const unsigned char *am = s_arg + sl * %d;", op);
  kg_line(k, "float acc = 0.0f;");
  for (int ky = g->kh - 1; ky >= 0; ky--)
    for (int kx = g->kw - 1; kx >= 0; kx--) {
      int j = ky * g->kw + kx;
      kg_line(k, "{");
      k->indent++;
      int dy0 = g->pt - ky, dx0 = g->pl - kx;
      kg_line(k, "const int ty = iy %c %d, tx = ix %c %d;", dy0 < 0 ? '-' : '+', dy0 < 0 ? -dy0 : dy0,
              dx0 < 0 ? '-' : '+', dx0 < 0 ? -dx0 : dx0);
      char cond[200];
      if (g->sh > 1 || g->sw > 1)
        snprintf(cond, sizeof cond, "ty >= 0 && ty < %d && tx >= 0 && tx < %d && ty %% %d == 0 && tx %% %d == 0",
                 g->ho * g->sh, g->wo * g->sw, g->sh, g->sw);
      else snprintf(cond, sizeof cond, "ty >= 0 && ty < %d && tx >= 0 && tx < %d", g->ho, g->wo);
      kg_line(k, "if (%s) {", cond);
      k->indent++;
      kg_line(k, "const int o = (ty / %d) * %d + tx / %d;", g->sh, g->wo, g->sw);
      if (g->is_max) kg_line(k, "if (am[o] == %d) acc += d[o];", j);
      else if (g->counted) kg_line(k, "acc += d[o] / %d.0f;", g->kh * g->kw);
      else {
        kg_line(k, "const int oy = ty / %d, ox = tx / %d;", g->sh, g->sw);
        count_line(k, g, "oy", "ox", "cnt");
        kg_line(k, "acc += d[o] / (float)cnt;");
      }
      k->indent--;
      kg_line(k, "}");
      k->indent--;
      kg_line(k, "}");
    }
}

static void argmax_smem(KGen *k, const PoolGeom *g) {
  kg_line(k, "for (int i = threadIdx.x; i < ns * %d; i += %d) {", g->ho * g->wo, k->block);
  k->indent++;
  size_t mark = k->body.len;
  kg_line(k, "const float *s = s_x + sl * %d + oy * %d + ox * %d;", g->hp * g->wp, g->sh * g->wp, g->sw);
  kg_line(k, "float best = s[0];");
  kg_line(k, "int arg = 0;");
  for (int ky = 0; ky < g->kh; ky++)
    for (int kx = 0; kx < g->kw; kx++)
      if (ky || kx)
        kg_line(k, "if (!(s[%d] <= best)) { best = s[%d]; arg = %d; }", ky * g->wp + kx,
                ky * g->wp + kx, ky * g->kw + kx);
  kg_line(k, "s_arg[i] = (unsigned char)arg;");
  loop_vars(k, mark, g->ho, g->wo, "oy", "ox");
  k->indent--;
  kg_line(k, "}");
}

// Direct variant: every window's argmax recomputed from global memory.
static void gather_direct(KGen *k, const PoolGeom *g, const FuseOp *o) {
  char ee[96];
  kg_line(k, "float acc = 0.0f;");
  kg_line(k, "for (int ky = %d; ky >= 0; ky--) {", g->kh - 1);
  k->indent++;
  kg_line(k, "const int ty = iy + %d - ky;", g->pt);
  kg_line(k, "if (ty < 0 || ty %% %d != 0 || ty / %d >= %d) continue;", g->sh, g->sh, g->ho);
  kg_line(k, "for (int kx = %d; kx >= 0; kx--) {", g->kw - 1);
  k->indent++;
  kg_line(k, "const int tx = ix + %d - kx;", g->pl);
  kg_line(k, "if (tx < 0 || tx %% %d != 0 || tx / %d >= %d) continue;", g->sw, g->sw, g->wo);
  kg_line(k, "const int oy = ty / %d, ox = tx / %d;", g->sh, g->sw);
  snprintf(ee, sizeof ee, "(oy * %d + ox)", g->wo);
  FxCtx y = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = ee, .chan_uniform = 1,
             .sc = g->c, .sh = g->ho, .sw = g->wo};
  kg_site_begin(k, &y);
  kg_line(k, "const float gy = %s;", kg_expr(k, &y, o->in_expr[1], 0));
  if (g->is_max) {
    kg_line(k, "float best = 0.0f;");
    kg_line(k, "int arg = -1;");
    kg_line(k, "for (int j = 0; j < %d; j++) {", g->kh * g->kw);
    k->indent++;
    kg_line(k, "const int wy = oy * %d - %d + j / %d, wx = ox * %d - %d + j %% %d;", g->sh, g->pt,
            g->kw, g->sw, g->pl, g->kw);
    kg_line(k, "float v = 0.0f;");
    kg_line(k, "if (wy >= 0 && wy < %d && wx >= 0 && wx < %d) {", g->h, g->w);
    k->indent++;
    snprintf(ee, sizeof ee, "(wy * %d + wx)", g->w);
    FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = ee, .chan_uniform = 1,
               .sc = g->c, .sh = g->h, .sw = g->w};
    kg_site_begin(k, &x);
    kg_line(k, "v = %s;", kg_expr(k, &x, o->in_expr[0], 0));
    k->indent--;
    kg_line(k, g->counted ? "}" : "} else continue;");
    kg_line(k, "if (arg < 0 || !(v <= best)) { best = v; arg = j; }");
    k->indent--;
    kg_line(k, "}");
    kg_line(k, "if (arg == ky * %d + kx) acc += gy;", g->kw);
  } else if (g->counted) {
    kg_line(k, "acc += gy / %d.0f;", g->kh * g->kw);
  } else {
    count_line(k, g, "oy", "ox", "cnt");
    kg_line(k, "acc += gy / (float)cnt;");
  }
  k->indent--;
  kg_line(k, "}");
  k->indent--;
  kg_line(k, "}");
}

int emit_pool_bwd(KGen *k) {
  const FuseGroup *G = k->G;
  const FuseOp *o = &k->fp->ops[G->anchor];
  const IrNode *n = &k->fp->g->nodes[o->node];
  PoolGeom g = pool_geom(k, n, o->out, n->in[2]);
  k->pattern = "pool_bwd";
  long long per = (long long)g.h * g.w;
  int nb = kg_choose_nb(k, g.c, per);
  long long bytes = 4LL * g.ho * g.wo + (g.is_max ? 4LL * g.hp * g.wp + (long long)g.ho * g.wo : 0);
  int ns = g.kh * g.kw <= 255 ? samples_staged(k, nb, bytes) : 0;
  k->grid_x = g.c;
  k->grid_nb = nb;
  k->table_nb = nb;
  head_common(k, nb);
  kg_epilogue_decls(k);
  if (ns) {
    int op = g.ho * g.wo;
    k->smem = (int)(ns * bytes);
    kg_line(k, "__shared__ float s_dy[%d];", ns * op);
    if (g.is_max) {
      kg_line(k, "__shared__ float s_x[%d];", ns * g.hp * g.wp);
      kg_line(k, "__shared__ unsigned char s_arg[%d];", ns * op);
    }
    kg_line(k, "for (int s0 = 0; s0 < nb; s0 += %d) {", ns);
    k->indent++;
    kg_line(k, "const int ns = min(%d, nb - s0);", ns);
    kg_line(k, "__syncthreads();");
    stage_dy(k, &g, o->in_expr[1]);
    if (g.is_max) {
      stage_padded(k, &g, o->in_expr[0]);
      kg_line(k, "__syncthreads();");
      argmax_smem(k, &g);
    }
    kg_line(k, "__syncthreads();");
  } else {
    kg_line(k, "{");
    k->indent++;
    kg_line(k, "const int s0 = 0, ns = nb;");
  }
  kg_line(k, "for (int i = threadIdx.x; i < ns * %d; i += %d) {", g.h * g.w, k->block);
  k->indent++;
  size_t mark = k->body.len;
  if (ns) gather_smem(k, &g);
  else gather_direct(k, &g, o);
  epilogue_at(k, g.c, g.h, g.w, o->out, o->accumulate, "acc");
  loop_vars(k, mark, g.h, g.w, "iy", "ix");
  k->indent--;
  kg_line(k, "}");
  k->indent--;
  kg_line(k, "}");
  kg_reduce_tail(k, "(int)gridDim.x");
  kg_fill_mask_tables(k, "n0", "nb");
  return kg_finish(k, o->node);
}
