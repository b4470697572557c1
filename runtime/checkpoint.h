// runtime/checkpoint.h — checkpoints: a ModelState and the run's position in
// one safetensors file (docs/training.md, "Checkpoints").
//
// Tensors (all F32, C order):
//   <state_dict name>                parameters and BN running statistics, under
//                                    the reference's names (NAO-SPEC §1a.8)
//   optimizer.momentum.<name>        SGD momentum buffer of trainable <name>,
//                                    present only once the buffer exists
// Metadata (__metadata__, strings): format "naoc-checkpoint/1", arch (the
// reference's arch string), network (JSON of the backbone settings), recipe
// (recipe_to_json), step, epoch, batch (batches of `epoch` done), total_steps,
// best_valid_top1, best_epoch, seed, rng (four hex words), threads, data,
// dataset, synthetic_size ("TRAIN,TEST"), checkpoint_steps, world.
//
// Loading checks before it copies anything, so a refused file changes
// nothing: every parameter and buffer present with dtype F32 and its shape,
// no tensor that is not one of them (`*.num_batches_tracked`, the
// reference's counters, are accepted and ignored; optimizer.* only in FULL
// mode), and in FULL mode the metadata, whose arch and network must be this
// network's. A refusal names the file, the tensor and what differs.
#ifndef NAO_CHECKPOINT_H
#define NAO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/netspec.h"
#include "compiler/util.h"
#include "runtime/model_state.h"
#include "runtime/recipe.h"
#include "runtime/rng.h"

#define CKPT_FORMAT "naoc-checkpoint/1"

typedef struct {
  long long step;          // training steps done
  int epoch;               // the epoch the run is in (0-based)
  int batch;               // batches of that epoch done (0: at its start)
  long long total_steps;   // T of the drop-path schedule
  double best_valid_top1;  // best validation top-1 so far (-1: none)
  int best_epoch;          // its epoch (-1: none)
  uint64_t seed;
  Rng rng;
  int threads;             // for the record (results do not depend on it)
  char recipe[2048];       // loaded: the recipe's JSON (recipe_to_json); ignored by ckpt_save
  // The data the run trains on (a resumed run takes them unless told otherwise).
  char data[1024];         // the data folder, or "synthetic"
  char dataset[32];        // data_kind_name of the source
  int synthetic_train, synthetic_test;  // images of synthetic data
  long long checkpoint_steps;  // the run's --checkpoint-steps
  int world;               // processes of the data-parallel run (1: one; 0 read: not recorded)
} CkptInfo;

typedef enum {
  CKPT_WEIGHTS = 0,  // parameters and buffers only; other state ignored
  CKPT_FULL = 1,     // + momentum, metadata and the network's identity (resume)
  CKPT_STATE = 2,    // parameters, buffers and the momentum present; no metadata
                     //   needed (nao-run --sgd: one step from a given state)
} CkptMode;

// Appends the network's settings as one JSON object (name, dataset, input,
// classes, stem, channels, layers, nodes, aux_weight, drop_path_keep,
// dropout_keep): what identifies a network besides its arch string.
void ckpt_network_json(const NetSpec *ns, StrBuf *out);

// Writes atomically (temporary file, fsync, rename): a crash leaves the old
// file or the new one. Returns 0, or -1 with a message.
int ckpt_save(const char *path, const ModelState *m, const NetSpec *ns, const Recipe *r,
              const CkptInfo *info, char *err, size_t errlen);

// Loads into m (and *info in FULL mode; info may be NULL otherwise).
// ns: this network (FULL mode compares it with the file's). Returns 0, or -1
// with a message; m is untouched on failure.
int ckpt_load(const char *path, CkptMode mode, const NetSpec *ns, ModelState *m, CkptInfo *info,
              char *err, size_t errlen);

#endif
