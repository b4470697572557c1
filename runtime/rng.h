// runtime/rng.h — deterministic random numbers: a stream generator and a
// counter-based hash.
//
// Rng (xoshiro256**, seeded by splitmix64) drives sequential choices: parameter
// init, shuffling, augmentation, architecture sampling. Its state is four words,
// saved in checkpoints so a resumed run draws the same numbers.
//
// rng_hash_uniform(key, counter) is a pure function: element i of a dropout or
// drop-path mask is rng_hash_uniform(key, i) < keep, so masks do not depend on
// thread scheduling and a GPU kernel computes the very same mask (the CUDA
// emitter prints a device twin of rng_mix64).
#ifndef NAO_RNG_H
#define NAO_RNG_H

#include <stdint.h>

typedef struct {
  uint64_t s[4];
} Rng;

static inline uint64_t rng_mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 random bits, exactly representable as a float.
static inline float rng_hash_uniform(uint64_t key, uint64_t counter) {
  return (float)(rng_mix64(key ^ rng_mix64(counter)) >> 40) * (1.0f / 16777216.0f);
}

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
double rng_uniform(Rng *r);                 // [0, 1), 53 bits
uint64_t rng_below(Rng *r, uint64_t n);     // uniform in [0, n), unbiased; n > 0
double rng_normal(Rng *r);                  // standard normal (Box-Muller)
void rng_shuffle(Rng *r, int *a, int n);    // Fisher-Yates
// An independent stream for a purpose (e.g. per epoch, per rank): seeded from
// the pair, not from r's position.
void rng_derive(Rng *out, uint64_t seed, uint64_t purpose);

#endif
