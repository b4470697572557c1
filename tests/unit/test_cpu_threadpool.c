// tests/unit/test_cpu_threadpool.c — the thread pool: every task runs exactly
// once for pools of 1..4 threads and task counts around the thread count,
// thousands of back-to-back jobs (the publish / finish handshake), a NULL pool
// runs inline, thread ids stay in range, NAO_THREADS is honoured.
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/threadpool.h"
#include "tests/unit/cpu_testutil.h"

typedef struct {
  atomic_int *count;
  int threads;
  atomic_int bad_thread;
} Job;

static void count_task(void *ctx, int task, int thread) {
  Job *j = ctx;
  atomic_fetch_add(&j->count[task], 1);
  if (thread < 0 || thread >= j->threads) atomic_store(&j->bad_thread, 1);
}

int main(void) {
  enum { MAX_TASKS = 67 };
  atomic_int count[MAX_TASKS];
  for (int th = 0; th <= 4; th++) {
    ThreadPool *tp = th ? tp_create(th) : NULL;
    CPUT_CHECK(tp_threads(tp) == (th ? th : 1), "tp_threads %d for %d", tp_threads(tp), th);
    for (int rep = 0; rep < 3000; rep++) {
      int n = rep % MAX_TASKS;
      for (int i = 0; i < MAX_TASKS; i++) atomic_init(&count[i], 0);
      Job j;
      j.count = count;
      j.threads = tp_threads(tp);
      atomic_init(&j.bad_thread, 0);
      tp_run(tp, n, count_task, &j);
      int wrong = 0;
      for (int i = 0; i < MAX_TASKS; i++) wrong += atomic_load(&count[i]) != (i < n);
      if (wrong || atomic_load(&j.bad_thread)) {
        CPUT_CHECK(0, "%d threads, %d tasks: %d tasks ran a wrong number of times", th, n, wrong);
        break;
      }
    }
    tp_destroy(tp);
  }
  setenv("NAO_THREADS", "3", 1);
  CPUT_CHECK(tp_default_threads() == 3, "NAO_THREADS=3 gave %d", tp_default_threads());
  setenv("NAO_THREADS", "zero", 1);
  CPUT_CHECK(tp_default_threads() >= 1, "a bad NAO_THREADS must fall back to the CPUs");
  if (cput_failures) {
    fprintf(stderr, "test_cpu_threadpool: %d failures\n", cput_failures);
    return 1;
  }
  printf("test_cpu_threadpool: ok\n");
  return 0;
}
