// runtime/cpu_util.h — small helpers shared by the CPU kernels (cpu_*.c only).
//
// The reductions here sum in a fixed order with eight independent lanes, so
// the compiler can vectorise them without -ffast-math and the result does not
// depend on anything but the data.
#ifndef NAO_CPU_UTIL_H
#define NAO_CPU_UTIL_H

#include <stddef.h>

// Floats per task of the element-wise kernels: large enough to amortise a
// task, small enough to balance two or three threads on one sample.
enum { CPU_CHUNK = 16384 };

static inline int cpu_min(int a, int b) { return a < b ? a : b; }
static inline int cpu_max(int a, int b) { return a > b ? a : b; }
static inline size_t cpu_div_up(size_t a, size_t b) { return (a + b - 1) / b; }

// Outputs o in [0, out) whose input o*stride - pad + k lies in [0, in) form
// the range [*lo, *hi) (empty when *lo == *hi).
// (Called in inner loops: strides 1 and 2 avoid the division.)
static inline int cpu_ceil_div_pos(int a, int stride) {
  if (a <= 0) return 0;
  if (stride == 1) return a;
  if (stride == 2) return (a + 1) >> 1;
  return (a + stride - 1) / stride;
}

static inline void cpu_valid_range(int pad, int k, int stride, int in, int out, int *lo, int *hi) {
  int l = cpu_ceil_div_pos(pad - k, stride);      // need o*stride >= pad - k
  int h = cpu_ceil_div_pos(in + pad - k, stride);  // need o*stride < in + pad - k
  if (l > out) l = out;
  if (h > out) h = out;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

// Sum of a[0..n) in float: eight lanes, then the lanes and the tail in order.
static inline float cpu_sum8(const float *restrict a, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += a[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += a[i];
  return s;
}

// Dot product of a[0..n) and b[0..n), as cpu_sum8.
static inline float cpu_dot8(const float *restrict a, const float *restrict b, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// Sum of (a[i] - m)^2, as cpu_sum8.
static inline float cpu_sqdev8(const float *restrict a, float m, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) {
      float d = a[i + j] - m;
      acc[j] += d * d;
    }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += (a[i] - m) * (a[i] - m);
  return s;
}

#endif
