// runtime/threadpool.c — the pthread pool of threadpool.h.
//
// A job is published by bumping `gen` (under the mutex, with a broadcast);
// every worker joins every job, claims task indices from the atomic `next`
// until they run out, then counts itself in `done`. The caller claims tasks
// too and returns once `done` reaches the number of workers, so job fields
// never change while a worker may still read them. Waiting first spins a
// little (a training step runs hundreds of short jobs, and a sleeping thread
// takes tens of microseconds to wake), then blocks on a condition variable so
// an idle pool costs no CPU.
#include "runtime/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"

enum { TP_SPIN = 1 << 14 };  // polls before sleeping (~tens of microseconds)

typedef struct {
  struct ThreadPool *tp;
  int id;
  pthread_t thread;
} TpWorker;

struct ThreadPool {
  int threads;         // caller included
  int n_workers;       // threads - 1
  TpWorker *workers;
  pthread_mutex_t mu;
  pthread_cond_t wake;      // workers wait here for a new generation
  pthread_cond_t finished;  // the caller waits here for `done`
  atomic_uint gen;
  atomic_int next;
  atomic_int done;
  atomic_int stop;
  // The current job; written only while no worker runs one.
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

static void tp_claim_tasks(ThreadPool *tp, int thread) {
  for (;;) {
    int t = atomic_fetch_add_explicit(&tp->next, 1, memory_order_relaxed);
    if (t >= tp->n_tasks) return;
    tp->fn(tp->ctx, t, thread);
  }
}

// Waits until gen differs from `seen`; returns the new generation.
static unsigned tp_wait_gen(ThreadPool *tp, unsigned seen) {
  for (int i = 0; i < TP_SPIN; i++) {
    unsigned g = atomic_load_explicit(&tp->gen, memory_order_acquire);
    if (g != seen) return g;
    tp_pause();
  }
  tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
  unsigned g;
  while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen)
    tp_check(pthread_cond_wait(&tp->wake, &tp->mu), "pthread_cond_wait");
  tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
  return g;
}

static void *tp_worker_main(void *arg) {
  TpWorker *w = arg;
  ThreadPool *tp = w->tp;
  unsigned seen = 0;
  for (;;) {
    seen = tp_wait_gen(tp, seen);
    if (atomic_load_explicit(&tp->stop, memory_order_acquire)) return NULL;
    tp_claim_tasks(tp, w->id);
    int d = atomic_fetch_add_explicit(&tp->done, 1, memory_order_acq_rel) + 1;
    if (d == tp->n_workers) {
      tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
      tp_check(pthread_cond_signal(&tp->finished), "pthread_cond_signal");
      tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
    }
  }
}

ThreadPool *tp_create(int threads) {
  if (threads <= 0) threads = tp_default_threads();
  ThreadPool *tp = xcalloc(1, sizeof *tp);
  tp->threads = threads;
  tp->n_workers = threads - 1;
  atomic_init(&tp->gen, 0);
  atomic_init(&tp->next, 0);
  atomic_init(&tp->done, 0);
  atomic_init(&tp->stop, 0);
  tp_check(pthread_mutex_init(&tp->mu, NULL), "pthread_mutex_init");
  tp_check(pthread_cond_init(&tp->wake, NULL), "pthread_cond_init");
  tp_check(pthread_cond_init(&tp->finished, NULL), "pthread_cond_init");
  tp->workers = xcalloc((size_t)(tp->n_workers ? tp->n_workers : 1), sizeof *tp->workers);
  for (int i = 0; i < tp->n_workers; i++) {
    tp->workers[i].tp = tp;
    tp->workers[i].id = i + 1;
    tp_check(pthread_create(&tp->workers[i].thread, NULL, tp_worker_main, &tp->workers[i]),
             "pthread_create (thread pool worker)");
  }
  return tp;
}

static void tp_publish(ThreadPool *tp) {
  tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
  atomic_fetch_add_explicit(&tp->gen, 1, memory_order_release);
  tp_check(pthread_cond_broadcast(&tp->wake), "pthread_cond_broadcast");
  tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
}

void tp_destroy(ThreadPool *tp) {
  if (!tp) return;
  atomic_store_explicit(&tp->stop, 1, memory_order_release);
  tp_publish(tp);
  for (int i = 0; i < tp->n_workers; i++)
    tp_check(pthread_join(tp->workers[i].thread, NULL), "pthread_join");
  pthread_cond_destroy(&tp->finished);
  pthread_cond_destroy(&tp->wake);
  pthread_mutex_destroy(&tp->mu);
  free(tp->workers);
  free(tp);
}

int tp_threads(const ThreadPool *tp) { return tp ? tp->threads : 1; }

static void tp_wait_done(ThreadPool *tp) {
  for (int i = 0; i < TP_SPIN; i++) {
    if (atomic_load_explicit(&tp->done, memory_order_acquire) == tp->n_workers) return;
    tp_pause();
  }
  tp_check(pthread_mutex_lock(&tp->mu), "pthread_mutex_lock");
  while (atomic_load_explicit(&tp->done, memory_order_acquire) != tp->n_workers)
    tp_check(pthread_cond_wait(&tp->finished, &tp->mu), "pthread_cond_wait");
  tp_check(pthread_mutex_unlock(&tp->mu), "pthread_mutex_unlock");
}

void tp_run(ThreadPool *tp, int n_tasks, TpTaskFn fn, void *ctx) {
  if (n_tasks <= 0) return;
  if (!tp || tp->n_workers == 0 || n_tasks == 1) {
    for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
    return;
  }
  tp->fn = fn;
  tp->ctx = ctx;
  tp->n_tasks = n_tasks;
  atomic_store_explicit(&tp->next, 0, memory_order_relaxed);
  atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
  tp_publish(tp);
  tp_claim_tasks(tp, 0);
  tp_wait_done(tp);
}
