// compiler/emit_cuda_misc.c — global average pooling, softmax cross-entropy,
// the optimizer's kernels, and the device preamble every kernel may use.
//
// GAP: a warp per (sample, channel) plane, a shuffle sum, the epilogue in
// lane 0 (dropout before the classifier fuses here). Cross-entropy: a warp per
// sample, three passes over its logits (max, sum of exponentials, softmax
// with the pointwise consumers of the softmax, e.g. the gradient of the
// logits, in the epilogue); the weighted mean loss is a reduction with the
// last-block finalize. Optimizer: the global gradient norm (partials, last
// block computes norm and clipping factor on the device, no host round trip)
// and SGD with momentum and weight decay over the flat arrays, float4.
#include <stdio.h>

#include "compiler/emit_cuda_int.h"
#include "compiler/fuse_internal.h"

// ---------------------------------------------------------------- GAP

int emit_gap(KGen *k) {
  const FuseGroup *G = k->G;
  const FuseOp *o = &k->fp->ops[G->anchor];
  const IrNode *n = &k->fp->g->nodes[o->node];
  const IrTensor *tx = &k->fp->tensors[n->in[0]];
  int hw = tx->h * tx->w;
  int warps = k->block / 32;
  k->pattern = "gap";
  int nb = kg_choose_nb(k, tx->c, hw);
  k->grid_x = tx->c;
  k->grid_nb = nb;
  k->table_nb = nb;
  kg_head(k, "const int c = blockIdx.x;");
  kg_head(k, "const int n0 = blockIdx.y * %d;", nb);
  kg_head(k, "const int nb = min(%d, a.n - n0);", nb);
  kg_head(k, "const int lane = threadIdx.x & 31;");
  kg_epilogue_decls(k);
  kg_line(k, "for (int nl = threadIdx.x >> 5; nl < nb; nl += %d) {", warps);
  k->indent++;
  size_t mark = k->body.len;
  kg_line(k, "float s = 0.0f;");
  kg_line(k, "for (int e = lane; e < %d; e += 32) {", hw);
  k->indent++;
  FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = "e", .chan_uniform = 1,
             .sc = tx->c, .sh = tx->h, .sw = tx->w};
  kg_site_begin(k, &x);
  kg_line(k, "s += %s;", kg_expr(k, &x, o->in_expr[0], 0));
  k->indent--;
  kg_line(k, "}");
  for (int off = 16; off > 0; off >>= 1) kg_line(k, "s += __shfl_xor_sync(0xffffffffu, s, %d);", off);
  kg_line(k, "if (lane == 0) {");
  k->indent++;
  kg_line(k, "const float acc = s / %d.0f;", hw);
  FxCtx y = {.lanes = 1, .n = "n", .nl = "nl", .c = "c", .e = "0", .chan_uniform = 1,
             .sc = tx->c, .sh = 1, .sw = 1};
  kg_site_begin(k, &y);
  snprintf(y.result[0], KG_NAME, "acc");
  kg_set_value(k, &y, o->out, o->accumulate);
  kg_epilogue(k, &y);
  kg_flush_stores(k, &y);
  k->indent--;
  kg_line(k, "}");
  KgVar vars[1] = {{"n", "const int n = n0 + nl;"}};
  kg_insert_vars(k, mark, vars, 1);
  k->indent--;
  kg_line(k, "}");
  kg_fill_mask_tables(k, "n0", "nb");
  return kg_finish(k, o->node);
}

// ---------------------------------------------------------------- cross-entropy

int emit_xent(KGen *k) {
  const FuseGroup *G = k->G;
  const FusePlan *fp = k->fp;
  int opi = G->anchor;
  const FuseOp *o = &fp->ops[opi];
  const IrNode *n = &fp->g->nodes[o->node];
  const IrXentAttr *a = fuse_xent_attr(fp->g, n);
  const IrTensor *tl = &fp->tensors[n->in[0]];
  int K = tl->c;
  int warps = k->block / 32;
  k->pattern = "xent";
  int nb = warps;
  k->grid_x = 1;
  k->grid_nb = nb;
  k->table_nb = nb;
  kg_head(k, "const int n0 = blockIdx.y * %d;", nb);
  kg_head(k, "const int nb = min(%d, a.n - n0);", nb);
  kg_head(k, "const int lane = threadIdx.x & 31;");
  int red = kg_add_reduction(k, opi, 1);
  kg_epilogue_decls(k);
  int lab = kg_slot(k, CUDA_ARG_TENSOR, n->in[1], 0);
  kg_line(k, "for (int nl = threadIdx.x >> 5; nl < nb; nl += %d) {", warps);
  k->indent++;
  kg_line(k, "const int n = n0 + nl;");
  FxCtx x = {.lanes = 1, .n = "n", .nl = "nl", .c = "k", .e = "0", .chan_uniform = 0,
             .sc = K, .sh = 1, .sw = 1};
  kg_line(k, "float m = __int_as_float(0xff800000);");
  kg_line(k, "for (int k = lane; k < %d; k += 32) {", K);
  k->indent++;
  kg_site_begin(k, &x);
  kg_line(k, "m = fmaxf(m, %s);", kg_expr(k, &x, o->in_expr[0], 0));
  k->indent--;
  kg_line(k, "}");
  for (int off = 16; off > 0; off >>= 1) kg_line(k, "m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, %d));", off);
  kg_line(k, "float s = 0.0f, sx = 0.0f;");
  kg_line(k, "for (int k = lane; k < %d; k += 32) {", K);
  k->indent++;
  kg_site_begin(k, &x);
  kg_line(k, "const float xk = %s;", kg_expr(k, &x, o->in_expr[0], 0));
  kg_line(k, "s += expf(xk - m);");
  kg_line(k, "sx += xk;");
  k->indent--;
  kg_line(k, "}");
  for (int off = 16; off > 0; off >>= 1) {
    kg_line(k, "s += __shfl_xor_sync(0xffffffffu, s, %d);", off);
    kg_line(k, "sx += __shfl_xor_sync(0xffffffffu, sx, %d);", off);
  }
  kg_line(k, "const float lse = m + logf(s);");
  kg_line(k, "if (lane == 0) {");
  k->indent++;
  kg_line(k, "const int y = %s[(long long)n * %lld];", kg_ptr(k, lab), kg_ss(k, n->in[1]));
  kg_line(k, "float xy = 0.0f;");
  kg_line(k, "if (y >= 0 && y < %d) {", K);
  k->indent++;
  FxCtx xl = x;
  xl.c = "y";
  kg_site_begin(k, &xl);
  kg_line(k, "xy = %s;", kg_expr(k, &xl, o->in_expr[0], 0));
  k->indent--;
  kg_line(k, "}");
  char f1[48], f2[48], fk[48];
  kg_float(f1, sizeof f1, 1.0f - a->smoothing);
  kg_float(f2, sizeof f2, a->smoothing / (float)K);
  kg_float(fk, sizeof fk, (float)K);
  kg_line(k, "r%d_0 += -(%s * (xy - lse) + %s * (sx - %s * lse));", red, f1, f2, fk);
  k->indent--;
  kg_line(k, "}");
  if (kg_has_epilogue_work(k) || fp->stored[o->out]) {
    kg_line(k, "for (int k = lane; k < %d; k += 32) {", K);
    k->indent++;
    kg_site_begin(k, &x);
    kg_line(k, "const float p = expf(%s - m) / s;", kg_expr(k, &x, o->in_expr[0], 0));
    snprintf(x.result[0], KG_NAME, "p");
    kg_set_value(k, &x, o->out, 0);
    kg_epilogue(k, &x);
    kg_flush_stores(k, &x);
    k->indent--;
    kg_line(k, "}");
  }
  k->indent--;
  kg_line(k, "}");
  kg_reduce_tail(k, "1");
  kg_fill_mask_tables(k, "n0", "nb");
  return kg_finish(k, o->node);
}

// ---------------------------------------------------------------- optimizer

static void norm_finalize(KGen *k, int red, const char *cc) {
  (void)cc;
  kg_line(k, "const double norm = sqrt(f%d_0);", red);
  kg_line(k, "const float mx = p3->max_norm;");
  kg_line(k, "const float coef = mx / ((float)norm + 1e-6f);");
  kg_line(k, "p2[0] = (float)norm;");
  kg_line(k, "p2[1] = mx > 0.0f && coef < 1.0f ? coef : 1.0f;");
}

static void grid_stride(KGen *k, long long total, int *gx) {
  long long want = (total / 4 + k->block - 1) / k->block;
  long long cap = 4LL * (k->nb->opt.num_sms > 0 ? k->nb->opt.num_sms : 132);
  if (want > cap) want = cap;
  if (want < 1) want = 1;
  *gx = (int)want;
}

void emit_update_kernels(CudaNetBuild *nb, ProgRec *pr, int norm_tensor) {
  long long total = (long long)(nb->params ? nb->params->n_trainable : 0);
  long long n4 = total / 4;
  // gradient norm and clipping factor
  KGen k;
  kg_init(&k, nb, pr, NULL, NULL);
  k.pattern = "gradnorm";
  snprintf(k.tag, sizeof k.tag, "gradnorm_%lld", total);
  grid_stride(&k, total, &k.grid_x);
  kg_slot(&k, CUDA_ARG_GRADS_ALL, 0, 0);
  kg_slot(&k, CUDA_ARG_SCRATCH, 0, 1);
  kg_slot(&k, CUDA_ARG_TENSOR, norm_tensor, 1);
  kg_slot(&k, CUDA_ARG_HYPER, 0, 0);
  k.custom_finalize = norm_finalize;
  int red = kg_add_reduction(&k, -1, 1);
  kg_epilogue_decls(&k);
  kg_line(&k, "for (long long i = (long long)blockIdx.x * %d + threadIdx.x; i < %lldll; i += (long long)gridDim.x * %d) {",
          k.block, n4, k.block);
  kg_line(&k, "  const float4 g = ((const float4 *)p0)[i];");
  kg_line(&k, "  r%d_0 += g.x * g.x + g.y * g.y + g.z * g.z + g.w * g.w;", red);
  kg_line(&k, "}");
  if (total % 4)
    kg_line(&k, "if (blockIdx.x == 0 && threadIdx.x < %lld) r%d_0 += p0[%lldll + threadIdx.x] * p0[%lldll + threadIdx.x];",
            total % 4, red, n4 * 4, n4 * 4);
  kg_reduce_tail(&k, "1");
  kg_finish(&k, -1);
  kg_free(&k);
  // SGD with momentum and weight decay, gradients scaled by the clipping factor
  kg_init(&k, nb, pr, NULL, NULL);
  k.pattern = "sgd";
  snprintf(k.tag, sizeof k.tag, "sgd_%lld", total);
  grid_stride(&k, total, &k.grid_x);
  kg_slot(&k, CUDA_ARG_PARAMS_ALL, 0, 1);
  kg_slot(&k, CUDA_ARG_GRADS_ALL, 0, 0);
  kg_slot(&k, CUDA_ARG_MOMENTUM_ALL, 0, 1);
  kg_slot(&k, CUDA_ARG_HYPER, 0, 0);
  kg_slot(&k, CUDA_ARG_TENSOR, norm_tensor, 0);
  kg_head(&k, "const float clip = p4[1], lr = p3->lr, mom = p3->momentum, wd = p3->weight_decay;");
  kg_line(&k, "for (long long i = (long long)blockIdx.x * %d + threadIdx.x; i < %lldll; i += (long long)gridDim.x * %d) {",
          k.block, n4, k.block);
  kg_line(&k, "  const float4 g = ((const float4 *)p1)[i];");
  kg_line(&k, "  float4 w = ((float4 *)p0)[i];");
  kg_line(&k, "  float4 b = ((float4 *)p2)[i];");
  static const char comp[4] = {'x', 'y', 'z', 'w'};
  for (int l = 0; l < 4; l++) {
    kg_line(&k, "  b.%c = mom * b.%c + (g.%c * clip + wd * w.%c);", comp[l], comp[l], comp[l], comp[l]);
    kg_line(&k, "  w.%c = w.%c - lr * b.%c;", comp[l], comp[l], comp[l]);
  }
  kg_line(&k, "  ((float4 *)p0)[i] = w;");
  kg_line(&k, "  ((float4 *)p2)[i] = b;");
  kg_line(&k, "}");
  if (total % 4) {
    kg_line(&k, "if (blockIdx.x == 0 && threadIdx.x < %lld) {", total % 4);
    kg_line(&k, "  const long long i = %lldll + threadIdx.x;", n4 * 4);
    kg_line(&k, "  p2[i] = mom * p2[i] + (p1[i] * clip + wd * p0[i]);");
    kg_line(&k, "  p0[i] = p0[i] - lr * p2[i];");
    kg_line(&k, "}");
  }
  kg_finish(&k, -1);
  kg_free(&k);
}

// ---------------------------------------------------------------- preamble

void emit_device_preamble(StrBuf *out) {
  sb_append(out,
            "// ---------------------------------------------------------------- preamble\n"
            "// Types and helpers every kernel may use. No includes: NVRTC needs no headers.\n"
            "typedef unsigned long long nao_u64;\n");
  sb_printf(out, "typedef struct { void *p[%d]; int n; } NaoArgs;  // cuda_plan.h NaoArgs\n",
            NAO_KARGS_MAX);
  sb_append(out,
            "typedef struct { nao_u64 key; float keep, scale; } NaoMask;\n"
            "typedef struct { float lr, momentum, weight_decay, max_norm; } NaoHyper;\n"
            "\n"
            "// Device twin of runtime/rng.h: rng_mix64 and rng_hash_uniform, so that\n"
            "// element i of a mask is the CPU backend's element i.\n"
            "__device__ __forceinline__ nao_u64 nao_mix64(nao_u64 z) {\n"
            "  z += 0x9e3779b97f4a7c15ull;\n"
            "  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;\n"
            "  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;\n"
            "  return z ^ (z >> 31);\n"
            "}\n"
            "__device__ __forceinline__ float nao_mask(const NaoMask *m, nao_u64 i) {\n"
            "  const float u = (float)(nao_mix64(m->key ^ nao_mix64(i)) >> 40) * (1.0f / 16777216.0f);\n"
            "  return u < m->keep ? m->scale : 0.0f;\n"
            "}\n"
            "\n"
            "// Sum over the block (blockDim.x a multiple of 32); valid in thread 0.\n"
            "// Fixed order: the result does not depend on scheduling.\n"
            "__device__ __forceinline__ double nao_block_sum(double v, double *s_red) {\n"
            "  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);\n"
            "  __syncthreads();\n"
            "  if ((threadIdx.x & 31) == 0) s_red[threadIdx.x >> 5] = v;\n"
            "  __syncthreads();\n"
            "  if (threadIdx.x < 32) {\n"
            "    v = threadIdx.x < (blockDim.x >> 5) ? s_red[threadIdx.x] : 0.0;\n"
            "    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);\n"
            "  }\n"
            "  return v;\n"
            "}\n");
}
