// runtime/launch.h — the local launcher of `nao-train --gpus N`: N copies of
// the program, one per GPU, started with fork/exec and supervised until they
// end (docs/distributed.md, "Starting processes").
//
// Each child gets the same arguments and, in its environment,
// NAO_DIST_RANK / NAO_DIST_WORLD / NAO_DIST_LOCAL_RANK / NAO_DIST_LOCAL_WORLD,
// NAO_DIST_NCCL_ID (the parent's NCCL unique id, 256 hex digits, when given),
// NAO_DIST_TIMEOUT and NAO_DIST_HEARTBEAT_FD: a pipe on which its communicator
// writes the number of every collective it reaches (dist.c). Children run in
// their own process group (a terminal's Ctrl-C reaches the parent only, which
// forwards it once) and die with the parent (PR_SET_PDEATHSIG).
//
// Supervision, every 50 ms:
//  - SIGINT / SIGTERM / SIGHUP to the parent are forwarded to every child (they
//    stop at a step boundary, rank 0 writes the checkpoint); a second one
//    forwards SIGKILL.
//  - A child that exits with a non-zero status (or is killed) while no stop was
//    asked for is a failure: the parent names it ("rank 2 (pid 4242) was killed
//    by signal 9 (Killed)"), sends SIGTERM to the others, SIGKILL after
//    `grace` seconds, and returns that child's status.
//  - A child whose heartbeat has not advanced for `timeout` seconds while
//    another child is ahead of it is hung (the others wait for it in a
//    collective): the parent names it and the collective it did not reach,
//    stops everyone the same way and returns 70.
// Nothing is left running when launch_run returns.
#ifndef NAO_LAUNCH_H
#define NAO_LAUNCH_H

#include <stddef.h>

typedef struct {
  int n;                        // processes (>= 1)
  char *const *argv;            // the program (argv[0]: path to exec) and its arguments
  double timeout;               // hang detection, seconds (<= 0: off); also NAO_DIST_TIMEOUT
  double grace;                 // SIGTERM -> SIGKILL, seconds (<= 0: 5)
  const unsigned char *nccl_id; // DIST_NCCL_ID_BYTES, or NULL
  const char *prog;             // name in messages ("nao-train")
  int verbose;                  // 1: the children's pids, on stderr
} LaunchOptions;

typedef struct {
  int status;                   // what the launcher's process should exit with
  int failed_rank;              // the first rank that failed or hung, -1: none
  int hung;                     // 1: failed_rank was declared hung
  char why[512];                // the message printed (empty when all went well)
} LaunchResult;

// Runs the children to their end. Returns 0 when it could start them (the
// outcome is in *r), or -1 with a message in r->why when it could not (no
// child is left running).
int launch_run(const LaunchOptions *o, LaunchResult *r);

// The running program's own path (/proc/self/exe), for argv[0]. Returns 0, or
// -1 with a message.
int launch_self_path(char *out, size_t outlen, char *err, size_t errlen);

#endif
