// compiler/emit_cuda_file.c — the text of net.cu (emit_cuda.h).
//
// In order: a header comment (source name as given, options, statistics), the
// device code between #ifdef __CUDACC_RTC__ / #endif (NVRTC defines the macro;
// the host compiler skips it), and the plan between #ifndef __CUDACC_RTC__ /
// #endif: `static const` arrays of the structures of cuda_plan.h, ir.h and
// params.h, a `static const CudaNet nao_net`, and nao_net_get() returning it.
// Contract structures are printed with designated initializers (robust to
// field order), zero fields omitted. Nothing machine-specific is printed.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compiler/emit_cuda_int.h"

static void put_str(StrBuf *out, const char *s) {
  sb_append(out, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sb_printf(out, "\\%c", c);
    else if (c < 32 || c >= 127) sb_printf(out, "\\%03o", c);
    else sb_appendn(out, (const char *)&c, 1);
  }
  sb_append(out, "\"");
}

static void put_float(StrBuf *out, float f) {
  if (!isfinite(f)) f = 0.0f;  // no attribute of the IR is infinite
  char t[48];
  snprintf(t, sizeof t, "%.9g", (double)f);
  if (!strpbrk(t, ".e")) strcat(t, ".0");
  sb_printf(out, "%sf", t);
}

static const char *kind_enum(IrKind k) {
  static const char *const names[IR_KIND_COUNT] = {
      "IR_INPUT", "IR_LABELS", "IR_CONV", "IR_BN", "IR_RELU", "IR_ADD", "IR_CONCAT", "IR_POOL",
      "IR_GAP", "IR_LINEAR", "IR_DROPOUT", "IR_DROPPATH", "IR_XENT", "IR_CONV_BWD_DATA",
      "IR_CONV_BWD_FILTER", "IR_BN_BWD", "IR_RELU_BWD", "IR_POOL_BWD", "IR_GAP_BWD",
      "IR_LINEAR_BWD", "IR_MASK_BWD", "IR_XENT_BWD", "IR_ACCUM"};
  return (int)k >= 0 && k < IR_KIND_COUNT ? names[k] : "IR_INPUT";
}

static const char *tensor_kind_enum(IrTensorKind k) {
  switch (k) {
    case IR_T_LABELS: return "IR_T_LABELS";
    case IR_T_STAT: return "IR_T_STAT";
    case IR_T_SCALAR: return "IR_T_SCALAR";
    default: return "IR_T_ACT";
  }
}

static const char *init_enum(ParamInit i) {
  switch (i) {
    case PINIT_LINEAR_BIAS: return "PINIT_LINEAR_BIAS";
    case PINIT_ONES: return "PINIT_ONES";
    case PINIT_ZEROS: return "PINIT_ZEROS";
    default: return "PINIT_KAIMING_NORMAL";
  }
}

static void put_ints(StrBuf *out, const int *v, int n) {
  sb_append(out, "{");
  for (int i = 0; i < n; i++) sb_printf(out, "%s%d", i ? ", " : "", v[i]);
  sb_append(out, "}");
}

// ---------------------------------------------------------------- contract structs

static void put_params(StrBuf *out, const CudaNet *net) {
  if (!net->n_params) return;
  sb_append(out, "static const ParamInfo nao_params[] = {\n");
  for (int i = 0; i < net->n_params; i++) {
    const ParamInfo *p = &net->params[i];
    sb_append(out, "  {.name = ");
    put_str(out, p->name);
    sb_printf(out, ", .ndim = %d, .dims = ", p->ndim);
    put_ints(out, p->dims, p->ndim);
    sb_printf(out, ", .numel = %zu, .trainable = %d, .offset = %zu, .init = %s, .fan_in = %d",
              p->numel, p->trainable, p->offset, init_enum(p->init), p->fan_in);
    if (p->aux) sb_append(out, ", .aux = 1");
    sb_append(out, "},\n");
  }
  sb_append(out, "};\n\n");
}

static void put_attr(StrBuf *out, const IrNode *n) {
  switch (n->kind) {
    case IR_CONV:
    case IR_CONV_BWD_DATA:
    case IR_CONV_BWD_FILTER: {
      const IrConvAttr *a = &n->a.conv;
      sb_printf(out, ", .a.conv = {%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d}", a->kh, a->kw,
                a->sh, a->sw, a->pt, a->pl, a->pb, a->pr, a->groups, a->cin, a->cout);
      break;
    }
    case IR_POOL:
    case IR_POOL_BWD: {
      const IrPoolAttr *a = &n->a.pool;
      sb_printf(out, ", .a.pool = {%d, %d, %d, %d, %d, %d, %d, %d, %d, %d}", a->is_max, a->kh,
                a->kw, a->sh, a->sw, a->pt, a->pl, a->pb, a->pr, a->pad_counted);
      break;
    }
    case IR_BN:
    case IR_BN_BWD:
      sb_append(out, ", .a.bn = {");
      put_float(out, n->a.bn.eps);
      sb_append(out, ", ");
      put_float(out, n->a.bn.momentum);
      sb_printf(out, ", %d, %d}", n->a.bn.batch_stats, n->a.bn.update_running);
      break;
    case IR_DROPOUT:
    case IR_DROPPATH:
    case IR_MASK_BWD:
      sb_append(out, ", .a.drop = {");
      put_float(out, n->a.drop.keep);
      sb_printf(out, ", %d, %d}", n->a.drop.cell, n->a.drop.n_cells);
      break;
    case IR_XENT:
    case IR_XENT_BWD:
      sb_append(out, ", .a.xent = {");
      put_float(out, n->a.xent.smoothing);
      sb_append(out, ", ");
      put_float(out, n->a.xent.weight);
      sb_append(out, "}");
      break;
    default:
      break;
  }
}

static void put_nodes(StrBuf *out, const char *pre, const CudaProgram *p) {
  if (!p->n_nodes) return;
  sb_printf(out, "static const IrNode %s_nodes[] = {\n", pre);
  for (int i = 0; i < p->n_nodes; i++) {
    const IrNode *n = &p->nodes[i];
    sb_printf(out, "  {.kind = %s, .name = ", kind_enum(n->kind));
    put_str(out, n->name);
    sb_printf(out, ", .n_in = %d, .n_out = %d, .n_param = %d", n->n_in, n->n_out, n->n_param);
    if (n->n_in) {
      sb_append(out, ", .in = ");
      put_ints(out, n->in, n->n_in);
    }
    if (n->n_out) {
      sb_append(out, ", .out = ");
      put_ints(out, n->out, n->n_out);
    }
    if (n->n_param) {
      sb_append(out, ", .param = ");
      put_ints(out, n->param, n->n_param);
    }
    if (n->accumulate) sb_printf(out, ", .accumulate = %d", n->accumulate);
    sb_printf(out, ", .fwd = %d", n->fwd);
    if (n->aux) sb_append(out, ", .aux = 1");
    put_attr(out, n);
    sb_append(out, "},\n");
  }
  sb_append(out, "};\n");
}

static void put_tensors(StrBuf *out, const char *pre, const CudaProgram *p) {
  sb_printf(out, "static const IrTensor %s_tensors[] = {\n", pre);
  for (int i = 0; i < p->n_tensors; i++) {
    const IrTensor *t = &p->tensors[i];
    sb_append(out, "  {.name = ");
    put_str(out, t->name);
    sb_printf(out, ", .kind = %s, .c = %d, .h = %d, .w = %d, .producer = %d, .view_of = %d",
              tensor_kind_enum(t->kind), t->c, t->h, t->w, t->producer, t->view_of);
    if (t->chan_offset) sb_printf(out, ", .chan_offset = %d", t->chan_offset);
    sb_printf(out, ", .grad_of = %d},\n", t->grad_of);
  }
  sb_append(out, "};\n");
  sb_printf(out, "static const PlanLoc %s_locs[] = {  // region, scaled, unscaled, sample_stride\n", pre);
  static const char *const reg[] = {"LOC_NONE", "LOC_ARENA", "LOC_FIXED"};
  for (int i = 0; i < p->n_tensors; i++) {
    const PlanLoc *l = &p->locs[i];
    sb_printf(out, "  {%s, %zu, %zu, %zu},  // %d\n", reg[l->region], l->scaled, l->unscaled,
              l->sample_stride, i);
  }
  sb_append(out, "};\n");
}

// ---------------------------------------------------------------- cuda structs

static const char *step_kind(CudaStepKind k) {
  switch (k) {
    case CUDA_STEP_CONV_FWD: return "CUDA_STEP_CONV_FWD";
    case CUDA_STEP_CONV_BWD_DATA: return "CUDA_STEP_CONV_BWD_DATA";
    case CUDA_STEP_CONV_BWD_FILTER: return "CUDA_STEP_CONV_BWD_FILTER";
    case CUDA_STEP_GEMM: return "CUDA_STEP_GEMM";
    default: return "CUDA_STEP_KERNEL";
  }
}

static const char *arg_kind(CudaArgKind k) {
  static const char *const names[] = {
      "CUDA_ARG_TENSOR",       "CUDA_ARG_PARAM",        "CUDA_ARG_GRAD",
      "CUDA_ARG_BUFFER",       "CUDA_ARG_PARAMS_ALL",   "CUDA_ARG_GRADS_ALL",
      "CUDA_ARG_MOMENTUM_ALL", "CUDA_ARG_SCRATCH",      "CUDA_ARG_MASKS",
      "CUDA_ARG_HYPER"};
  return (int)k >= 0 && k <= CUDA_ARG_HYPER ? names[k] : "CUDA_ARG_TENSOR";
}

static void put_steps(StrBuf *out, const char *pre, const CudaNet *net, const CudaProgram *p) {
  if (p->n_steps) {
    sb_printf(out, "static const CudaStep %s_steps[] = {  // kind, kernel, desc, arg0, n_args, node\n", pre);
    for (int i = 0; i < p->n_steps; i++) {
      const CudaStep *s = &p->steps[i];
      sb_printf(out, "  {%s, %d, %d, %d, %d, %d},  // %d ", step_kind(s->kind), s->kernel, s->desc,
                s->arg0, s->n_args, s->node, i);
      if (s->kind == CUDA_STEP_KERNEL) sb_append(out, net->kernels[s->kernel].name);
      else if (s->node >= 0) sb_append(out, p->nodes[s->node].name);
      sb_append(out, "\n");
    }
    sb_append(out, "};\n");
  }
  if (p->n_args) {
    sb_printf(out, "static const CudaArg %s_args[] = {\n", pre);
    for (int i = 0; i < p->n_args; i++)
      sb_printf(out, "  {%s, %d},\n", arg_kind(p->args[i].kind), p->args[i].id);
    sb_append(out, "};\n");
  }
  if (p->n_order) {
    sb_printf(out, "static const int %s_order[] = {", pre);
    for (int i = 0; i < p->n_order; i++)
      sb_printf(out, "%s%d,", i % 20 ? " " : "\n  ", p->order[i]);
    sb_append(out, "\n};\n");
  }
}

static void put_descs(StrBuf *out, const char *pre, const CudaProgram *p) {
  if (p->n_convs) {
    sb_printf(out, "static const CudaConvDesc %s_convs[] = {\n", pre);
    for (int i = 0; i < p->n_convs; i++) {
      const CudaConvDesc *d = &p->convs[i];
      sb_printf(out, "  {.c_in = %d, .h_in = %d, .w_in = %d, .x_offset = %lld, .x_ns = %lld, "
                     ".x_cs = %lld, .x_hs = %lld, .c_out = %d, .h_out = %d, .w_out = %d, "
                     ".y_ns = %lld, .kh = %d, .kw = %d, .stride_h = %d, .stride_w = %d, "
                     ".groups = %d, .pad_h = %d, .pad_w = %d, .pad_h_end = %d, .pad_w_end = %d, "
                     ".asymmetric = %d, .beta = ",
                d->c_in, d->h_in, d->w_in, d->x_offset, d->x_ns, d->x_cs, d->x_hs, d->c_out,
                d->h_out, d->w_out, d->y_ns, d->kh, d->kw, d->stride_h, d->stride_w, d->groups,
                d->pad_h, d->pad_w, d->pad_h_end, d->pad_w_end, d->asymmetric);
      put_float(out, d->beta);
      sb_printf(out, ", .tf32 = %d},\n", d->tf32);
    }
    sb_append(out, "};\n");
  }
  if (p->n_gemms) {
    sb_printf(out, "static const CudaGemmDesc %s_gemms[] = {\n", pre);
    for (int i = 0; i < p->n_gemms; i++) {
      const CudaGemmDesc *d = &p->gemms[i];
      sb_printf(out, "  {.trans_a = %d, .trans_b = %d, .m_n = %d, .n_n = %d, .k_n = %d, "
                     ".batch_n = %d, .m = %lld, .n = %lld, .k = %lld, .batch = %lld, .lda = %lld, "
                     ".ldb = %lld, .ldc = %lld, .stride_a = %lld, .stride_b = %lld, "
                     ".stride_c = %lld, .alpha = ",
                d->trans_a, d->trans_b, d->m_n, d->n_n, d->k_n, d->batch_n, d->m, d->n, d->k,
                d->batch, d->lda, d->ldb, d->ldc, d->stride_a, d->stride_b, d->stride_c);
      put_float(out, d->alpha);
      sb_append(out, ", .beta = ");
      put_float(out, d->beta);
      sb_printf(out, ", .tf32 = %d},\n", d->tf32);
    }
    sb_append(out, "};\n");
  }
  if (p->n_masks) {
    sb_printf(out, "static const CudaMaskInfo %s_masks[] = {\n", pre);
    for (int i = 0; i < p->n_masks; i++) {
      const CudaMaskInfo *m = &p->masks[i];
      sb_printf(out, "  {.node = %d, .kind = %s, .attr = {", m->node,
                m->kind == CUDA_MASK_DROPPATH ? "CUDA_MASK_DROPPATH" : "CUDA_MASK_DROPOUT");
      put_float(out, m->attr.keep);
      sb_printf(out, ", %d, %d}},\n", m->attr.cell, m->attr.n_cells);
    }
    sb_append(out, "};\n");
  }
}

static void put_program_struct(StrBuf *out, const char *pre, const CudaProgram *p) {
  sb_append(out, "  {.name = ");
  put_str(out, p->name);
  sb_printf(out, ", .mode = %d,\n", p->mode);
  sb_printf(out, "   .n_nodes = %d, .nodes = %s%s,\n", p->n_nodes, p->n_nodes ? pre : "NULL",
            p->n_nodes ? "_nodes" : "");
  sb_printf(out, "   .n_tensors = %d, .n_ir_tensors = %d, .tensors = %s_tensors, .locs = %s_locs,\n",
            p->n_tensors, p->n_ir_tensors, pre, pre);
  sb_printf(out, "   .arena_per_image = %zu, .fixed_floats = %zu,\n", p->arena_per_image,
            p->fixed_floats);
#define ARR(field, count, suffix)                                                        \
  sb_printf(out, "   .n_" #field " = %d, ." #field " = %s%s,\n", count, count ? pre : "NULL", \
            count ? suffix : "")
  ARR(order, p->n_order, "_order");
  ARR(steps, p->n_steps, "_steps");
  ARR(args, p->n_args, "_args");
  ARR(convs, p->n_convs, "_convs");
  ARR(gemms, p->n_gemms, "_gemms");
  ARR(masks, p->n_masks, "_masks");
#undef ARR
  sb_printf(out, "   .input = %d, .labels = %d, .logits = %d, .aux_logits = %d, .loss = %d},\n",
            p->input, p->labels, p->logits, p->aux_logits, p->loss);
}

static void plan_section(StrBuf *out, const CudaNet *net) {
  sb_append(out, "#include <stddef.h>\n\n#include \"compiler/cuda_plan.h\"\n\n");
  sb_printf(out, "#if CUDA_NET_VERSION != %d\n#error \"net.cu was made for another cuda_plan.h: regenerate it\"\n#endif\n\n",
            CUDA_NET_VERSION);
  put_params(out, net);
  sb_append(out, "static const CudaKernel nao_kernels[] = {  // name, pattern, block, grid_x, grid_nb, smem, n_args, reduces\n");
  for (int i = 0; i < net->n_kernels; i++) {
    const CudaKernel *k = &net->kernels[i];
    sb_printf(out, "  {\"%s\", \"%s\", %d, %d, %d, %d, %d, %d},\n", k->name, k->pattern, k->block,
              k->grid_x, k->grid_nb, k->smem_bytes, k->n_args, k->reduces);
  }
  sb_append(out, "};\n\n");
  for (int i = 0; i < net->n_programs; i++) {
    const CudaProgram *p = &net->programs[i];
    char pre[64];
    snprintf(pre, sizeof pre, "nao_%s", p->name);
    for (char *c = pre; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) *c = '_';
    sb_printf(out, "// ---------------------------------------------------------------- program %s\n", p->name);
    put_nodes(out, pre, p);
    put_tensors(out, pre, p);
    put_steps(out, pre, net, p);
    put_descs(out, pre, p);
    sb_append(out, "\n");
  }
  sb_append(out, "static const CudaProgram nao_programs[] = {\n");
  for (int i = 0; i < net->n_programs; i++) {
    char pre[64];
    snprintf(pre, sizeof pre, "nao_%s", net->programs[i].name);
    for (char *c = pre; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) *c = '_';
    put_program_struct(out, pre, &net->programs[i]);
  }
  sb_append(out, "};\n\n");
  sb_append(out, "static const CudaNet nao_net = {\n  .version = CUDA_NET_VERSION,\n  .source = ");
  put_str(out, net->source);
  sb_append(out, ",\n  .options = ");
  put_str(out, net->options ? net->options : "");
  sb_printf(out, ",\n  .n_params = %d, .params = %s,\n", net->n_params,
            net->n_params ? "nao_params" : "NULL");
  sb_printf(out, "  .n_trainable = %zu, .n_buffer = %zu,\n", net->n_trainable, net->n_buffer);
  sb_printf(out, "  .n_kernels = %d, .kernels = nao_kernels,\n", net->n_kernels);
  sb_printf(out, "  .n_programs = %d, .programs = nao_programs,\n", net->n_programs);
  sb_printf(out, "  .scratch_fixed = %zu, .scratch_per_image = %zu,\n", net->scratch_fixed,
            net->scratch_per_image);
  sb_append(out, "  .device_source = NULL,\n};\n\n");
  sb_append(out, "const CudaNet *nao_net_get(void);\n");
  sb_append(out, "const CudaNet *nao_net_get(void) { return &nao_net; }\n");
}

// ---------------------------------------------------------------- header

static void header(StrBuf *out, CudaNetBuild *b, const CudaNet *net) {
  const char *src = net->source;
  sb_append(out, "// net.cu — generated by naoc from ");
  for (const char *c = src; *c; c++) sb_appendn(out, (unsigned char)*c >= 32 ? c : "?", 1);
  sb_append(out, ". Do not edit: regenerate it.\n//\n");
  sb_printf(out, "// options: %s\n", net->options ? net->options : "");
  CudaNetStats st;
  cuda_net_stats(b, &st);
  sb_printf(out, "// kernels: %d generated (%d launches in all programs), %d library steps (cuDNN / cuBLAS)\n",
            st.kernels, st.kernel_launches, st.library_steps);
  for (int i = 0; i < net->n_programs; i++) {
    const CudaProgram *p = &net->programs[i];
    int kl = 0, ls = 0;
    for (int s = 0; s < p->n_steps; s++) {
      if (p->steps[s].kind == CUDA_STEP_KERNEL) kl++;
      else ls++;
    }
    sb_printf(out, "// program %s: %d steps (%d kernels, %d library), arena %zu bytes per image, fixed %zu bytes\n",
              p->name, p->n_steps, kl, ls, p->arena_per_image * sizeof(float),
              p->fixed_floats * sizeof(float));
  }
  sb_printf(out, "// parameters: %zu trainable floats, %zu buffer floats; scratch %zu + %zu bytes per image\n",
            net->n_trainable, net->n_buffer, net->scratch_fixed, net->scratch_per_image);
  sb_append(out,
            "//\n"
            "// The device code (below, until #endif) is NVRTC input: NVRTC defines __CUDACC_RTC__.\n"
            "// The plan after it is C for the host compiler: the structures of compiler/cuda_plan.h,\n"
            "// reachable through nao_net_get(). docs/cuda-codegen.md describes both.\n\n");
}

void cuda_net_write(CudaNetBuild *b, StrBuf *out) {
  const CudaNet *net = cuda_net_get(b);
  header(out, b, net);
  sb_append(out, "#ifdef __CUDACC_RTC__\n");
  sb_append(out, net->device_source);
  sb_append(out, "#endif  // __CUDACC_RTC__\n\n#ifndef __CUDACC_RTC__\n");
  plan_section(out, net);
  sb_append(out, "#endif  // !__CUDACC_RTC__\n");
}
