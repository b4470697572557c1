// tests/tools/cuda_floor.c — the back-of-envelope floor of a training step on
// a GPU: the bytes naoc's CUDA plan moves and the FLOPs its library steps do,
// over a device's bandwidth and throughput.
//
//   cuda_floor FILE.nao [--batch N] [--bw BYTES_PER_S] [--tf32 FLOPS] [--fp32 FLOPS]
//
// Defaults are an H200's datasheet figures (4.8e12 B/s, dense TF32 tensor
// cores 4.95e14 FLOP/s, plain FP32 6.7e13 FLOP/s). Bytes: every argument of
// every step counted once at its full size (a generated kernel reads or
// writes each of its tensors once; cuDNN / cuBLAS are credited with reading
// their inputs and writing their output once, a lower bound for them). FLOPs:
// 2 per multiply-accumulate of the convolutions and GEMMs (the elementwise
// work of generated kernels is a few FLOPs per byte and bound by memory).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda.h"
#include "compiler/frontend.h"

typedef struct {
  double gen_bytes, lib_bytes, flops, flops_tf32;
  int kernels, lib;
  double *by_pattern;  // per kernel of the net: bytes moved by its launches
} Tally;

static double arg_bytes(const CudaNet *net, const CudaProgram *p, const CudaArg *a, int n) {
  switch (a->kind) {
    case CUDA_ARG_TENSOR: {
      const IrTensor *t = &p->tensors[a->id];
      double numel = (double)t->c * t->h * t->w;
      return 4.0 * numel * (t->kind == IR_T_ACT || t->kind == IR_T_LABELS ? n : 1);
    }
    case CUDA_ARG_PARAM:
    case CUDA_ARG_GRAD:
    case CUDA_ARG_BUFFER: return 4.0 * (double)net->params[a->id].numel;
    case CUDA_ARG_PARAMS_ALL:
    case CUDA_ARG_GRADS_ALL:
    case CUDA_ARG_MOMENTUM_ALL: return 4.0 * (double)net->n_trainable;
    default: return 0.0;
  }
}

static void tally(const CudaNet *net, const CudaProgram *p, int n, Tally *t) {
  double *byp = t->by_pattern;
  memset(t, 0, sizeof *t);
  t->by_pattern = byp;
  for (int s = 0; s < p->n_steps; s++) {
    const CudaStep *st = &p->steps[s];
    double bytes = 0;
    for (int i = 0; i < st->n_args; i++) bytes += arg_bytes(net, p, &p->args[st->arg0 + i], n);
    if (st->kind == CUDA_STEP_KERNEL) {
      t->gen_bytes += bytes;
      t->kernels++;
      if (t->by_pattern) t->by_pattern[st->kernel] += bytes;
      continue;
    }
    t->lib++;
    t->lib_bytes += bytes;
    double f = 0;
    int tf32;
    if (st->kind == CUDA_STEP_GEMM) {
      const CudaGemmDesc *d = &p->gemms[st->desc];
      f = 2.0 * (double)cuda_dim(d->m_n, d->m, n) * (double)cuda_dim(d->n_n, d->n, n) *
          (double)cuda_dim(d->k_n, d->k, n) * (double)cuda_dim(d->batch_n, d->batch, n);
      tf32 = d->tf32;
    } else {
      const CudaConvDesc *d = &p->convs[st->desc];
      f = 2.0 * n * d->c_out * (double)d->h_out * d->w_out * (d->c_in / d->groups) * d->kh * d->kw;
      tf32 = d->tf32;
    }
    t->flops += f;
    if (tf32) t->flops_tf32 += f;
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: cuda_floor FILE.nao [--batch N] [--bw B/s] [--tf32 FLOP/s] [--fp32 FLOP/s]\n");
    return 2;
  }
  int n = 128;
  double bw = 4.8e12, tf32 = 4.95e14, fp32 = 6.7e13;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--batch") == 0) n = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--bw") == 0) bw = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--tf32") == 0) tf32 = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--fp32") == 0) fp32 = atof(argv[i + 1]);
    else {
      fprintf(stderr, "cuda_floor: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  NetSpec ns;
  if (nao_frontend_file(argv[1], &ns, stderr) != 0) return 1;
  ParamTable pt;
  params_init(&pt);
  IrGraph train, eval;
  EmitCudaOptions opt;
  emit_cuda_defaults(&opt);
  char err[1024];
  if (emit_cuda_lower(&ns, emit_cuda_smoothing(&ns, &opt), 1, &pt, &train, &eval, err, sizeof err)) {
    fprintf(stderr, "cuda_floor: %s\n", err);
    return 1;
  }
  CudaNetBuild *b = cuda_net_new(&pt, argv[1], &opt);
  if (cuda_net_add_graph(b, &train, "train", err, sizeof err)) {
    fprintf(stderr, "cuda_floor: %s\n", err);
    return 1;
  }
  cuda_net_add_update(b);
  const CudaNet *net = cuda_net_get(b);
  printf("%s, batch %d: bandwidth %.2f TB/s, TF32 %.0f TFLOP/s, FP32 %.0f TFLOP/s\n", argv[1], n,
         bw / 1e12, tf32 / 1e12, fp32 / 1e12);
  double total_t = 0;
  for (int i = 0; i < net->n_programs; i++) {
    const CudaProgram *p = &net->programs[i];
    Tally t;
    t.by_pattern = xcalloc((size_t)net->n_kernels + 1, sizeof(double));
    tally(net, p, n, &t);
    double t_mem = (t.gen_bytes + t.lib_bytes) / bw;
    double t_flop = t.flops_tf32 / tf32 + (t.flops - t.flops_tf32) / fp32;
    double floor = t_mem > t_flop ? t_mem : t_flop;
    total_t += floor;
    if (getenv("NAO_FLOOR_TOP")) {  // the kernels that move the most
      for (int r = 0; r < 12; r++) {
        int best = -1;
        for (int k = 0; k < net->n_kernels; k++)
          if (t.by_pattern[k] > 0 && (best < 0 || t.by_pattern[k] > t.by_pattern[best])) best = k;
        if (best < 0) break;
        printf("   %7.3f GB  %s\n", t.by_pattern[best] / 1e9, net->kernels[best].name);
        t.by_pattern[best] = -1;
      }
    }
    free(t.by_pattern);
    printf("%-6s %4d kernels moving %7.2f GB, %4d library steps moving %7.2f GB and doing %7.1f GFLOP "
           "(%.1f TF32): memory %6.2f ms, math %6.2f ms, floor %6.2f ms\n",
           p->name, t.kernels, t.gen_bytes / 1e9, t.lib, t.lib_bytes / 1e9, t.flops / 1e9,
           t.flops_tf32 / 1e9, t_mem * 1e3, t_flop * 1e3, floor * 1e3);
  }
  printf("step floor %.2f ms: at most %.0f images/s; arena %.2f GB at this batch\n", total_t * 1e3,
         n / total_t, (double)net->programs[0].arena_per_image * 4.0 * n / 1e9);
  cuda_net_free(b);
  ir_free(&train);
  ir_free(&eval);
  params_free(&pt);
  return 0;
}
