// compiler/plan.h — how a graph runs: step order and where every tensor lives.
//
// A Plan is plain data built from an IrGraph (after autodiff, for training):
// the steps to execute, in order, and for every tensor its place in one of two
// regions that the runtime allocates once:
//  - the activation arena, whose size grows with the batch: a batched tensor
//    lives at arena + loc.scaled * N + loc.unscaled, sample n at
//    + n * loc.sample_stride (a channel slice of a concatenation has the
//    concatenation's sample stride and its channel offset in `unscaled`);
//  - the fixed region (per-channel statistics, losses): at fixed + loc.unscaled.
// Tensors whose lifetimes do not overlap share arena space (liveness-based
// reuse). Parameters, their gradients and optimizer state are not in the plan:
// they live in the ParamTable's flat arrays (params.h).
//
// Backends interpret the same Plan; naoc prints it as C initializers into net.cu.
#ifndef NAO_PLAN_H
#define NAO_PLAN_H

#include <stddef.h>

#include "compiler/ir.h"

typedef enum { LOC_NONE = 0, LOC_ARENA, LOC_FIXED } LocRegion;

typedef struct {
  LocRegion region;
  size_t scaled;         // arena: floats per image before the tensor's block
  size_t unscaled;       // floats added after scaling (views), or the fixed offset
  size_t sample_stride;  // floats between consecutive samples (batched tensors)
} PlanLoc;

typedef struct {
  int n_steps;
  int *steps;                 // node indices in execution order
  PlanLoc *loc;               // one per tensor of the graph
  size_t arena_per_image;     // floats of the arena per image in the batch
  size_t fixed_floats;        // floats of the fixed region
  size_t naive_per_image;     // floats per image without reuse (for stats)
} Plan;

typedef struct {
  int reuse;                  // 1: share arena space between dead and new tensors
} PlanOptions;

// Builds the plan of g (views resolved, lifetimes computed, arena assigned).
// Returns 0, or -1 with a message (an invalid graph).
int plan_build(const IrGraph *g, const PlanOptions *opt, Plan *out, char *err, size_t errlen);
void plan_free(Plan *p);

// Checks p against g independently of plan_build: every node runs once in a
// valid order (in-place concats may be left out), every read finds its
// channels written by an earlier step, views sit at their root's block plus
// their channel offset, and no two tensors live at the same step overlap in
// memory (views excepted). Returns 0, or -1 with the first violation.
int plan_verify(const IrGraph *g, const Plan *p, char *err, size_t errlen);

// Figures for naoc --emit stats.
typedef struct {
  size_t arena_bytes_per_image;  // the arena, per image of the batch
  size_t naive_bytes_per_image;  // what it would be with a block per tensor
  size_t fixed_bytes;            // the fixed region
  int n_steps;                   // steps executed
  int n_elided;                  // nodes left out (in-place concats)
  int n_arena_tensors;           // tensors with their own block in the arena
  int n_fixed_tensors;           // ... in the fixed region
  int n_views;                   // tensors placed in another's block
} PlanStats;
void plan_stats(const IrGraph *g, const Plan *p, PlanStats *s);

// Address of tensor t's first element for batch size n.
static inline float *plan_tensor_ptr(const Plan *p, int t, float *arena, float *fixed, int n) {
  const PlanLoc *l = &p->loc[t];
  if (l->region == LOC_FIXED) return fixed + l->unscaled;
  return arena + l->scaled * (size_t)n + l->unscaled;
}

#endif
