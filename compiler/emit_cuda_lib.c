// compiler/emit_cuda_lib.c — library steps: dense convolutions (cuDNN, or a
// cuBLAS strided-batched GEMM for 1x1 stride-1 convolutions) and the linear
// layers' products (cuBLAS).
//
// Why 1x1 stride-1 convolutions go to cuBLAS: in NCHW, Y[n] (Co x HW) =
// W (Co x Ci) * X[n] (Ci x HW) is exactly a GEMM per sample, with channel
// slices of a concatenation expressed by the leading dimension and the batch
// stride; no layout transform is needed (cuDNN's fastest float32 paths on
// NCHW transpose to NHWC and back). The gradient of such a weight sums over
// the batch, which is not one strided-batched GEMM, so it stays with cuDNN.
// Everything else dense (kxk, 1xk, kx1, strided 1x1 of factorized
// reductions, the auxiliary head's 2x2) is a cuDNN convolution whose
// algorithm the runtime picks once per descriptor and caches.
//
// TF32: allowed for convolutions (tf32 = opt.tf32), as PyTorch allows it by
// default (torch.backends.cudnn.allow_tf32); not for the linear layers
// (PyTorch >= 1.12 keeps matmuls in full float32 by default).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda_int.h"
#include "compiler/fuse_internal.h"

static long long ss_of(const ProgRec *pr, int t) {
  return pr->locs[t].region == LOC_ARENA ? (long long)pr->locs[t].sample_stride : 0;
}

static int add_conv_desc(ProgRec *pr, const CudaConvDesc *d) {
  if (pr->n_convs == pr->cap_convs) {
    pr->cap_convs = pr->cap_convs ? 2 * pr->cap_convs : 16;
    pr->convs = xrealloc(pr->convs, sizeof *pr->convs * (size_t)pr->cap_convs);
  }
  pr->convs[pr->n_convs] = *d;
  return pr->n_convs++;
}

static int add_gemm_desc(ProgRec *pr, const CudaGemmDesc *d) {
  if (pr->n_gemms == pr->cap_gemms) {
    pr->cap_gemms = pr->cap_gemms ? 2 * pr->cap_gemms : 16;
    pr->gemms = xrealloc(pr->gemms, sizeof *pr->gemms * (size_t)pr->cap_gemms);
  }
  pr->gemms[pr->n_gemms] = *d;
  return pr->n_gemms++;
}

static void step3(ProgRec *pr, CudaStepKind kind, int desc, CudaArg a, CudaArg b, CudaArg c,
                  int node) {
  int arg0 = pr->n_args;
  prog_add_arg(pr, a.kind, a.id);
  prog_add_arg(pr, b.kind, b.id);
  prog_add_arg(pr, c.kind, c.id);
  prog_add_step(pr, kind, -1, desc, arg0, 3, node);
}

static int is_gemm_conv(const IrConvAttr *a) {
  return a->kh == 1 && a->kw == 1 && a->sh == 1 && a->sw == 1 && a->groups == 1 && a->pt == 0 &&
         a->pl == 0 && a->pb == 0 && a->pr == 0;
}

// x (c_in, h, w) -> y (c_out, ho, wo) of a convolution, in cuDNN's terms.
static CudaConvDesc conv_desc(const ProgRec *pr, const IrConvAttr *a, int x, int y, float beta,
                              int tf32) {
  const IrTensor *tx = &pr->tensors[x], *ty = &pr->tensors[y];
  FuseConvGeom g = fuse_conv_geom(a, tx->h, tx->w, ty->h, ty->w);
  CudaConvDesc d;
  memset(&d, 0, sizeof d);
  d.c_in = tx->c;
  d.h_in = g.h_eff;
  d.w_in = g.w_eff;
  d.x_offset = (long long)g.crop_t * tx->w + g.crop_l;
  d.x_ns = ss_of(pr, x);
  d.x_cs = (long long)tx->h * tx->w;
  d.x_hs = tx->w;
  d.c_out = ty->c;
  d.h_out = ty->h;
  d.w_out = ty->w;
  d.y_ns = ss_of(pr, y);
  d.kh = a->kh;
  d.kw = a->kw;
  d.stride_h = a->sh;
  d.stride_w = a->sw;
  d.groups = a->groups > 0 ? a->groups : 1;
  d.pad_h = g.pad_t;
  d.pad_w = g.pad_l;
  d.pad_h_end = g.pad_b;
  d.pad_w_end = g.pad_r;
  d.asymmetric = !g.symmetric;
  d.beta = beta;
  d.tf32 = tf32;
  return d;
}

static CudaGemmDesc gemm0(void) {
  CudaGemmDesc d;
  memset(&d, 0, sizeof d);
  d.batch = 1;
  d.alpha = 1.0f;
  return d;
}

static int lib_conv(CudaNetBuild *nb, ProgRec *pr, const FusePlan *fp, const FuseOp *o) {
  const IrNode *n = &fp->g->nodes[o->node];
  const IrConvAttr *a = fuse_conv_attr(fp->g, n);
  int tf32 = nb->opt.tf32 != 0;
  CudaArg w = {CUDA_ARG_PARAM, n->param[0]};
  int node = o->node;
  if (o->kind == FOP_LIB_CONV_FILTER) {
    int x = n->in[0], dy = n->in[1];
    CudaConvDesc d = conv_desc(pr, a, x, dy, o->grad_acc[0] ? 1.0f : 0.0f, tf32);
    step3(pr, CUDA_STEP_CONV_BWD_FILTER, add_conv_desc(pr, &d), (CudaArg){CUDA_ARG_TENSOR, x},
          (CudaArg){CUDA_ARG_TENSOR, dy}, (CudaArg){CUDA_ARG_GRAD, n->param[0]}, node);
    return 0;
  }
  int fwd = o->kind == FOP_LIB_CONV;
  int in = n->in[0], out = o->out;  // fwd: x -> y; data: dy -> dx
  int x = fwd ? in : out, y = fwd ? out : in;
  const IrTensor *tx = &pr->tensors[x];
  float beta = o->accumulate ? 1.0f : 0.0f;
  if (is_gemm_conv(a)) {
    CudaGemmDesc d = gemm0();
    long long hw = (long long)tx->h * tx->w;
    d.m = hw;
    d.n = fwd ? pr->tensors[y].c : tx->c;
    d.k = fwd ? tx->c : pr->tensors[y].c;
    d.trans_b = fwd ? 0 : 1;
    d.lda = hw;
    d.ldb = tx->c;
    d.ldc = hw;
    d.batch_n = 1;
    d.batch = 0;
    d.stride_a = ss_of(pr, in);
    d.stride_b = 0;
    d.stride_c = ss_of(pr, out);
    d.beta = beta;
    d.tf32 = tf32;
    step3(pr, CUDA_STEP_GEMM, add_gemm_desc(pr, &d), (CudaArg){CUDA_ARG_TENSOR, in}, w,
          (CudaArg){CUDA_ARG_TENSOR, out}, node);
    return 0;
  }
  CudaConvDesc d = conv_desc(pr, a, x, y, beta, tf32);
  step3(pr, fwd ? CUDA_STEP_CONV_FWD : CUDA_STEP_CONV_BWD_DATA, add_conv_desc(pr, &d),
        (CudaArg){CUDA_ARG_TENSOR, in}, w, (CudaArg){CUDA_ARG_TENSOR, out}, node);
  return 0;
}

// Linear layers: y (N x K) = x (N x Kin) W^T, as cuBLAS's column-major
// Y^T (K x N) = op(W) X^T with the samples' strides as leading dimensions.
static int lib_linear(ProgRec *pr, const FusePlan *fp, const FuseOp *o) {
  const IrNode *n = &fp->g->nodes[o->node];
  int x = n->in[0];
  long long kin = (long long)ir_tensor_numel(&pr->tensors[x]);
  CudaArg w = {CUDA_ARG_PARAM, n->param[0]};
  CudaGemmDesc d = gemm0();
  if (o->part == 0) {  // forward: y = x W^T (+ the bias already in y)
    int y = o->out;
    d.trans_a = 1;
    d.m = pr->tensors[y].c;
    d.n_n = 1;
    d.k = kin;
    d.lda = kin;
    d.ldb = ss_of(pr, x);
    d.ldc = ss_of(pr, y);
    d.beta = o->accumulate ? 1.0f : 0.0f;
    step3(pr, CUDA_STEP_GEMM, add_gemm_desc(pr, &d), w, (CudaArg){CUDA_ARG_TENSOR, x},
          (CudaArg){CUDA_ARG_TENSOR, y}, o->node);
    return 0;
  }
  int dy = n->in[1];
  long long k = pr->tensors[dy].c;
  if (o->part == 1) {  // dx = dy W: dX^T (Kin x N) = W^T... as col-major (Kin x K)(K x N)
    int dx = o->out;
    d.m = kin;
    d.n_n = 1;
    d.k = k;
    d.lda = kin;
    d.ldb = ss_of(pr, dy);
    d.ldc = ss_of(pr, dx);
    d.beta = o->accumulate ? 1.0f : 0.0f;
    step3(pr, CUDA_STEP_GEMM, add_gemm_desc(pr, &d), w, (CudaArg){CUDA_ARG_TENSOR, dy},
          (CudaArg){CUDA_ARG_TENSOR, dx}, o->node);
    return 0;
  }
  // dW = dy^T x: dW^T (Kin x K) = X^T (Kin x N) * dY (N x K)
  d.trans_b = 1;
  d.m = kin;
  d.n = k;
  d.k_n = 1;
  d.lda = ss_of(pr, x);
  d.ldb = ss_of(pr, dy);
  d.ldc = kin;
  d.beta = o->grad_acc[0] ? 1.0f : 0.0f;
  step3(pr, CUDA_STEP_GEMM, add_gemm_desc(pr, &d), (CudaArg){CUDA_ARG_TENSOR, x},
        (CudaArg){CUDA_ARG_TENSOR, dy}, (CudaArg){CUDA_ARG_GRAD, n->param[0]}, o->node);
  return 0;
}

int emit_lib_step(CudaNetBuild *nb, ProgRec *pr, const FusePlan *fp, const FuseGroup *G,
                  char *err, size_t errlen) {
  const FuseOp *o = &fp->ops[G->ops[0]];
  switch (o->kind) {
    case FOP_LIB_CONV:
    case FOP_LIB_CONV_DATA:
    case FOP_LIB_CONV_FILTER:
      return lib_conv(nb, pr, fp, o);
    case FOP_LIB_GEMM:
      return lib_linear(pr, fp, o);
    default:
      snprintf(err, errlen, "internal: op %s is not a library step", fuse_op_kind_name(o->kind));
      return -1;
  }
}
