// compiler/emit_cuda_conv.c — depthwise convolutions: forward, and backward
// (gradient of the input and of the weight, in one kernel when both read the
// same dy).
//
// One block per (channel, chunk of samples), grid (C, ceil(N / NB)). Planes
// are staged in shared memory (the prologue, e.g. ReLU(BN(x)), applied once
// per element while staging), padded so the taps need no bounds checks; the
// KHxKW taps are unrolled with the channel's weights in registers. Planes too
// large for the shared-memory budget use a direct variant (global loads, taps
// in a loop). The weight gradient is a per-channel reduction of KH*KW sums:
// per-thread accumulators, a block sum, partials and the last block's
// finalize (deterministic: no float atomics).
#include <stdio.h>
#include <string.h>

#include "compiler/emit_cuda_int.h"
#include "compiler/fuse_internal.h"

typedef struct {
  int c, h, w, ho, wo;
  int kh, kw, sh, sw, pt, pl;
  int hp, wp;  // padded staging plane
} DwGeom;

static DwGeom dw_geom(const KGen *k, const IrNode *n, int x, int y) {
  const FusePlan *fp = k->fp;
  const IrConvAttr *a = fuse_conv_attr(fp->g, n);
  const IrTensor *tx = &fp->tensors[x], *ty = &fp->tensors[y];
  DwGeom g = {tx->c, tx->h, tx->w, ty->h, ty->w, a->kh, a->kw, a->sh, a->sw, a->pt, a->pl, 0, 0};
  g.hp = (g.ho - 1) * g.sh + g.kh;
  g.wp = (g.wo - 1) * g.sw + g.kw;
  return g;
}

static void head_common(KGen *k, int nb) {
  kg_head(k, "const int c = blockIdx.x;");
  kg_head(k, "const int n0 = blockIdx.y * %d;", nb);
  kg_head(k, "const int nb = min(%d, a.n - n0);", nb);
}

// Stages ns planes of expression `e` over (c, h, w) into s[sl * hp * wp + ...],
// with a border of `pad` value; plane origin at input (-pt, -pl).
static void stage(KGen *k, const char *arr, int e, int c, int h, int w, int hp, int wp, int pt,
                  int pl, const char *pad) {
  int plane = hp * wp;
  kg_line(k, "for (int i = threadIdx.x; i < ns * %d; i += %d) {", plane, k->block);
  k->indent++;
  size_t mark = k->body.len;
  kg_line(k, "float v = %s;", pad);
  kg_line(k, "if (iy >= 0 && iy < %d && ix >= 0 && ix < %d) {", h, w);
  k->indent++;
  size_t mark2 = k->body.len;
  FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = "e", .chan_uniform = 1,
             .sc = c, .sh = h, .sw = w};
  kg_site_begin(k, &x);
  kg_line(k, "v = %s;", kg_expr(k, &x, e, 0));
  KgVar in[1] = {{"e", ""}};
  snprintf(in[0].def, sizeof in[0].def, "const int e = iy * %d + ix;", w);
  kg_insert_vars(k, mark2, in, 1);
  k->indent--;
  kg_line(k, "}");
  kg_line(k, "%s[i] = v;", arr);
  KgVar vars[6] = {{"sl", ""}, {"r", ""}, {"iy", ""}, {"ix", ""}, {"nl", ""}, {"n", ""}};
  snprintf(vars[0].def, sizeof vars[0].def, "const int sl = i / %d;", plane);
  snprintf(vars[1].def, sizeof vars[1].def, "const int r = i - sl * %d;", plane);
  snprintf(vars[2].def, sizeof vars[2].def, "const int iy = r / %d - %d;", wp, pt);
  snprintf(vars[3].def, sizeof vars[3].def, "const int ix = r - (r / %d) * %d - %d;", wp, wp, pl);
  snprintf(vars[4].def, sizeof vars[4].def, "const int nl = s0 + sl;");
  snprintf(vars[5].def, sizeof vars[5].def, "const int n = n0 + nl;");
  kg_insert_vars(k, mark, vars, 6);
  k->indent--;
  kg_line(k, "}");
}

static void stage_dense(KGen *k, const char *arr, int e, int c, int h, int w) {
  int plane = h * w;
  kg_line(k, "for (int i = threadIdx.x; i < ns * %d; i += %d) {", plane, k->block);
  k->indent++;
  size_t mark = k->body.len;
  FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = "e", .chan_uniform = 1,
             .sc = c, .sh = h, .sw = w};
  kg_site_begin(k, &x);
  kg_line(k, "%s[i] = %s;", arr, kg_expr(k, &x, e, 0));
  KgVar vars[4] = {{"sl", ""}, {"e", ""}, {"nl", ""}, {"n", ""}};
  snprintf(vars[0].def, sizeof vars[0].def, "const int sl = i / %d;", plane);
  snprintf(vars[1].def, sizeof vars[1].def, "const int e = i - sl * %d;", plane);
  snprintf(vars[2].def, sizeof vars[2].def, "const int nl = s0 + sl;");
  snprintf(vars[3].def, sizeof vars[3].def, "const int n = n0 + nl;");
  kg_insert_vars(k, mark, vars, 4);
  k->indent--;
  kg_line(k, "}");
}

// Loop over ns planes of (h, w): defines sl, e, y, x, nl, n as used.
static size_t plane_loop_begin(KGen *k, int h, int w) {
  kg_line(k, "for (int i = threadIdx.x; i < ns * %d; i += %d) {", h * w, k->block);
  k->indent++;
  return k->body.len;
}

static void plane_loop_end(KGen *k, size_t mark, int h, int w, const char *yname,
                           const char *xname) {
  KgVar vars[6] = {{"sl", ""}, {"e", ""}, {yname, ""}, {xname, ""}, {"nl", ""}, {"n", ""}};
  snprintf(vars[0].def, sizeof vars[0].def, "const int sl = i / %d;", h * w);
  snprintf(vars[1].def, sizeof vars[1].def, "const int e = i - sl * %d;", h * w);
  snprintf(vars[2].def, sizeof vars[2].def, "const int %s = e / %d;", yname, w);
  snprintf(vars[3].def, sizeof vars[3].def, "const int %s = e - %s * %d;", xname, yname, w);
  snprintf(vars[4].def, sizeof vars[4].def, "const int nl = s0 + sl;");
  snprintf(vars[5].def, sizeof vars[5].def, "const int n = n0 + nl;");
  kg_insert_vars(k, mark, vars, 6);
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

static int samples_staged(const KGen *k, int nb, long long bytes_per_sample) {
  int lim = k->nb->opt.smem_limit > 0 ? k->nb->opt.smem_limit : 32768;
  if (bytes_per_sample > lim) return 0;
  int ns = (int)(lim / bytes_per_sample);
  return ns < nb ? ns : nb;
}

// ---------------------------------------------------------------- forward

int emit_conv_dw(KGen *k) {
  const FuseGroup *G = k->G;
  const FuseOp *o = &k->fp->ops[G->anchor];
  const IrNode *n = &k->fp->g->nodes[o->node];
  DwGeom g = dw_geom(k, n, n->in[0], o->out);
  int kk = g.kh * g.kw;
  k->pattern = "dwconv";
  int nb = kg_choose_nb(k, g.c, (long long)g.ho * g.wo);
  int ns = samples_staged(k, nb, 4LL * g.hp * g.wp);
  k->grid_x = g.c;
  k->grid_nb = nb;
  k->table_nb = nb;
  head_common(k, nb);
  int ws = kg_slot(k, CUDA_ARG_PARAM, n->param[0], 0);
  if (ns) {
    for (int j = 0; j < kk; j++) kg_head(k, "const float w%d = %s[c * %d + %d];", j, kg_ptr(k, ws), kk, j);
  }
  kg_epilogue_decls(k);
  if (ns) {
    k->smem = 4 * ns * g.hp * g.wp;
    kg_line(k, "__shared__ float s_x[%d];", ns * g.hp * g.wp);
    kg_line(k, "for (int s0 = 0; s0 < nb; s0 += %d) {", ns);
    k->indent++;
    kg_line(k, "const int ns = min(%d, nb - s0);", ns);
    kg_line(k, "__syncthreads();");
    stage(k, "s_x", o->in_expr[0], g.c, g.h, g.w, g.hp, g.wp, g.pt, g.pl, "0.0f");
    kg_line(k, "__syncthreads();");
    size_t mark = plane_loop_begin(k, g.ho, g.wo);
    kg_line(k, "const float *s = s_x + sl * %d + oy * %d + ox * %d;", g.hp * g.wp, g.sh * g.wp, g.sw);
    for (int ky = 0; ky < g.kh; ky++)
      for (int kx = 0; kx < g.kw; kx++) {
        int j = ky * g.kw + kx;
        if (j == 0) kg_line(k, "float acc = s[0] * w0;");
        else kg_line(k, "acc += s[%d] * w%d;", ky * g.wp + kx, j);
      }
    epilogue_at(k, g.c, g.ho, g.wo, o->out, o->accumulate, "acc");
    plane_loop_end(k, mark, g.ho, g.wo, "oy", "ox");
    k->indent--;
    kg_line(k, "}");
  } else {
    kg_line(k, "{");
    k->indent++;
    kg_line(k, "const int s0 = 0, ns = nb;");
    size_t mark = plane_loop_begin(k, g.ho, g.wo);
    kg_line(k, "float acc = 0.0f;");
    kg_line(k, "for (int ky = 0; ky < %d; ky++) {", g.kh);
    k->indent++;
    kg_line(k, "const int iy = oy * %d - %d + ky;", g.sh, g.pt);
    kg_line(k, "if (iy < 0 || iy >= %d) continue;", g.h);
    kg_line(k, "for (int kx = 0; kx < %d; kx++) {", g.kw);
    k->indent++;
    kg_line(k, "const int ix = ox * %d - %d + kx;", g.sw, g.pl);
    kg_line(k, "if (ix < 0 || ix >= %d) continue;", g.w);
    FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .chan_uniform = 1,
               .sc = g.c, .sh = g.h, .sw = g.w};
    char ee[64];
    snprintf(ee, sizeof ee, "(iy * %d + ix)", g.w);
    x.e = ee;
    kg_site_begin(k, &x);
    const char *v = kg_expr(k, &x, o->in_expr[0], 0);
    kg_line(k, "acc += %s * %s[c * %d + ky * %d + kx];", v, kg_ptr(k, ws), kk, g.kw);
    k->indent--;
    kg_line(k, "}");
    k->indent--;
    kg_line(k, "}");
    epilogue_at(k, g.c, g.ho, g.wo, o->out, o->accumulate, "acc");
    plane_loop_end(k, mark, g.ho, g.wo, "oy", "ox");
    k->indent--;
    kg_line(k, "}");
  }
  kg_reduce_tail(k, "(int)gridDim.x");
  kg_fill_mask_tables(k, "n0", "nb");
  return kg_finish(k, n - k->fp->g->nodes);
}

// ---------------------------------------------------------------- backward

// dx at (iy, ix) from staged dy (smem) and the weights in registers.
static void data_taps_smem(KGen *k, const DwGeom *g) {
  kg_line(k, "const float *d = s_dy + sl * %d;", g->ho * g->wo);
  kg_line(k, "float acc = 0.0f;");
  for (int ky = 0; ky < g->kh; ky++)
    for (int kx = 0; kx < g->kw; kx++) {
      int j = ky * g->kw + kx;
      int dy0 = g->pt - ky, dx0 = g->pl - kx;
      kg_line(k, "{");
      k->indent++;
      kg_line(k, "const int ty = iy %c %d, tx = ix %c %d;", dy0 < 0 ? '-' : '+', dy0 < 0 ? -dy0 : dy0,
              dx0 < 0 ? '-' : '+', dx0 < 0 ? -dx0 : dx0);
      if (g->sh > 1 || g->sw > 1)
        kg_line(k, "if (ty >= 0 && ty < %d && tx >= 0 && tx < %d && ty %% %d == 0 && tx %% %d == 0) "
                   "acc += d[(ty / %d) * %d + tx / %d] * w%d;",
                g->ho * g->sh, g->wo * g->sw, g->sh, g->sw, g->sh, g->wo, g->sw, j);
      else
        kg_line(k, "if (ty >= 0 && ty < %d && tx >= 0 && tx < %d) acc += d[ty * %d + tx] * w%d;",
                g->ho, g->wo, g->wo, j);
      k->indent--;
      kg_line(k, "}");
    }
}

static void filter_taps_smem(KGen *k, const DwGeom *g, int red) {
  kg_line(k, "const float gy = s_dy[sl * %d + e];", g->ho * g->wo);
  kg_line(k, "const float *s = s_x + sl * %d + oy * %d + ox * %d;", g->hp * g->wp, g->sh * g->wp,
          g->sw);
  for (int ky = 0; ky < g->kh; ky++)
    for (int kx = 0; kx < g->kw; kx++)
      kg_line(k, "r%d_%d += gy * s[%d];", red, ky * g->kw + kx, ky * g->wp + kx);
}

static int conv_bwd_smem(KGen *k, const DwGeom *g, const FuseOp *data, const FuseOp *filt,
                         int ns, int red, int ws) {
  int op_plane = g->ho * g->wo, x_plane = filt ? g->hp * g->wp : 0;
  int kk = g->kh * g->kw;
  if (data)
    for (int j = 0; j < kk; j++) kg_head(k, "const float w%d = %s[c * %d + %d];", j, kg_ptr(k, ws), kk, j);
  k->smem = 4 * ns * (op_plane + x_plane);
  kg_line(k, "__shared__ float s_dy[%d];", ns * op_plane);
  if (filt) kg_line(k, "__shared__ float s_x[%d];", ns * x_plane);
  kg_line(k, "for (int s0 = 0; s0 < nb; s0 += %d) {", ns);
  k->indent++;
  kg_line(k, "const int ns = min(%d, nb - s0);", ns);
  kg_line(k, "__syncthreads();");
  int dy_expr = data ? data->in_expr[0] : filt->in_expr[1];
  stage_dense(k, "s_dy", dy_expr, g->c, g->ho, g->wo);
  if (filt) stage(k, "s_x", filt->in_expr[0], g->c, g->h, g->w, g->hp, g->wp, g->pt, g->pl, "0.0f");
  kg_line(k, "__syncthreads();");
  if (data) {
    size_t mark = plane_loop_begin(k, g->h, g->w);
    data_taps_smem(k, g);
    epilogue_at(k, g->c, g->h, g->w, data->out, data->accumulate, "acc");
    plane_loop_end(k, mark, g->h, g->w, "iy", "ix");
  }
  if (filt) {
    size_t mark = plane_loop_begin(k, g->ho, g->wo);
    filter_taps_smem(k, g, red);
    plane_loop_end(k, mark, g->ho, g->wo, "oy", "ox");
  }
  k->indent--;
  kg_line(k, "}");
  return 0;
}

static int conv_bwd_direct(KGen *k, const DwGeom *g, const FuseOp *data, const FuseOp *filt,
                           int red, int ws) {
  int kk = g->kh * g->kw;
  char ee[64];
  kg_line(k, "{");
  k->indent++;
  kg_line(k, "const int s0 = 0, ns = nb;");
  if (data) {
    size_t mark = plane_loop_begin(k, g->h, g->w);
    kg_line(k, "float acc = 0.0f;");
    kg_line(k, "for (int ky = 0; ky < %d; ky++) {", g->kh);
    k->indent++;
    kg_line(k, "const int ty = iy + %d - ky;", g->pt);
    kg_line(k, "if (ty < 0 || ty %% %d != 0 || ty / %d >= %d) continue;", g->sh, g->sh, g->ho);
    kg_line(k, "for (int kx = 0; kx < %d; kx++) {", g->kw);
    k->indent++;
    kg_line(k, "const int tx = ix + %d - kx;", g->pl);
    kg_line(k, "if (tx < 0 || tx %% %d != 0 || tx / %d >= %d) continue;", g->sw, g->sw, g->wo);
    snprintf(ee, sizeof ee, "((ty / %d) * %d + tx / %d)", g->sh, g->wo, g->sw);
    FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = ee, .chan_uniform = 1,
               .sc = g->c, .sh = g->ho, .sw = g->wo};
    kg_site_begin(k, &x);
    const char *v = kg_expr(k, &x, data->in_expr[0], 0);
    kg_line(k, "acc += %s * %s[c * %d + ky * %d + kx];", v, kg_ptr(k, ws), kk, g->kw);
    k->indent--;
    kg_line(k, "}");
    k->indent--;
    kg_line(k, "}");
    epilogue_at(k, g->c, g->h, g->w, data->out, data->accumulate, "acc");
    plane_loop_end(k, mark, g->h, g->w, "iy", "ix");
  }
  if (filt) {
    size_t mark = plane_loop_begin(k, g->ho, g->wo);
    FxCtx y = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = "e", .chan_uniform = 1,
               .sc = g->c, .sh = g->ho, .sw = g->wo};
    kg_site_begin(k, &y);
    kg_line(k, "const float gy = %s;", kg_expr(k, &y, filt->in_expr[1], 0));
    for (int ky = 0; ky < g->kh; ky++)
      for (int kx = 0; kx < g->kw; kx++) {
        kg_line(k, "{");
        k->indent++;
        kg_line(k, "const int iy = oy * %d - %d, ix = ox * %d - %d;", g->sh, g->pt - ky, g->sw,
                g->pl - kx);
        kg_line(k, "if (iy >= 0 && iy < %d && ix >= 0 && ix < %d) {", g->h, g->w);
        k->indent++;
        snprintf(ee, sizeof ee, "(iy * %d + ix)", g->w);
        FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = ee, .chan_uniform = 1,
                   .sc = g->c, .sh = g->h, .sw = g->w};
        kg_site_begin(k, &x);
        kg_line(k, "r%d_%d += gy * %s;", red, ky * g->kw + kx, kg_expr(k, &x, filt->in_expr[0], 0));
        k->indent--;
        kg_line(k, "}");
        k->indent--;
        kg_line(k, "}");
      }
    plane_loop_end(k, mark, g->ho, g->wo, "oy", "ox");
  }
  k->indent--;
  kg_line(k, "}");
  return 0;
}

int emit_conv_dw_bwd(KGen *k) {
  const FuseGroup *G = k->G;
  const FusePlan *fp = k->fp;
  const FuseOp *a = &fp->ops[G->anchor];
  const FuseOp *data = a->kind == FOP_CONV_DW_DATA ? a : NULL;
  const FuseOp *filt = a->kind == FOP_CONV_DW_FILTER ? a : G->anchor2 >= 0 ? &fp->ops[G->anchor2] : NULL;
  const IrNode *n = &fp->g->nodes[a->node];
  // x (C, H, W) and y (C, HO, WO) of the forward convolution
  int x = data ? data->out : n->in[0];
  int y = data ? n->in[0] : n->in[1];
  DwGeom g = dw_geom(k, n, x, y);
  int kk = g.kh * g.kw;
  k->pattern = data && filt ? "dwconv_bwd" : data ? "dwconv_data" : "dwconv_filter";
  long long per = (long long)g.h * g.w > (long long)g.ho * g.wo ? (long long)g.h * g.w : (long long)g.ho * g.wo;
  int nb = kg_choose_nb(k, g.c, per);
  int ns = samples_staged(k, nb, 4LL * (g.ho * g.wo + (filt ? g.hp * g.wp : 0)));
  k->grid_x = g.c;
  k->grid_nb = nb;
  k->table_nb = nb;
  head_common(k, nb);
  int ws = data ? kg_slot(k, CUDA_ARG_PARAM, n->param[0], 0) : -1;
  int red = filt ? kg_add_reduction(k, (int)(filt - fp->ops), kk) : -1;
  kg_epilogue_decls(k);
  if (ns) conv_bwd_smem(k, &g, data, filt, ns, red, ws);
  else conv_bwd_direct(k, &g, data, filt, red, ws);
  kg_reduce_tail(k, "(int)gridDim.x");
  kg_fill_mask_tables(k, "n0", "nb");
  return kg_finish(k, a->node);
}
