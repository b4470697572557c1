// tests/tools/launch_worker.c — a child for tests/e2e/dist_launch.sh: reads
// the launcher's environment with dist_env_detect and writes heartbeats to
// its pipe as a communicator does (one 8-byte collective number each).
//   launch_worker env                  prints what the environment says, exits 0
//   launch_worker steps N [ACT R K]    N heartbeats 20 ms apart; rank R at step
//                                      K does ACT: die (exit 3), kill (SIGKILL),
//                                      hang (sleeps, no more heartbeats), deaf
//                                      (ignores SIGINT and SIGTERM, then hangs)
//   launch_worker signal               heartbeats until a signal; exits 128+sig
//                                      after 300 ms if exactly one came, else 99
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/dist.h"

static volatile sig_atomic_t got, last;
static void on_sig(int s) { last = s, got++; }

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void beat(const DistEnv *e, long long k) {
  if (e->heartbeat_fd < 0) return;
  if (write(e->heartbeat_fd, &k, sizeof k) != (ssize_t)sizeof k) perror("launch_worker: heartbeat");
}

int main(int argc, char **argv) {
  DistEnv e;
  char err[300];
  if (dist_env_detect(NULL, NULL, &e, err, sizeof err) != 0) {
    fprintf(stderr, "launch_worker: %s\n", err);
    return 1;
  }
  if (argc < 2) return 2;
  if (!strcmp(argv[1], "env")) {
    unsigned sum = 0;
    for (int i = 0; i < DIST_NCCL_ID_BYTES; i++) sum = sum * 31 + e.nccl_id[i];
    printf("rank %d of %d, local %d of %d, launch %s, nccl id %s %02x%02x..%02x sum %u, timeout %g, fd %s\n",
           e.rank, e.world, e.local_rank, e.local_world, dist_launch_name(e.launch),
           e.has_nccl_id ? "yes" : "no", e.nccl_id[0], e.nccl_id[1], e.nccl_id[DIST_NCCL_ID_BYTES - 1],
           sum, e.timeout, e.heartbeat_fd >= 0 ? "yes" : "no");
    return 0;
  }
  if (!strcmp(argv[1], "steps") && argc >= 3) {
    int n = atoi(argv[2]), who = argc >= 6 ? atoi(argv[4]) : -1, at = argc >= 6 ? atoi(argv[5]) : -1;
    const char *act = argc >= 6 ? argv[3] : "";
    for (int k = 1; k <= n; k++) {
      if (e.rank == who && k == at) {
        if (!strcmp(act, "die")) return 3;
        if (!strcmp(act, "kill")) raise(SIGKILL);
        if (!strcmp(act, "deaf")) signal(SIGINT, SIG_IGN), signal(SIGTERM, SIG_IGN);
        if (!strcmp(act, "hang") || !strcmp(act, "deaf")) for (;;) nap_ms(1000);
      }
      beat(&e, k);
      nap_ms(20);
    }
    return 0;
  }
  if (!strcmp(argv[1], "signal")) {
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    for (long long k = 1; !got; k++) beat(&e, k), nap_ms(20);
    nap_ms(300);
    return got == 1 ? 128 + last : 99;
  }
  return 2;
}
