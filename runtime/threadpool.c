// runtime/threadpool.c — the pthread pool of threadpool.h.
//
// A job is open while `gen` is odd. The caller publishes one (fields written,
// then gen made odd under the mutex, with a broadcast), claims tasks from the
// atomic `next` like any worker, and returns when `finished` counts every
// task: it never waits for a worker that has not woken up, so a descheduled
// worker on a busy machine costs nothing. Before the next job the caller
// closes the old one (gen made even) and waits until no worker is `active`
// inside it; a worker counts itself active before re-checking that the job it
// saw is still open (sequentially consistent atomics on both sides), so job
// fields never change under a worker that reads them.
//
// Waiting first spins a little (a training step runs hundreds of short jobs,
// and a sleeping thread takes tens of microseconds to wake), then blocks on a
// condition variable so an idle pool costs no CPU. The spin is adaptive: a
// wait that had to sleep anyway halves the next waits' spin (down to
// TP_SPIN_MIN polls), a wait that the spin served doubles it back (up to
// TP_SPIN). On a machine busier than its CPUs the thread waited for is often
// descheduled: spinning then only burns the time slice and lowers the
// spinner's scheduling priority, so the pool soon sleeps at once, as an
// OpenMP runtime with a passive wait policy does; on a quiet machine the
// spins succeed and stay long.
#include "runtime/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"

enum {
  TP_SPIN = 1 << 13,    // most polls before sleeping (tens of microseconds)
  TP_SPIN_MIN = 1 << 6, // fewest
};

typedef struct {
  struct ThreadPool *tp;
  int id;
  pthread_t thread;
} TpWorker;

struct ThreadPool {
  int threads;    // caller included
  int n_workers;  // threads - 1
  TpWorker *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake;  // workers wait here for an open job
  pthread_cond_t done;  // the caller waits here for `finished`
  atomic_uint gen;      // odd: a job is open
  atomic_int next;      // next task to claim
  atomic_int finished;  // tasks completed
  atomic_int active;    // workers inside the current job
  atomic_int caller_asleep;
  atomic_int stop;
  atomic_int spin_job;   // current spin budget of workers waiting for a job
  atomic_int spin_done;  // ... of the caller waiting for the tasks to finish
  // The current job; written only while it is closed and no worker is active.
  TpTaskFn fn;
  void *ctx;
  int n_tasks;
};

static void tp_check(int rc, const char *call) {
  if (rc != 0) nao_internal("%s failed: %s", call, strerror(rc));
}

static inline void tp_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__ __volatile__("pause");
#endif
}

int tp_default_threads(void) {
  const char *env = getenv("NAO_THREADS");
  if (env && *env) {
    char *end;
    errno = 0;
    long v = strtol(env, &end, 10);
    if (!errno && *end == '\0' && v > 0 && v <= 1024) return (int)v;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)(n > 1024 ? 1024 : n) : 1;
}

// Runs tasks until none is left; wakes the caller when the last one finishes.
static void tp_claim_tasks(ThreadPool *tp, int thread) {
  const int n = tp->n_tasks;
  for (;;) {
    int t = atomic_fetch_add_explicit(&tp->next, 1, memory_order_relaxed);
    if (t >= n) return;
    tp->fn(tp->ctx, t, thread);
    int f = atomic_fetch_add(&tp->finished, 1) + 1;  // seq_cst: pairs with caller_asleep
    if (f == n && thread != 0 && atomic_load(&tp->caller_asleep)) {
      tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
      tp_check(pthread_cond_signal(&tp->done), "pthread_cond_signal");
      tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
    }
  }
}

// After a wait: the spin served it (spun < limit polls) or it slept.
static void tp_adapt(atomic_int *budget, int limit, int served) {
  int next = served ? (limit < TP_SPIN ? limit * 2 : TP_SPIN) : (limit > TP_SPIN_MIN ? limit / 2 : TP_SPIN_MIN);
  if (next != limit) atomic_store_explicit(budget, next, memory_order_relaxed);
}

// Waits for an open job other than `seen` (or stop); returns its generation.
static unsigned tp_wait_job(ThreadPool *tp, unsigned seen) {
  const int limit = atomic_load_explicit(&tp->spin_job, memory_order_relaxed);
  for (int i = 0; i < limit; i++) {
    unsigned g = atomic_load(&tp->gen);
    if (((g & 1u) && g != seen) || atomic_load_explicit(&tp->stop, memory_order_relaxed)) {
      tp_adapt(&tp->spin_job, limit, 1);
      return g;
    }
    tp_pause();
  }
  tp_adapt(&tp->spin_job, limit, 0);
  tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
  unsigned g;
  while (g = atomic_load(&tp->gen), !((g & 1u) && g != seen) && !atomic_load(&tp->stop))
    tp_check(pthread_cond_wait(&tp->wake, &tp->mu), "pthread_cond_wait");
  tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
  return g;
}

static void *tp_worker_main(void *arg) {
  TpWorker *w = arg;
  ThreadPool *tp = w->tp;
  unsigned seen = 0;
  for (;;) {
    unsigned g = tp_wait_job(tp, seen);
    if (atomic_load(&tp->stop)) return NULL;
    atomic_fetch_add(&tp->active, 1);
    if (atomic_load(&tp->gen) == g) {  // still open: its fields are stable
      seen = g;
      tp_claim_tasks(tp, w->id);
    }
    atomic_fetch_sub(&tp->active, 1);
  }
}

ThreadPool *tp_create(int threads) {
  if (threads <= 0) threads = tp_default_threads();
  ThreadPool *tp = xcalloc(1, sizeof *tp);
  tp->threads = threads;
  tp->n_workers = threads - 1;
  atomic_init(&tp->gen, 0);
  atomic_init(&tp->next, 0);
  atomic_init(&tp->finished, 0);
  atomic_init(&tp->active, 0);
  atomic_init(&tp->caller_asleep, 0);
  atomic_init(&tp->stop, 0);
  atomic_init(&tp->spin_job, TP_SPIN);
  atomic_init(&tp->spin_done, TP_SPIN);
  tp_check(pthread_mutex_init(&tp->mu, NULL), "pthread_mutex_init");
  tp_check(pthread_cond_init(&tp->wake, NULL), "pthread_cond_init");
  tp_check(pthread_cond_init(&tp->done, NULL), "pthread_cond_init");
  tp->workers = xcalloc((size_t)(tp->n_workers ? tp->n_workers : 1), sizeof *tp->workers);
  for (int i = 0; i < tp->n_workers; i++) {
    tp->workers[i].tp = tp;
    tp->workers[i].id = i + 1;
    tp_check(pthread_create(&tp->workers[i].thread, NULL, tp_worker_main, &tp->workers[i]),
             "pthread_create (thread pool worker)");
  }
  return tp;
}

// Makes gen odd (open) or even (closed); opening wakes sleeping workers.
static void tp_set_open(ThreadPool *tp, int open) {
  if (!open) {
    atomic_fetch_add(&tp->gen, 1u);
    return;
  }
  tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
  atomic_fetch_add(&tp->gen, 1u);
  tp_check(pthread_cond_broadcast(&tp->wake), "pthread_cond_broadcast");
  tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
}

void tp_destroy(ThreadPool *tp) {
  if (!tp) return;
  tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
  atomic_store(&tp->stop, 1);
  tp_check(pthread_cond_broadcast(&tp->wake), "pthread_cond_broadcast");
  tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
  for (int i = 0; i < tp->n_workers; i++)
    tp_check(pthread_join(tp->workers[i].thread, NULL), "pthread_join");
  pthread_cond_destroy(&tp->done);
  pthread_cond_destroy(&tp->wake);
  pthread_mutex_destroy(&tp->mu);
  free(tp->workers);
  free(tp);
}

int tp_threads(const ThreadPool *tp) { return tp ? tp->threads : 1; }

static void tp_wait_finished(ThreadPool *tp) {
  const int limit = atomic_load_explicit(&tp->spin_done, memory_order_relaxed);
  for (int i = 0; i < limit; i++) {
    if (atomic_load_explicit(&tp->finished, memory_order_acquire) == tp->n_tasks) {
      tp_adapt(&tp->spin_done, limit, 1);
      return;
    }
    tp_pause();
  }
  tp_adapt(&tp->spin_done, limit, 0);
  tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
  atomic_store(&tp->caller_asleep, 1);
  while (atomic_load(&tp->finished) != tp->n_tasks)
    tp_check(pthread_cond_wait(&tp->done, &tp->mu), "pthread_cond_wait");
  atomic_store(&tp->caller_asleep, 0);
  tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
}

void tp_run(ThreadPool *tp, int n_tasks, TpTaskFn fn, void *ctx) {
  if (n_tasks <= 0) return;
  if (!tp || tp->n_workers == 0 || n_tasks == 1) {
    for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
    return;
  }
  // The previous job is closed; wait for workers still inside it to leave.
  for (int i = 0; atomic_load(&tp->active) != 0; i++) {
    if (i < TP_SPIN) tp_pause();
    else sched_yield();
  }
  tp->fn = fn;
  tp->ctx = ctx;
  tp->n_tasks = n_tasks;
  atomic_store(&tp->next, 0);
  atomic_store(&tp->finished, 0);
  tp_set_open(tp, 1);
  tp_claim_tasks(tp, 0);
  tp_wait_finished(tp);
  tp_set_open(tp, 0);
}
