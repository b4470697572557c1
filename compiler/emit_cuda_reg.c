// compiler/emit_cuda_reg.c — naming, deduplicating and registering a finished
// kernel (emit_cuda_int.h): the name's words, the slot declarations, the
// served-modules comment, the lookup by text hash, the launch step.
//
// The hashed text is the signature with "@NAME@" plus the slot declarations
// and the body: nothing that depends on tensor ids or names, so equal
// structure and shapes give one kernel.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda_int.h"
#include "compiler/fuse_internal.h"

// ---------------------------------------------------------------- registration

static const char *op_word(const FusePlan *fp, const FuseOp *o, char *buf, size_t n) {
  const IrNode *nd = &fp->g->nodes[o->node];
  switch (o->kind) {
    case FOP_DEF:
      switch (nd->kind) {
        case IR_BN: return "bnapply";
        case IR_BN_BWD: return "bnbwd";
        case IR_DROPPATH: return "droppath";
        case IR_CONCAT: return "copy";
        case IR_LINEAR: return "bias";
        case IR_CONV_BWD_DATA: return "zero";
        default: return ir_kind_name(nd->kind);
      }
    case FOP_BN_STATS: return "bnstats";
    case FOP_BNB_REDUCE: return "bnbwdsum";
    case FOP_BIAS_GRAD: return "biasgrad";
    case FOP_CONV_DW:
    case FOP_CONV_DW_DATA:
    case FOP_CONV_DW_FILTER: {
      const IrConvAttr *a = fuse_conv_attr(fp->g, nd);
      snprintf(buf, n, "dw%dx%ds%d%s", a->kh, a->kw, a->sh,
               o->kind == FOP_CONV_DW ? "" : o->kind == FOP_CONV_DW_DATA ? "data" : "filter");
      return buf;
    }
    case FOP_POOL:
    case FOP_POOL_BWD: {
      const IrPoolAttr *a = fuse_pool_attr(fp->g, nd);
      snprintf(buf, n, "%s%dx%ds%d%s", a->is_max ? "max" : "avg", a->kh, a->kw, a->sh,
               o->kind == FOP_POOL ? "" : "bwd");
      return buf;
    }
    case FOP_GAP: return "gap";
    case FOP_XENT: return "xent";
    default: return fuse_op_kind_name(o->kind);
  }
}

static const char *kind_word(IrKind k) {
  switch (k) {
    case IR_BN: return "bnapply";
    case IR_BN_BWD: return "bnbwd";
    case IR_CONCAT: return "copy";
    case IR_LINEAR: return "bias";
    case IR_ACCUM: return "accum";
    default: return ir_kind_name(k);
  }
}

static void tag_word(KGen *k, size_t *len, const char *w) {
  char probe[100], cur[128];
  snprintf(probe, sizeof probe, "_%s_", w);
  snprintf(cur, sizeof cur, "_%s_", k->tag);
  if (strstr(cur, probe)) return;  // said already
  size_t wl = strlen(w);
  if (*len + wl + 1 > 40) return;
  if (*len) k->tag[(*len)++] = '_';
  memcpy(k->tag + *len, w, wl + 1);
  *len += wl;
}

// Name words: for each op, what was inlined into it (in IR kind order), then
// what it is. "bnapply_relu" is a ReLU of a BN apply computed in its prologue.
static void make_tag(KGen *k) {
  if (k->tag[0] || !k->G) return;
  const FuseGroup *G = k->G;
  size_t len = 0;
  for (int i = 0; i < G->n_ops; i++) {
    const FuseOp *o = &k->fp->ops[G->ops[i]];
    for (int kind = 0; kind < IR_KIND_COUNT; kind++)
      if ((o->inl_kinds >> kind) & 1u) tag_word(k, &len, kind_word((IrKind)kind));
    char buf[48];
    tag_word(k, &len, op_word(k->fp, o, buf, sizeof buf));
  }
}

static const char *slot_type(const KGen *k, int i, int *is_float) {
  const CudaArg *a = &k->args[i];
  int w = k->arg_write[i];
  *is_float = 0;
  switch (a->kind) {
    case CUDA_ARG_TENSOR:
      if (k->pr->tensors[a->id].kind == IR_T_LABELS) return "const int *";
      *is_float = 1;
      return w ? "float *" : "const float *";
    case CUDA_ARG_SCRATCH: return "unsigned char *";
    case CUDA_ARG_MASKS: return "const NaoMask *";
    case CUDA_ARG_HYPER: return "const NaoHyper *";
    default:
      *is_float = 1;
      return w ? "float *" : "const float *";
  }
}

static void slot_comment(const KGen *k, int i, char *buf, size_t n) {
  const CudaArg *a = &k->args[i];
  const ParamTable *pt = k->nb->params;
  switch (a->kind) {
    case CUDA_ARG_TENSOR: {
      const IrTensor *t = &k->pr->tensors[a->id];
      if (t->kind == IR_T_ACT || t->kind == IR_T_LABELS)
        snprintf(buf, n, "(N, %d, %d, %d)%s", t->c, t->h, t->w, t->kind == IR_T_LABELS ? " labels" : "");
      else snprintf(buf, n, "[%d] %s", t->c, t->kind == IR_T_STAT ? "per channel" : "scalar");
      break;
    }
    case CUDA_ARG_PARAM:
    case CUDA_ARG_GRAD:
    case CUDA_ARG_BUFFER:
      snprintf(buf, n, "%s [%zu]", a->kind == CUDA_ARG_PARAM ? "parameter" : a->kind == CUDA_ARG_GRAD ? "gradient" : "buffer",
               pt && a->id < pt->n ? pt->items[a->id].numel : (size_t)0);
      break;
    case CUDA_ARG_SCRATCH: snprintf(buf, n, "scratch: counter, partial sums"); break;
    case CUDA_ARG_MASKS: snprintf(buf, n, "mask of this node"); break;
    case CUDA_ARG_HYPER: snprintf(buf, n, "optimizer hyperparameters"); break;
    case CUDA_ARG_PARAMS_ALL: snprintf(buf, n, "all parameters"); break;
    case CUDA_ARG_GRADS_ALL: snprintf(buf, n, "all gradients"); break;
    case CUDA_ARG_MOMENTUM_ALL: snprintf(buf, n, "all momentum buffers"); break;
  }
}

// Two tensor slots of one kernel overlap (a slice and its concatenation):
// __restrict__ would be a lie for them.
static int slots_alias(const KGen *k) {
  if (!k->fp) return 0;
  for (int i = 0; i < k->n_args; i++)
    for (int j = i + 1; j < k->n_args; j++) {
      if (k->args[i].kind != CUDA_ARG_TENSOR || k->args[j].kind != CUDA_ARG_TENSOR) continue;
      int ci, cj;
      int ri = fuse_root(k->fp, k->args[i].id, &ci), rj = fuse_root(k->fp, k->args[j].id, &cj);
      if (ri == rj && ci < cj + k->fp->tensors[k->args[j].id].c &&
          cj < ci + k->fp->tensors[k->args[i].id].c)
        return 1;
    }
  return 0;
}

static void served_names(const KGen *k, StrBuf *out, int *count) {
  const FuseGroup *G = k->G;
  int shown = 0;
  const char *last = NULL;
  for (int i = 0; i < G->n_ops; i++) {
    const IrNode *n = &k->fp->g->nodes[k->fp->ops[G->ops[i]].node];
    if (last && strcmp(last, n->name) == 0) continue;
    last = n->name;
    (*count)++;
    if (shown < 4) sb_printf(out, "%s%s (%s)", shown ? ", " : "", n->name, ir_kind_name(n->kind));
    shown++;
  }
  if (shown > 4) sb_printf(out, ", +%d more", shown - 4);
}

static int find_kernel(const CudaNetBuild *nb, uint64_t h, const KernelRec *want) {
  for (int i = 0; i < nb->n_kernels; i++) {
    const KernelRec *r = &nb->kernels[i];
    if (r->hash == h && r->block == want->block && r->grid_x == want->grid_x &&
        r->grid_nb == want->grid_nb && strcmp(r->pattern, want->pattern) == 0 &&
        strcmp(r->body, want->body) == 0)
      return i;
  }
  return -1;
}

static void build_body(KGen *k, StrBuf *body) {
  int alias = slots_alias(k);
  // At least 2 blocks of 256 threads per multiprocessor: a cap of 128
  // registers. Without the second argument ptxas aims at full occupancy and
  // spills the unrolled 5x5 kernels at 40 registers.
  int min_blocks = 512 / k->block > 0 ? 512 / k->block : 1;
  sb_printf(body, "extern \"C\" __global__ void __launch_bounds__(%d, %d) @NAME@(const NaoArgs a) {\n",
            k->block, min_blocks);
  for (int i = 0; i < k->n_args; i++) {
    int is_float;
    const char *ty = slot_type(k, i, &is_float);
    char com[128];
    slot_comment(k, i, com, sizeof com);
    sb_printf(body, "  %s%sp%d = (%s)a.p[%d];  // %s\n", ty,
              (is_float || k->args[i].kind == CUDA_ARG_TENSOR) && !alias ? "__restrict__ " : "", i,
              ty, i, com);
  }
  sb_append(body, k->head.data ? k->head.data : "");
  sb_append(body, k->body.data ? k->body.data : "");
  sb_append(body, "}\n");
}

int kg_finish(KGen *k, int node) {
  if (k->overflow) {
    snprintf(k->err, sizeof k->err, "a kernel needs more than %d arguments", NAO_KARGS_MAX);
    return -1;
  }
  if (k->err[0]) return -1;
  CudaNetBuild *nb = k->nb;
  make_tag(k);
  StrBuf body = {0};
  build_body(k, &body);
  KernelRec want = {0};
  want.body = body.data;
  want.pattern = (char *)k->pattern;
  want.block = k->block;
  want.grid_x = k->grid_x;
  want.grid_nb = k->grid_nb;
  uint64_t h = nao_hash64(body.data, body.len, 0);
  int idx = find_kernel(nb, h, &want);
  StrBuf served = {0};
  int count = 0;
  if (k->G) served_names(k, &served, &count);
  if (idx < 0) {
    if (nb->n_kernels == nb->cap_kernels) {
      nb->cap_kernels = nb->cap_kernels ? 2 * nb->cap_kernels : 64;
      nb->kernels = xrealloc(nb->kernels, sizeof *nb->kernels * (size_t)nb->cap_kernels);
    }
    idx = nb->n_kernels++;
    KernelRec *r = &nb->kernels[idx];
    memset(r, 0, sizeof *r);
    char name[160];
    if (k->G) snprintf(name, sizeof name, "k%d_%s_c%d_%dx%d", idx, k->tag, k->G->c, k->G->h, k->G->w);
    else snprintf(name, sizeof name, "k%d_%s", idx, k->tag);
    r->name = xstrdup(name);
    r->pattern = xstrdup(k->pattern);
    r->body = sb_steal(&body);
    r->hash = h;
    r->block = k->block;
    r->grid_x = k->grid_x;
    r->grid_nb = k->grid_nb;
    r->smem = k->smem;
    r->n_args = k->n_args;
    r->reduces = k->n_red > 0;
    if (k->n_red) {
      size_t part = (size_t)8 * (size_t)k->red_values * (size_t)k->grid_x;
      r->scratch_fixed = 256 + part;
      r->scratch_per_image = k->grid_nb > 0 ? part : 0;
    }
    r->comment = sb_steal(&served);
    r->n_served = count;
  } else {
    KernelRec *r = &nb->kernels[idx];
    r->n_served += count;
    sb_free(&body);
    sb_free(&served);
  }
  KernelRec *r = &nb->kernels[idx];
  if (r->scratch_fixed > nb->scratch_fixed) nb->scratch_fixed = r->scratch_fixed;
  if (r->scratch_per_image > nb->scratch_per_image) nb->scratch_per_image = r->scratch_per_image;
  int arg0 = k->pr->n_args;
  for (int i = 0; i < k->n_args; i++) prog_add_arg(k->pr, k->args[i].kind, k->args[i].id);
  prog_add_step(k->pr, CUDA_STEP_KERNEL, idx, -1, arg0, k->n_args, node);
  return 0;
}
