// compiler/emit_stats.h — `naoc --emit stats`: a network's size in numbers.
//
// params          trainable parameters, auxiliary head included (what the
//                 reference's model.parameters() counts)
// params_no_aux   the same without the auxiliary head
// macs            multiply-accumulates of the conv and linear nodes of the
//                 EVAL graph for one image (no auxiliary head)
// activation_bytes float32 bytes per image of every batched activation that
//                 a forward node of the TRAIN graph (with loss) writes: all
//                 IR_T_ACT tensors that are not views and not the input,
//                 dropout/drop-path masks and the softmax included; labels,
//                 per-channel statistics and the loss excluded. No reuse:
//                 this is what a framework that keeps every output would hold.
// train_arena_bytes_per_image  the training step's activation arena per image
//                 (forward and backward, liveness-based reuse: compiler/plan.c)
// eval_arena_bytes_per_image   the same for inference
// docs/ir.md gives the definitions with their reasons.
#ifndef NAO_EMIT_STATS_H
#define NAO_EMIT_STATS_H

#include <stddef.h>

#include "compiler/netspec.h"
#include "compiler/util.h"

typedef struct {
  long long params, params_no_aux;
  long long buffers;            // BN running statistics (floats)
  long long macs;
  long long activation_bytes;
  int cells;
  int eval_nodes, train_nodes;  // forward nodes of each graph
  long long train_arena_bytes, eval_arena_bytes;  // the plans' arenas, per image
  int train_steps;              // steps of the training plan (forward and backward)
} NetStats;

// Lowers ns in both modes and measures it. Returns 0, or -1 with a message
// when ns has no valid layout.
int stats_compute(const NetSpec *ns, NetStats *st, char *err, size_t errlen);

// Appends one JSON object (keys in a fixed order, one per line, a final
// newline) to out. Returns 0, or -1 with a message in err.
int emit_stats(const NetSpec *ns, StrBuf *out, char *err, size_t errlen);

#endif
