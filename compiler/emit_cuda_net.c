// compiler/emit_cuda_net.c — the CudaNetBuild: programs, kernels, the in-memory
// CudaNet (emit_cuda.h).
//
// cuda_net_add_graph() runs fusion, lays out memory, then walks the schedule:
// each generated group becomes one kernel launch (kernels deduplicated across
// the whole build), each library op one cuDNN / cuBLAS step. Everything is
// appended in schedule order, so the result depends only on the graphs and
// the options.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda_int.h"
#include "compiler/fuse_internal.h"

void emit_cuda_defaults(EmitCudaOptions *o) {
  memset(o, 0, sizeof *o);
  o->train = 1;
  o->tf32 = 1;
  o->plan_batch = 128;
  o->block = 256;
  o->smem_limit = 32768;
  o->vec = 1;
  o->num_sms = 132;
}

void emit_cuda_options_text(const EmitCudaOptions *o, StrBuf *out) {
  sb_printf(out, "%s %s batch=%d block=%d smem=%d sms=%d%s%s%s", o->train ? "train" : "eval",
            o->tf32 ? "tf32" : "fp32", o->plan_batch, o->block, o->smem_limit, o->num_sms,
            o->vec ? " vec" : "", o->no_fuse ? " no-fuse" : "", o->no_reuse ? " no-reuse" : "");
}

CudaNetBuild *cuda_net_new(const ParamTable *params, const char *source,
                           const EmitCudaOptions *opt) {
  CudaNetBuild *b = xcalloc(1, sizeof *b);
  if (opt) b->opt = *opt;
  else emit_cuda_defaults(&b->opt);
  if (b->opt.block < 32 || b->opt.block % 32) b->opt.block = 256;
  if (b->opt.plan_batch < 1) b->opt.plan_batch = 128;
  if (b->opt.num_sms < 1) b->opt.num_sms = 132;
  if (b->opt.smem_limit <= 0) b->opt.smem_limit = 32768;
  b->params = params;
  // The name as given, but never an absolute path: output must not depend on
  // where the checkout lives.
  const char *src = source ? source : "";
  if (src[0] == '/') src = strrchr(src, '/') + 1;
  b->source = xstrdup(src);
  StrBuf o = {0};
  emit_cuda_options_text(&b->opt, &o);
  b->options_text = sb_steal(&o);
  return b;
}

// ---------------------------------------------------------------- programs

int prog_add_arg(ProgRec *pr, CudaArgKind kind, int id) {
  if (pr->n_args == pr->cap_args) {
    pr->cap_args = pr->cap_args ? 2 * pr->cap_args : 256;
    pr->args = xrealloc(pr->args, sizeof *pr->args * (size_t)pr->cap_args);
  }
  pr->args[pr->n_args] = (CudaArg){kind, id};
  return pr->n_args++;
}

int prog_add_step(ProgRec *pr, CudaStepKind kind, int kernel, int desc, int arg0, int n_args,
                  int node) {
  if (pr->n_steps == pr->cap_steps) {
    pr->cap_steps = pr->cap_steps ? 2 * pr->cap_steps : 256;
    pr->steps = xrealloc(pr->steps, sizeof *pr->steps * (size_t)pr->cap_steps);
  }
  pr->steps[pr->n_steps] = (CudaStep){kind, kernel, desc, arg0, n_args, node};
  return pr->n_steps++;
}

static ProgRec *new_prog(CudaNetBuild *b, const char *name) {
  if (b->n_progs == b->cap_progs) {
    b->cap_progs = b->cap_progs ? 2 * b->cap_progs : 4;
    b->progs = xrealloc(b->progs, sizeof *b->progs * (size_t)b->cap_progs);
  }
  ProgRec *pr = &b->progs[b->n_progs++];
  memset(pr, 0, sizeof *pr);
  pr->name = xstrdup(name);
  pr->input = pr->labels = pr->logits = pr->aux_logits = pr->loss = -1;
  return pr;
}

static void set_order(ProgRec *pr, const FusePlan *fp) {
  int nn = fp->g->n_nodes;
  char *seen = xcalloc((size_t)nn + 1, 1);
  pr->order = xmalloc(sizeof(int) * ((size_t)nn + 1));
  for (int i = 0; i < nn; i++)  // inputs first: the runtime provides them
    if (fp->g->nodes[i].kind == IR_INPUT || fp->g->nodes[i].kind == IR_LABELS) {
      seen[i] = 1;
      pr->order[pr->n_order++] = i;
    }
  for (int s = 0; s < fp->n_sched; s++) {
    const FuseGroup *G = &fp->groups[fp->sched[s]];
    for (int k = 0; k < G->n_ops; k++) {
      int nd = fp->ops[G->ops[k]].node;
      if (!seen[nd]) {
        seen[nd] = 1;
        pr->order[pr->n_order++] = nd;
      }
    }
  }
  free(seen);
}

static int emit_group(CudaNetBuild *b, ProgRec *pr, const FusePlan *fp, const FuseGroup *G,
                      char *err, size_t errlen) {
  if (G->kind == FG_LIB) return emit_lib_step(b, pr, fp, G, err, errlen);
  KGen k;
  kg_init(&k, b, pr, fp, G);
  int rc;
  switch (G->kind) {
    case FG_PW: rc = emit_pw(&k); break;
    case FG_CONV_DW: rc = emit_conv_dw(&k); break;
    case FG_CONV_DW_BWD: rc = emit_conv_dw_bwd(&k); break;
    case FG_POOL: rc = emit_pool(&k); break;
    case FG_POOL_BWD: rc = emit_pool_bwd(&k); break;
    case FG_GAP: rc = emit_gap(&k); break;
    case FG_XENT: rc = emit_xent(&k); break;
    default: rc = -1; snprintf(k.err, sizeof k.err, "internal: group kind %d", (int)G->kind); break;
  }
  if (rc) {
    const IrNode *n = &fp->g->nodes[fp->ops[G->ops[0]].node];
    snprintf(err, errlen, "node %s: %s", n->name, k.err[0] ? k.err : "kernel generation failed");
  }
  kg_free(&k);
  return rc;
}

int cuda_net_add_graph(CudaNetBuild *b, const IrGraph *g, const char *name, char *err,
                       size_t errlen) {
  FuseOptions fo = {.no_fuse = b->opt.no_fuse};
  FusePlan fp;
  if (fuse_build(g, &fo, &fp, err, errlen)) return -1;
  ProgRec *pr = new_prog(b, name);
  pr->mode = g->mode;
  pr->n_nodes = g->n_nodes;
  pr->nodes = xmalloc(sizeof *pr->nodes * ((size_t)g->n_nodes + 1));
  memcpy(pr->nodes, g->nodes, sizeof *pr->nodes * (size_t)g->n_nodes);
  pr->n_tensors = fp.n_tensors;
  pr->n_ir_tensors = g->n_tensors;
  pr->tensors = xmalloc(sizeof *pr->tensors * ((size_t)fp.n_tensors + 1));
  memcpy(pr->tensors, fp.tensors, sizeof *pr->tensors * (size_t)fp.n_tensors);
  pr->input = g->input;
  pr->labels = g->labels;
  pr->logits = g->logits;
  pr->aux_logits = g->aux_logits;
  pr->loss = g->loss;
  emit_plan_memory(pr, &fp, !b->opt.no_reuse);
  set_order(pr, &fp);
  pr->n_masks = fp.n_masks;
  pr->masks = xcalloc((size_t)fp.n_masks + 1, sizeof *pr->masks);
  for (int s = 0; s < fp.n_masks; s++) {
    const IrNode *n = &g->nodes[fp.mask_node[s]];
    pr->masks[s].node = fp.mask_node[s];
    pr->masks[s].kind = n->kind == IR_DROPPATH ? CUDA_MASK_DROPPATH : CUDA_MASK_DROPOUT;
    pr->masks[s].attr = n->a.drop;
  }
  int rc = 0;
  for (int s = 0; s < fp.n_sched && !rc; s++)
    rc = emit_group(b, pr, &fp, &fp.groups[fp.sched[s]], err, errlen);
  fuse_free(&fp);
  return rc;
}

void cuda_net_add_update(CudaNetBuild *b) {
  ProgRec *pr = new_prog(b, "update");
  pr->mode = IR_MODE_TRAIN;
  pr->n_tensors = pr->n_ir_tensors = 1;
  pr->n_ir_tensors = 0;
  pr->tensors = xcalloc(1, sizeof *pr->tensors);
  IrTensor *t = &pr->tensors[0];
  snprintf(t->name, sizeof t->name, "grad_norm");  // [0] the norm, [1] the clipping factor
  t->kind = IR_T_STAT;
  t->c = 2;
  t->h = t->w = 1;
  t->producer = t->view_of = t->grad_of = -1;
  pr->locs = xcalloc(1, sizeof *pr->locs);
  pr->locs[0] = (PlanLoc){LOC_FIXED, 0, 0, 0};
  pr->fixed = 4;
  emit_update_kernels(b, pr, 0);
}

// ---------------------------------------------------------------- the net

static void device_source(CudaNetBuild *b, StrBuf *out) {
  emit_device_preamble(out);
  for (int i = 0; i < b->n_kernels; i++) {
    const KernelRec *r = &b->kernels[i];
    sb_printf(out, "\n// ---------------------------------------------------------------- %s\n", r->name);
    if (r->grid_nb)
      sb_printf(out, "// %s; grid (%d, ceil(N / %d)), block %d", r->pattern, r->grid_x, r->grid_nb,
                r->block);
    else sb_printf(out, "// %s; grid (%d, 1), block %d", r->pattern, r->grid_x, r->block);
    if (r->smem) sb_printf(out, ", %d bytes of shared memory", r->smem);
    sb_append(out, "\n");
    if (r->comment && r->comment[0]) {
      sb_printf(out, "// serves: %s", r->comment);
      if (r->n_served > 1) sb_printf(out, "; %d uses in all", r->n_served);
      sb_append(out, "\n");
    }
    const char *p = r->body, *at;
    while ((at = strstr(p, "@NAME@"))) {
      sb_appendn(out, p, (size_t)(at - p));
      sb_append(out, r->name);
      p = at + 6;
    }
    sb_append(out, p);
  }
}

const CudaNet *cuda_net_get(CudaNetBuild *b) {
  sb_free(&b->device);
  device_source(b, &b->device);
  free(b->knet);
  free(b->pnet);
  b->knet = xcalloc((size_t)b->n_kernels + 1, sizeof *b->knet);
  for (int i = 0; i < b->n_kernels; i++) {
    const KernelRec *r = &b->kernels[i];
    b->knet[i] = (CudaKernel){r->name, r->pattern, r->block, r->grid_x, r->grid_nb, r->smem,
                              r->n_args, r->reduces};
  }
  b->pnet = xcalloc((size_t)b->n_progs + 1, sizeof *b->pnet);
  for (int i = 0; i < b->n_progs; i++) {
    const ProgRec *p = &b->progs[i];
    CudaProgram *q = &b->pnet[i];
    q->name = p->name;
    q->mode = p->mode;
    q->n_nodes = p->n_nodes;
    q->nodes = p->nodes;
    q->n_tensors = p->n_tensors;
    q->n_ir_tensors = p->n_ir_tensors;
    q->tensors = p->tensors;
    q->locs = p->locs;
    q->arena_per_image = p->arena;
    q->fixed_floats = p->fixed;
    q->n_order = p->n_order;
    q->order = p->order;
    q->n_steps = p->n_steps;
    q->steps = p->steps;
    q->n_args = p->n_args;
    q->args = p->args;
    q->n_convs = p->n_convs;
    q->convs = p->convs;
    q->n_gemms = p->n_gemms;
    q->gemms = p->gemms;
    q->n_masks = p->n_masks;
    q->masks = p->masks;
    q->input = p->input;
    q->labels = p->labels;
    q->logits = p->logits;
    q->aux_logits = p->aux_logits;
    q->loss = p->loss;
  }
  CudaNet *n = &b->net;
  memset(n, 0, sizeof *n);
  n->version = CUDA_NET_VERSION;
  n->source = b->source;
  n->options = b->options_text;
  n->n_params = b->params ? b->params->n : 0;
  n->params = b->params ? b->params->items : NULL;
  n->n_trainable = b->params ? b->params->n_trainable : 0;
  n->n_buffer = b->params ? b->params->n_buffer : 0;
  n->n_kernels = b->n_kernels;
  n->kernels = b->knet;
  n->n_programs = b->n_progs;
  n->programs = b->pnet;
  n->scratch_fixed = b->scratch_fixed ? b->scratch_fixed : 256;
  n->scratch_per_image = b->scratch_per_image;
  n->device_source = b->device.data;
  return n;
}

void cuda_net_stats(CudaNetBuild *b, CudaNetStats *out) {
  memset(out, 0, sizeof *out);
  out->kernels = b->n_kernels;
  for (int i = 0; i < b->n_progs; i++) {
    const ProgRec *p = &b->progs[i];
    for (int s = 0; s < p->n_steps; s++) {
      if (p->steps[s].kind == CUDA_STEP_KERNEL) out->kernel_launches++;
      else out->library_steps++;
    }
    if (i < 4) out->arena_bytes_per_image[i] = p->arena * sizeof(float);
  }
}

void cuda_net_free(CudaNetBuild *b) {
  if (!b) return;
  for (int i = 0; i < b->n_kernels; i++) {
    KernelRec *r = &b->kernels[i];
    free(r->name);
    free(r->pattern);
    free(r->body);
    free(r->comment);
  }
  free(b->kernels);
  for (int i = 0; i < b->n_progs; i++) {
    ProgRec *p = &b->progs[i];
    free(p->name);
    free(p->nodes);
    free(p->tensors);
    free(p->locs);
    free(p->order);
    free(p->steps);
    free(p->args);
    free(p->convs);
    free(p->gemms);
    free(p->masks);
  }
  free(b->progs);
  sb_free(&b->device);
  free(b->knet);
  free(b->pnet);
  free(b->source);
  free(b->options_text);
  free(b);
}
