// runtime/data_synthetic.c — random images for benchmarks and tests.
//
// Item i of part p is a pure function of (seed, p, i): its label is uniform
// over the classes and its pixels uniform on [-sqrt(3), sqrt(3)) (zero mean,
// unit variance, as normalised data is), from a stream derived for that item.
// Nothing is stored, so any size costs no memory.
#include <math.h>

#include "runtime/data_impl.h"

void synthetic_sample(const DataSource *src, int part, int32_t item, float *out, int32_t *label) {
  Rng r;
  rng_derive(&r, src->opt.seed, (uint64_t)part << 40 ^ (uint64_t)(uint32_t)item);
  *label = (int32_t)rng_below(&r, (uint64_t)src->classes);
  if (!out) return;
  size_t n = (size_t)src->c * src->h * src->w;
  const float a = (float)sqrt(3.0), scale = 2.0f * a / 16777216.0f;
  for (size_t i = 0; i < n; i += 2) {  // two 24-bit uniforms per draw
    uint64_t u = rng_u64(&r);
    out[i] = (float)(u >> 40) * scale - a;
    if (i + 1 < n) out[i + 1] = (float)((u >> 8) & 0xffffff) * scale - a;
  }
}
