// runtime/dist.h — the communicator of data-parallel training: who this
// process is (rank, world, local rank) and the collectives the trainer and the
// backends use (docs/distributed.md).
//
// Implementations, chosen by how the process was started (dist_env_detect):
//   single   one process: every collective is a no-op (or a copy);
//   mpi      started by mpirun / mpiexec (OpenMPI) or srun with PMI: OpenMPI's
//            libmpi opened at run time with dlopen, nonblocking collectives
//            polled with a timeout (dist_mpi.c);
//   nccl     started by `nao-train --gpus N` (runtime/launch.h): host
//            collectives staged through the device and run by NCCL once the
//            cuda backend attached its device (dist_nccl.h); under MPI the
//            gradient all-reduce goes to NCCL and the host collectives stay on
//            MPI.
//
// Contract of every collective: every rank calls the same collectives in the
// same order with the same sizes (the training loop guarantees it: the same
// number of steps and batches on every rank). A collective returns 0, or -1
// with dist_error() set, naming the collective, its sequence number and, when
// known, the rank(s) that did not reach it. It never waits forever: after
// `timeout` seconds (DistOptions) it fails. A failure leaves the
// communicator unusable: the caller reports and calls dist_abort(), which ends
// every process of the job (MPI_Abort, or ncclCommAbort and exit) so no peer
// is left waiting.
//
// Results are identical on every rank (the same bits), so ranks that apply the
// same update to the same parameters stay equal; dist_check_equal verifies it.
#ifndef NAO_DIST_H
#define NAO_DIST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { DIST_SINGLE = 0, DIST_MPI, DIST_NCCL } DistKind;
typedef enum { DIST_SUM = 0, DIST_MEAN, DIST_MAX } DistOp;

// How the process was started.
typedef enum {
  DIST_LAUNCH_NONE = 0,  // a plain process: world 1
  DIST_LAUNCH_MPIRUN,    // OpenMPI's mpirun / mpiexec (OMPI_COMM_WORLD_SIZE ...)
  DIST_LAUNCH_PMI,       // a process manager speaking PMI/PMIx (srun --mpi=pmix, hydra)
  DIST_LAUNCH_SLURM,     // srun without an MPI plugin (SLURM_NTASKS > 1 only): refused
  DIST_LAUNCH_LOCAL,     // nao-train --gpus N (NAO_DIST_RANK, NAO_DIST_WORLD ...)
} DistLaunch;

enum { DIST_NCCL_ID_BYTES = 128 };

// What the environment says (dist_env_detect). Values the launcher does not
// give are -1; MPI fills them at dist_open.
typedef struct {
  DistLaunch launch;
  int rank, world;
  int local_rank, local_world;
  int has_nccl_id;                          // LOCAL: the parent's NCCL unique id
  unsigned char nccl_id[DIST_NCCL_ID_BYTES];
  int heartbeat_fd;                         // LOCAL: pipe to the parent; -1: none
  double timeout;                           // NAO_DIST_TIMEOUT (seconds); 0: not set
} DistEnv;

// Reads a variable; NULL when unset. dist_env_detect(NULL, ...) uses getenv.
typedef const char *(*DistGetenv)(void *user, const char *name);

// Detects the launcher from the environment. Returns 0, or -1 with a message
// (inconsistent or malformed variables, srun without PMI, a world without
// the means to communicate).
int dist_env_detect(DistGetenv get, void *user, DistEnv *env, char *err, size_t errlen);
const char *dist_launch_name(DistLaunch l);  // "none", "mpirun", "pmi", "srun", "nao-train --gpus"

typedef struct {
  double timeout;                // seconds a collective may wait (<= 0: 600)
  volatile sig_atomic_t *stop;   // set by a signal: a wait gives peers at most
                                 //   `stop_grace` more seconds (NULL: none)
  double stop_grace;             // <= 0: 10 s (or the timeout when shorter)
  const char *mpi_lib;           // NULL: $NAO_MPI_LIB, else libmpi.so.40
  const struct NcclApi *nccl_api;  // the NCCL table dist_nccl_attach uses (NULL: libnccl;
                                   //   tests: a mock)
  int verbose;                   // 1: what was detected and opened, on stderr
} DistOptions;

void dist_options_default(DistOptions *o);

typedef struct Dist Dist;

// Opens the communicator the environment asks for (env NULL: detect it).
// LOCAL gives a communicator whose collectives need the NCCL transport:
// until dist_nccl_attach (dist_nccl.h) they fail saying so. Returns NULL with a
// message when MPI is needed but cannot be opened (names the library and
// NAO_MPI_LIB), or when the environment is inconsistent.
Dist *dist_open(const DistEnv *env, const DistOptions *o, char *err, size_t errlen);
// A world-1 communicator (no environment read).
Dist *dist_open_single(void);
// Finalizes (MPI_Finalize; NCCL destroyed) and frees. NULL is fine. After a
// failed collective use dist_abort instead.
void dist_close(Dist *d);

DistKind dist_kind(const Dist *d);
const char *dist_name(const Dist *d);   // "single", "mpi (Open MPI v4.1.4 ...)", "nccl 2.21.5 over mpi"
DistLaunch dist_launch(const Dist *d);
int dist_rank(const Dist *d);
int dist_world(const Dist *d);
int dist_local_rank(const Dist *d);     // rank among the processes of this node
int dist_local_world(const Dist *d);
double dist_timeout(const Dist *d);
const char *dist_error(const Dist *d);
long long dist_seq(const Dist *d);      // collectives issued so far

// ---------------------------------------------------------------- collectives
// Host memory. `what` names the operation in messages ("gradient all-reduce").
// MEAN divides the sum by the world (for floating point types only); MAX is
// for the f64 version only.
int dist_allreduce_f32(Dist *d, float *buf, size_t n, DistOp op, const char *what);
int dist_allreduce_f64(Dist *d, double *buf, size_t n, DistOp op, const char *what);
// Several slices of one float array reduced as one collective (a gradient
// bucket whose parameters are not contiguous): base + r[i].offset, r[i].count.
typedef struct {
  size_t offset, count;
} DistRange;
int dist_allreduce_ranges_f32(Dist *d, float *base, const DistRange *r, int n, DistOp op,
                              const char *what);
int dist_broadcast(Dist *d, void *buf, size_t bytes, int root, const char *what);
// all: world * bytes, rank r's at all + r * bytes.
int dist_allgather(Dist *d, const void *mine, void *all, size_t bytes, const char *what);
int dist_barrier(Dist *d, const char *what);

// Ends every process of the job with `code` (never returns): MPI_Abort over
// MPI, ncclCommAbort and exit under the local launcher (whose parent then stops
// the others), exit in a single process.
void dist_abort(Dist *d, int code) __attribute__((noreturn));

// 1 on every rank when any rank's flag is set (a stop request, an error seen
// by one rank). Returns 0/1, or -1 on a failed collective.
int dist_any(Dist *d, int flag, const char *what);

// Checks that `bytes` of data are the same on every rank (a 64-bit hash of
// each, gathered). Returns 0 when equal; 1 when they differ, with a message in
// dist_error naming the ranks that differ from rank 0; -1 on a failed
// collective.
int dist_check_equal(Dist *d, const void *data, size_t bytes, const char *what);

// 64-bit FNV-1a hash (what dist_check_equal compares).
uint64_t dist_hash(const void *data, size_t bytes, uint64_t h);

#endif
