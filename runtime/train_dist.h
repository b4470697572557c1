// runtime/train_dist.h — what data-parallel training adds to a training run
// (trainer.h), in one place: the trainer calls these at a few well-defined
// points (docs/distributed.md, "In the training loop").
//
// Every function here is a no-op (or a local computation) in a single
// process, so a run of world 1 behaves exactly as before. With world > 1,
// every rank calls them at the same points of the same control flow: the
// loop's structure (steps per epoch, evaluations, checkpoints) is identical on
// all ranks by construction, and stop requests are agreed on (train_dist_stop).
//
// Errors: these return 0 or an exit status (NAO_EXIT_INTERNAL when a
// collective failed, NAO_EXIT_INPUT for inconsistent inputs) after printing
// the reason; the caller stops and nao-train aborts the job (dist_abort).
#ifndef NAO_TRAIN_DIST_H
#define NAO_TRAIN_DIST_H

#include <stddef.h>

#include "runtime/dist.h"
#include "runtime/recipe.h"
#include "runtime/trainer.h"

// Starts nao-train's data parallelism from how the process was started
// (dist_env_detect): alone, under mpirun / srun, or as a child of the local
// launcher; or, with --gpus N > 1 and no launcher, becomes that launcher
// (launch.h): N children of this program, one per GPU, with the NCCL unique
// id. Returns -1 with *dist open (world 1 when alone) to go on training; or
// an exit status: the launcher's when this process was it, or an error's
// (printed).
int train_dist_start(char **argv, const TrainerConfig *cfg, volatile sig_atomic_t *stop,
                     Dist **dist);
// Ends the communicator: closes it after a clean end (rc 0, or a stop every
// rank agreed on), else aborts the job (dist_abort: no rank is left waiting).
// Returns rc.
int train_dist_finish(Dist *d, int rc, int interrupted);

// The reference's rule for batch and learning rate over `world` processes,
// applied to a fresh run's recipe (NAO-SPEC §1d; docs/distributed.md):
//   imagenet               batch per process kept (128), lr x world
//                          (train_imagenet.py: 128 and 0.1 per GPU)
//   cifar10, fashion-mnist batch split: the preset's batch is the global one
//                          (DataParallel of train_cifar.py), lr kept
// An option given on the command line (--batch, --lr) is taken as is:
// --batch is per process, --lr the run's. Writes what was decided into note
// (for stderr and the log). Returns 0, or -1 when the global batch cannot be
// split (fewer images than processes).
int train_dist_scale_recipe(Recipe *r, int world, int batch_given, int lr_given, char *note,
                            size_t notelen);

// Threads per process when none were asked for: the CPUs shared among this
// node's processes.
int train_dist_default_threads(const Dist *d);

// After setup: the model state (parameters, BN statistics, momentum and which
// buffers exist), the run's position and recipe must be the same on every
// rank (the same seed, the same checkpoint). Logs the "distributed" record.
int train_dist_after_setup(Trainer *t, const char *rule_note);

// 1 when the run stops at this step boundary: a signal on any rank (the
// signal's number becomes t->stop_signal on every rank). Called at the same
// points on every rank; a second call at the same step reuses the first's
// answer. Returns 0/1, or -(exit status) when the agreement failed.
int train_dist_stop(Trainer *t);

// Before a checkpoint: the ranks' parameters must still be equal (the same
// updates of the same values); 0 or an exit status. Only rank 0 then writes.
int train_dist_before_save(Trainer *t);
int train_dist_writer(const Trainer *t);  // 1 on the rank that writes files

// Evaluation: before, every rank takes rank 0's BN running statistics (the
// reference keeps GPU 0's; the model in the checkpoint is rank 0's); after,
// the shards' sums are added up.
int train_dist_sync_buffers(Trainer *t);
int train_dist_reduce_eval(Trainer *t, double *loss_sum, long long *top1, long long *top5,
                           long long *images);

#endif
