// runtime/backend_cuda_measure.c — the device's measured ceilings (copy
// bandwidth, SGEMM throughput in float32 and TF32) and its memory in use,
// for the benchmark's floor (backend_cuda.h).
//
// Invariants: buffers are allocated for the measurement and freed after it;
// inputs are random (METHOD.md: zeros can run faster than real data); every
// timing is between two events on the runtime's stream, best of `reps`.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/backend_cuda_int.h"
#include "runtime/rng.h"

#define CU(call, name, what)                                     \
  do {                                                           \
    CuResult r_ = (call);                                        \
    if (r_ != CUAPI_SUCCESS) return rt_fail(rt, r_, name, what); \
  } while (0)

int cuda_rt_mem_used(CudaRt *rt, size_t *used, size_t *total) {
  size_t f = 0, t = 0;
  CU(rt->cu->mem_get_info(&f, &t), "cuMemGetInfo", "reading the memory in use");
  *used = t > f ? t - f : 0;
  *total = t;
  return 0;
}

static int time_ms(CudaRt *rt, float *ms) {
  CU(rt->cu->event_record(rt->ev1, rt->stream), "cuEventRecord", "timing a measurement");
  CU(rt->cu->event_synchronize(rt->ev1), "cuEventSynchronize", "timing a measurement");
  CU(rt->cu->event_elapsed_time(ms, rt->ev0, rt->ev1), "cuEventElapsedTime", "timing a measurement");
  return 0;
}

static int random_fill(CudaRt *rt, CuDevptr d, size_t floats, uint64_t seed) {
  float *h = xmalloc(sizeof(float) * floats);
  Rng r;
  rng_seed(&r, seed);
  for (size_t i = 0; i < floats; i++) h[i] = (float)(rng_uniform(&r) - 0.5);
  int rc = rt_put(rt, d, h, sizeof(float) * floats, "filling a measurement buffer");
  free(h);
  return rc;
}

static int measure_copy(CudaRt *rt, size_t bytes, int reps, double *gbs) {
  CuDevptr a = rt_alloc(rt, bytes, "the copy measurement"), b = a ? rt_alloc(rt, bytes, "the copy measurement") : 0;
  int rc = !a || !b ? -1 : random_fill(rt, a, bytes / sizeof(float), 1);
  float best = 0;
  for (int r = 0; r <= reps && !rc; r++) {  // the first run warms up
    float ms = 0;
    if (rt->cu->event_record(rt->ev0, rt->stream) != CUAPI_SUCCESS ||
        rt->cu->memcpy_dtod_async(b, a, bytes, rt->stream) != CUAPI_SUCCESS || time_ms(rt, &ms))
      rc = -1;
    if (!rc && r > 0 && (best == 0 || ms < best)) best = ms;
  }
  if (!rc && best > 0) *gbs = 2.0 * (double)bytes / (best * 1e-3) / 1e9;
  if (a) rt_free(rt, a);
  if (b) rt_free(rt, b);
  return rc;
}

static int measure_gemm(CudaRt *rt, int n, int reps, int tf32, double *tflops) {
  size_t nn = (size_t)n * (size_t)n;
  CuDevptr a = rt_alloc(rt, 4 * nn, "the GEMM measurement");
  CuDevptr b = a ? rt_alloc(rt, 4 * nn, "the GEMM measurement") : 0;
  CuDevptr c = b ? rt_alloc(rt, 4 * nn, "the GEMM measurement") : 0;
  int rc = !c || random_fill(rt, a, nn, 2) || random_fill(rt, b, nn, 3) ? -1 : 0;
  float alpha = 1.0f, beta = 0.0f, best = 0;
  if (!rc && rt->blas->set_math_mode(rt->blas_h, tf32 ? BLASAPI_TF32_TENSOR_OP_MATH : BLASAPI_DEFAULT_MATH))
    rc = -1;
  for (int r = 0; r <= reps && !rc; r++) {
    float ms = 0;
    if (rt->cu->event_record(rt->ev0, rt->stream) != CUAPI_SUCCESS ||
        rt->blas->sgemm_strided_batched(rt->blas_h, BLASAPI_OP_N, BLASAPI_OP_N, n, n, n, &alpha,
                                        (const float *)(uintptr_t)a, n, 0, (const float *)(uintptr_t)b,
                                        n, 0, &beta, (float *)(uintptr_t)c, n, 0, 1) != BLASAPI_STATUS_SUCCESS ||
        time_ms(rt, &ms))
      rc = -1;
    if (!rc && r > 0 && (best == 0 || ms < best)) best = ms;
  }
  if (!rc && best > 0) *tflops = 2.0 * (double)n * n * n / (best * 1e-3) / 1e12;
  if (rc && !rt->err[0]) snprintf(rt->err, sizeof rt->err, "the SGEMM measurement failed");
  if (a) rt_free(rt, a);
  if (b) rt_free(rt, b);
  if (c) rt_free(rt, c);
  return rc;
}

int cuda_rt_measure(CudaRt *rt, size_t copy_bytes, int gemm_n, int reps, CudaDeviceRates *out) {
  memset(out, 0, sizeof *out);
  CU(rt->cu->stream_synchronize(rt->stream), "cuStreamSynchronize", "waiting before a measurement");
  if (measure_copy(rt, copy_bytes, reps, &out->copy_gbs)) return -1;
  if (!rt->blas) return 0;  // a net without GEMMs opened no cuBLAS
  if (measure_gemm(rt, gemm_n, reps, 0, &out->fp32_tflops)) return -1;
  return measure_gemm(rt, gemm_n, reps, 1, &out->tf32_tflops);
}
