// tests/unit/emu_harness.c — build generated device code against the CUDA
// emulator, run CudaPrograms, reference library steps (emu_harness.h).
#include "tests/unit/emu_harness.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"

#define EMU_DIR "tests/cuda_emu"

static int find_in_path(const char *prog, char *out, size_t n) {
  const char *path = getenv("PATH");
  if (!path) path = "/usr/bin:/bin";
  while (*path) {
    const char *colon = strchr(path, ':');
    size_t len = colon ? (size_t)(colon - path) : strlen(path);
    snprintf(out, n, "%.*s/%s", (int)len, path, prog);
    if (access(out, X_OK) == 0) return 0;
    path += len + (colon ? 1 : 0);
  }
  return -1;
}

static int pick_cxx(char *cxx, size_t n) {
  const char *env = getenv("CXX");
  if (env && *env) {
    snprintf(cxx, n, "%s", env);
    return 0;
  }
  if (find_in_path("g++", cxx, n) == 0) return 0;
  if (find_in_path("clang++", cxx, n) == 0) return 0;
  return -1;
}

static int write_file(const char *path, const char *a, const char *b) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(a, f);
  fputs(b, f);
  return fclose(f);
}

int emu_build(EmuModule *m, const char *source, int whole_file, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  if (access(EMU_DIR "/cuda_emu.h", R_OK) != 0) {
    snprintf(err, errlen, "%s/cuda_emu.h not found: run the tests from the repository root", EMU_DIR);
    return -1;
  }
  char cxx[512];
  if (pick_cxx(cxx, sizeof cxx)) {
    snprintf(err, errlen, "no C++ compiler (set CXX, or install g++ or clang++)");
    return -1;
  }
  const char *tmp = getenv("TMPDIR");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/nao-emu-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    snprintf(err, errlen, "mkdtemp %s: %s", dir, strerror(errno));
    return -1;
  }
  char src[600], so[600], log[600];
  snprintf(src, sizeof src, "%s/kernels.cpp", dir);
  snprintf(so, sizeof so, "%s/kernels.so", dir);
  snprintf(log, sizeof log, "%s/build.log", dir);
  const char *pre = whole_file ? "#include \"cuda_emu.h\"\n#define __CUDACC_RTC__ 1\n"
                               : "#include \"cuda_emu.h\"\n";
  if (write_file(src, pre, source)) {
    snprintf(err, errlen, "cannot write %s: %s", src, strerror(errno));
    return -1;
  }
  const char *san = "-fsanitize=alignment -fno-sanitize-recover=all";
#if defined(__SANITIZE_ADDRESS__)
  san = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer";
#endif
  StrBuf cmd = {0};
  sb_printf(&cmd,
            "'%s' -std=c++14 -O0 -fPIC -shared -fno-strict-aliasing -Wall -Wextra -Werror "
            "-Wno-unused-function -Wno-unused-parameter %s -I" EMU_DIR " -o '%s' '%s' " EMU_DIR
            "/emu_runtime.cpp >'%s' 2>&1",
            cxx, san, so, src, log);
  int rc = system(cmd.data);
  sb_free(&cmd);
  if (rc != 0) {
    size_t len = 0;
    const char *why;
    char *out = nao_read_file(log, &len, &why);
    snprintf(err, errlen, "compiling the device code with the emulator failed (%s kept):\n%.3000s",
             src, out ? out : "");
    free(out);
    return -1;
  }
  m->so = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!m->so) {
    snprintf(err, errlen, "dlopen %s: %s", so, dlerror());
    return -1;
  }
  m->launch = (int (*)(void *, unsigned, unsigned, unsigned, const void *, size_t, char *,
                       size_t))dlsym(m->so, "nao_emu_launch");
  unlink(src);
  unlink(so);
  unlink(log);
  rmdir(dir);
  if (!m->launch) {
    snprintf(err, errlen, "nao_emu_launch missing from the emulator build");
    return -1;
  }
  return 0;
}

void emu_unload(EmuModule *m) {
  if (m->so) dlclose(m->so);
  free(m->fns);
  memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- memory

static size_t scratch_bytes(const CudaNet *net, int n) {
  return net->scratch_fixed + net->scratch_per_image * (size_t)n;
}

void emu_alloc(EmuMem *mem, const CudaProgram *p) {
  size_t na = p->arena_per_image * (size_t)mem->n, nf = p->fixed_floats;
  mem->arena = xmalloc(sizeof(float) * (na ? na : 1));
  mem->fixed = xmalloc(sizeof(float) * (nf ? nf : 1));
  for (size_t i = 0; i < na; i++) mem->arena[i] = NAN;
  for (size_t i = 0; i < nf; i++) mem->fixed[i] = NAN;
  mem->scratch = xcalloc(scratch_bytes(mem->net, mem->n), 1);
}

void emu_release(EmuMem *mem) {
  free(mem->arena);
  free(mem->fixed);
  free(mem->scratch);
  mem->arena = mem->fixed = NULL;
  mem->scratch = NULL;
}

float *emu_tensor(EmuMem *mem, const CudaProgram *p, int t) {
  return cuda_tensor_ptr(p, t, mem->arena, mem->fixed, mem->n);
}

static void *resolve(EmuMem *mem, const CudaProgram *p, const CudaArg *a) {
  const CudaNet *net = mem->net;
  switch (a->kind) {
    case CUDA_ARG_TENSOR: return emu_tensor(mem, p, a->id);
    case CUDA_ARG_PARAM: return mem->params + net->params[a->id].offset;
    case CUDA_ARG_GRAD: return mem->grads + net->params[a->id].offset;
    case CUDA_ARG_BUFFER: return mem->buffers + net->params[a->id].offset;
    case CUDA_ARG_PARAMS_ALL: return mem->params;
    case CUDA_ARG_GRADS_ALL: return mem->grads;
    case CUDA_ARG_MOMENTUM_ALL: return mem->momentum;
    case CUDA_ARG_SCRATCH: return mem->scratch;
    case CUDA_ARG_MASKS: return &mem->masks[a->id];
    case CUDA_ARG_HYPER: return &mem->hyper;
  }
  return NULL;
}

// ---------------------------------------------------------------- library references

void emu_ref_conv(CudaStepKind kind, const CudaConvDesc *d, int n, const float *a, const float *b,
                  float *c) {
  int cig = d->c_in / d->groups, cog = d->c_out / d->groups;
  long long yplane = (long long)d->h_out * d->w_out;
  // a, b, c: fwd x, w, y; data dy, w, dx; filter x, dy, dw
  const float *x = kind == CUDA_STEP_CONV_BWD_DATA ? NULL : a;
  float *dx = kind == CUDA_STEP_CONV_BWD_DATA ? c : NULL;
  const float *w = kind == CUDA_STEP_CONV_BWD_FILTER ? NULL : b;
  if (kind == CUDA_STEP_CONV_BWD_DATA) {  // scale the described region by beta
    for (int s = 0; s < n; s++)
      for (int ci = 0; ci < d->c_in; ci++)
        for (int iy = 0; iy < d->h_in; iy++)
          for (int ix = 0; ix < d->w_in; ix++) {
            float *p = dx + d->x_offset + s * d->x_ns + ci * d->x_cs + iy * d->x_hs + ix;
            *p = d->beta != 0.0f ? *p * d->beta : 0.0f;
          }
  }
  size_t nw = (size_t)d->c_out * cig * d->kh * d->kw;
  double *gw = kind == CUDA_STEP_CONV_BWD_FILTER ? xcalloc(nw, sizeof(double)) : NULL;
  for (int s = 0; s < n; s++)
    for (int co = 0; co < d->c_out; co++)
      for (int oy = 0; oy < d->h_out; oy++)
        for (int ox = 0; ox < d->w_out; ox++) {
          int grp = co / cog;
          long long yi = s * d->y_ns + co * yplane + (long long)oy * d->w_out + ox;
          double acc = 0.0;
          for (int cj = 0; cj < cig; cj++) {
            int ci = grp * cig + cj;
            for (int ky = 0; ky < d->kh; ky++)
              for (int kx = 0; kx < d->kw; kx++) {
                int iy = oy * d->stride_h - d->pad_h + ky, ix = ox * d->stride_w - d->pad_w + kx;
                if (iy < 0 || iy >= d->h_in || ix < 0 || ix >= d->w_in) continue;
                long long xi = d->x_offset + s * d->x_ns + ci * d->x_cs + (long long)iy * d->x_hs + ix;
                size_t wi = (((size_t)co * cig + cj) * d->kh + ky) * d->kw + kx;
                if (kind == CUDA_STEP_CONV_FWD) acc += (double)x[xi] * w[wi];
                else if (kind == CUDA_STEP_CONV_BWD_DATA) dx[xi] += (float)((double)a[yi] * w[wi]);
                else gw[wi] += (double)b[yi] * x[xi];
              }
          }
          if (kind == CUDA_STEP_CONV_FWD)
            c[yi] = (float)(acc + (d->beta != 0.0f ? (double)d->beta * c[yi] : 0.0));
        }
  if (gw) {
    for (size_t i = 0; i < nw; i++)
      c[i] = (float)(gw[i] + (d->beta != 0.0f ? (double)d->beta * c[i] : 0.0));
    free(gw);
  }
}

void emu_ref_gemm(const CudaGemmDesc *d, int n, const float *a, const float *b, float *c) {
  long long m = cuda_dim(d->m_n, d->m, n), nn = cuda_dim(d->n_n, d->n, n);
  long long k = cuda_dim(d->k_n, d->k, n), batch = cuda_dim(d->batch_n, d->batch, n);
  for (long long bi = 0; bi < batch; bi++) {
    const float *A = a + bi * d->stride_a, *B = b + bi * d->stride_b;
    float *C = c + bi * d->stride_c;
    for (long long i = 0; i < m; i++)
      for (long long j = 0; j < nn; j++) {
        double acc = 0.0;
        for (long long l = 0; l < k; l++) {
          double av = d->trans_a ? A[l + i * d->lda] : A[i + l * d->lda];
          double bv = d->trans_b ? B[j + l * d->ldb] : B[l + j * d->ldb];
          acc += av * bv;
        }
        float *pc = &C[i + j * d->ldc];
        *pc = (float)(d->alpha * acc + (d->beta != 0.0f ? (double)d->beta * *pc : 0.0));
      }
  }
}

// ---------------------------------------------------------------- execution

int emu_run(EmuModule *m, EmuMem *mem, const CudaProgram *p, char *err, size_t errlen) {
  const CudaNet *net = mem->net;
  if (m->n_fns < net->n_kernels) {
    m->fns = xrealloc(m->fns, sizeof(void *) * (size_t)net->n_kernels);
    for (int i = m->n_fns; i < net->n_kernels; i++) m->fns[i] = NULL;
    m->n_fns = net->n_kernels;
  }
  for (int s = 0; s < p->n_steps; s++) {
    const CudaStep *st = &p->steps[s];
    void *ptr[NAO_KARGS_MAX] = {0};
    if (st->n_args > NAO_KARGS_MAX) {
      snprintf(err, errlen, "step %d: %d arguments", s, st->n_args);
      return -1;
    }
    for (int i = 0; i < st->n_args; i++) {
      ptr[i] = resolve(mem, p, &p->args[st->arg0 + i]);
      if (!ptr[i]) {
        snprintf(err, errlen, "step %d: argument %d (kind %d, id %d) has no memory", s, i,
                 (int)p->args[st->arg0 + i].kind, p->args[st->arg0 + i].id);
        return -1;
      }
    }
    switch (st->kind) {
      case CUDA_STEP_KERNEL: {
        const CudaKernel *k = &net->kernels[st->kernel];
        if (!m->fns[st->kernel]) m->fns[st->kernel] = dlsym(m->so, k->name);
        if (!m->fns[st->kernel]) {
          snprintf(err, errlen, "kernel %s not found in the emulator build", k->name);
          return -1;
        }
        NaoArgs a;
        memset(&a, 0, sizeof a);
        memcpy(a.p, ptr, sizeof ptr);
        a.n = mem->n;
        unsigned gy = k->grid_nb ? (unsigned)((mem->n + k->grid_nb - 1) / k->grid_nb) : 1u;
        char e2[512] = "";
        if (m->launch(m->fns[st->kernel], (unsigned)k->grid_x, gy, (unsigned)k->block, &a,
                      sizeof a, e2, sizeof e2)) {
          snprintf(err, errlen, "step %d, kernel %s: %s", s, k->name, e2);
          return -1;
        }
        mem->launches++;
        break;
      }
      case CUDA_STEP_CONV_FWD:
      case CUDA_STEP_CONV_BWD_DATA:
      case CUDA_STEP_CONV_BWD_FILTER:
        emu_ref_conv(st->kind, &p->convs[st->desc], mem->n, ptr[0], ptr[1], ptr[2]);
        break;
      case CUDA_STEP_GEMM:
        emu_ref_gemm(&p->gemms[st->desc], mem->n, ptr[0], ptr[1], ptr[2]);
        break;
    }
  }
  return 0;
}
