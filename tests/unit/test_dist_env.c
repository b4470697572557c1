// tests/unit/test_dist_env.c — launcher detection from the environment
// (dist_env_detect) over fake environments: mpirun, PMIx/PMI (srun, hydra),
// srun without PMI (refused), nao-train --gpus (rank, world, NCCL id, heartbeat
// pipe, timeout), malformed and contradictory variables; the single-process
// communicator; the local launcher's communicator before NCCL is attached
// (its collectives fail saying why, its heartbeats reach the pipe).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/dist.h"
#include "tests/unit/check.h"

typedef struct {
  const char *kv[24];  // "NAME=VALUE", NULL-terminated
} FakeEnv;

static const char *fake_get(void *user, const char *name) {
  const FakeEnv *e = user;
  size_t n = strlen(name);
  for (int i = 0; e->kv[i]; i++)
    if (!strncmp(e->kv[i], name, n) && e->kv[i][n] == '=') return e->kv[i] + n + 1;
  return NULL;
}

static int detect(const FakeEnv *fe, DistEnv *e, char *err, size_t errlen) {
  return dist_env_detect(fake_get, (void *)fe, e, err, errlen);
}

static void test_plain_and_mpirun(void) {
  DistEnv e;
  char err[400];
  FakeEnv none = {{"HOME=/root", "SLURM_STEP_NUM_TASKS=1", NULL}};
  CHECK(detect(&none, &e, err, sizeof err) == 0, "%s", err);
  CHECK(e.launch == DIST_LAUNCH_NONE && e.rank == 0 && e.world == 1 && e.heartbeat_fd == -1,
        "plain: launch %d rank %d world %d", e.launch, e.rank, e.world);
  FakeEnv ompi = {{"OMPI_COMM_WORLD_RANK=3", "OMPI_COMM_WORLD_SIZE=8", "OMPI_COMM_WORLD_LOCAL_RANK=1",
                   "OMPI_COMM_WORLD_LOCAL_SIZE=2", NULL}};
  CHECK(detect(&ompi, &e, err, sizeof err) == 0, "%s", err);
  CHECK(e.launch == DIST_LAUNCH_MPIRUN && e.rank == 3 && e.world == 8 && e.local_rank == 1 &&
            e.local_world == 2,
        "mpirun: %d %d %d %d %d", e.launch, e.rank, e.world, e.local_rank, e.local_world);
  FakeEnv bad = {{"OMPI_COMM_WORLD_RANK=x1", "OMPI_COMM_WORLD_SIZE=8", NULL}};
  CHECK(detect(&bad, &e, err, sizeof err) != 0 && strstr(err, "OMPI_COMM_WORLD_RANK='x1'"), "bad rank: %s", err);
  FakeEnv big = {{"OMPI_COMM_WORLD_RANK=8", "OMPI_COMM_WORLD_SIZE=8", NULL}};
  CHECK(detect(&big, &e, err, sizeof err) != 0 && strstr(err, "OMPI_COMM_WORLD_RANK=8 is not a rank of OMPI_COMM_WORLD_SIZE=8"),
        "rank >= size: %s", err);
  FakeEnv zero = {{"OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=0", NULL}};
  CHECK(detect(&zero, &e, err, sizeof err) != 0, "world 0 accepted");
}

static void test_pmi_and_slurm(void) {
  DistEnv e;
  char err[400];
  FakeEnv pmix = {{"PMIX_RANK=5", "SLURM_STEP_NUM_TASKS=16", "SLURM_LOCALID=1", "SLURM_PROCID=5", NULL}};
  CHECK(detect(&pmix, &e, err, sizeof err) == 0, "%s", err);
  CHECK(e.launch == DIST_LAUNCH_PMI && e.rank == 5 && e.world == 16 && e.local_rank == 1,
        "pmix: %d %d %d %d", e.launch, e.rank, e.world, e.local_rank);
  FakeEnv hydra = {{"PMI_RANK=2", "PMI_SIZE=4", "MPI_LOCALRANKID=0", "MPI_LOCALNRANKS=2", NULL}};
  CHECK(detect(&hydra, &e, err, sizeof err) == 0, "%s", err);
  CHECK(e.launch == DIST_LAUNCH_PMI && e.rank == 2 && e.world == 4 && e.local_rank == 0 && e.local_world == 2,
        "hydra: %d %d %d %d %d", e.launch, e.rank, e.world, e.local_rank, e.local_world);
  FakeEnv srun = {{"SLURM_STEP_NUM_TASKS=4", "SLURM_PROCID=1", NULL}};
  CHECK(detect(&srun, &e, err, sizeof err) != 0 && strstr(err, "srun --mpi=pmix") && strstr(err, "4 tasks"),
        "srun without PMI: %s", err);
}

static void test_local(void) {
  DistEnv e;
  char err[400];
  char id[2 * DIST_NCCL_ID_BYTES + 32];
  int n = snprintf(id, sizeof id, "NAO_DIST_NCCL_ID=");
  for (int i = 0; i < DIST_NCCL_ID_BYTES; i++) n += snprintf(id + n, sizeof id - (size_t)n, "%02X", (i * 7 + 3) & 255);
  FakeEnv loc = {{"NAO_DIST_RANK=1", "NAO_DIST_WORLD=4", "NAO_DIST_HEARTBEAT_FD=9", id,
                  "NAO_DIST_TIMEOUT=12.5", NULL}};
  CHECK(detect(&loc, &e, err, sizeof err) == 0, "%s", err);
  CHECK(e.launch == DIST_LAUNCH_LOCAL && e.rank == 1 && e.world == 4 && e.local_rank == 1 &&
            e.local_world == 4 && e.heartbeat_fd == 9 && e.timeout == 12.5 && e.has_nccl_id,
        "local: %d %d %d %d %d %d %g", e.launch, e.rank, e.world, e.local_rank, e.local_world,
        e.heartbeat_fd, e.timeout);
  int same = 1;
  for (int i = 0; i < DIST_NCCL_ID_BYTES; i++) same &= e.nccl_id[i] == ((i * 7 + 3) & 255);
  CHECK(same, "the NCCL id does not round-trip");
  id[40] = 'g';
  CHECK(detect(&loc, &e, err, sizeof err) != 0 && strstr(err, "not hexadecimal"), "bad hex: %s", err);
  id[60] = 0;
  CHECK(detect(&loc, &e, err, sizeof err) != 0 && strstr(err, "256 hex digits"), "short id: %s", err);
  FakeEnv half = {{"NAO_DIST_RANK=1", NULL}};
  CHECK(detect(&half, &e, err, sizeof err) != 0 && strstr(err, "NAO_DIST_WORLD"), "rank without world: %s", err);
  FakeEnv both = {{"NAO_DIST_RANK=0", "NAO_DIST_WORLD=2", "OMPI_COMM_WORLD_SIZE=2", NULL}};
  CHECK(detect(&both, &e, err, sizeof err) != 0 && strstr(err, "both"), "local and mpirun: %s", err);
  FakeEnv t = {{"NAO_DIST_TIMEOUT=soon", NULL}};
  CHECK(detect(&t, &e, err, sizeof err) != 0 && strstr(err, "NAO_DIST_TIMEOUT='soon'"), "bad timeout: %s", err);
}

static void test_single(void) {
  Dist *d = dist_open_single();
  CHECK(dist_rank(d) == 0 && dist_world(d) == 1 && dist_kind(d) == DIST_SINGLE, "single");
  float x[3] = {1, 2, 3};
  CHECK(dist_allreduce_f32(d, x, 3, DIST_MEAN, "mean") == 0 && x[0] == 1 && x[2] == 3, "single mean");
  int mine = 7, all = 0;
  CHECK(dist_allgather(d, &mine, &all, sizeof mine, "gather") == 0 && all == 7, "single all-gather");
  CHECK(dist_broadcast(d, x, sizeof x, 1, "bcast") != 0 && strstr(dist_error(d), "root 1 is not a rank of 1"),
        "broadcast from a rank that does not exist: %s", dist_error(d));
  CHECK(dist_barrier(d, "after a failure") != 0, "a failed communicator went on");
  dist_close(d);
  d = dist_open_single();
  CHECK(dist_any(d, 1, "any") == 1 && dist_any(d, 0, "any") == 0, "single any");
  CHECK(dist_check_equal(d, x, sizeof x, "x") == 0, "single check_equal");
  CHECK(dist_seq(d) == 3, "seq %lld", dist_seq(d));
  dist_close(d);
  CHECK(dist_hash("abc", 3, 0) != dist_hash("abd", 3, 0), "hash collision on a one-letter change");
}

// The local launcher's child before NCCL: collectives fail naming the reason,
// heartbeats (collective numbers) reach the parent's pipe.
static void test_local_pending(void) {
  int p[2];
  CHECK(pipe(p) == 0, "pipe");
  DistEnv e;
  memset(&e, 0, sizeof e);
  e.launch = DIST_LAUNCH_LOCAL;
  e.rank = 1, e.world = 2, e.local_rank = 1, e.local_world = 2;
  e.heartbeat_fd = p[1];
  char err[400];
  Dist *d = dist_open(&e, NULL, err, sizeof err);
  CHECK(d != NULL, "%s", err);
  if (!d) return;
  CHECK(dist_rank(d) == 1 && dist_world(d) == 2 && dist_kind(d) == DIST_NCCL, "local dist");
  float x = 1;
  CHECK(dist_allreduce_f32(d, &x, 1, DIST_SUM, "gradient all-reduce") != 0 &&
            strstr(dist_error(d), "rank 1: gradient all-reduce (collective #1)") &&
            strstr(dist_error(d), "NCCL"),
        "pending all-reduce: %s", dist_error(d));
  CHECK(dist_barrier(d, "barrier") != 0 && strstr(dist_error(d), "collective #1"), "the first error is kept: %s",
        dist_error(d));
  long long got[2] = {0, 0};
  CHECK(read(p[0], got, sizeof got) == (ssize_t)sizeof got && got[0] == 1 && got[1] == 2,
        "heartbeats %lld %lld", got[0], got[1]);
  dist_close(d);
  close(p[0]), close(p[1]);
}

int main(void) {
  test_plain_and_mpirun();
  test_pmi_and_slurm();
  test_local();
  test_single();
  test_local_pending();
  return check_done("test_dist_env");
}
