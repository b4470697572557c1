// runtime/threadpool.h — a fixed pool of pthreads running parallel-for loops.
//
// tp_run(pool, n_tasks, fn, ctx) calls fn(ctx, task, thread) once for every
// task in [0, n_tasks) and returns when all have finished. The caller's thread
// takes part (it is thread 0; workers are 1..threads-1), so a pool of one
// thread runs everything inline and a NULL pool means "one thread".
//
// Tasks are claimed dynamically, so which thread runs a task is not fixed:
// kernels make results independent of the thread count by defining tasks by
// the problem (per sample, per channel, fixed-size chunks) and never
// accumulating across tasks except in a fixed order afterwards. `thread` is
// only for indexing per-thread scratch memory.
//
// Not reentrant: a task must not call tp_run on the same pool. One caller at a
// time per pool.
#ifndef NAO_THREADPOOL_H
#define NAO_THREADPOOL_H

typedef struct ThreadPool ThreadPool;
typedef void (*TpTaskFn)(void *ctx, int task, int thread);

// Threads to use when none are asked for: NAO_THREADS from the environment
// when it is a positive integer, else the number of online CPUs (at least 1).
int tp_default_threads(void);

// A pool of `threads` threads in all (the caller included); threads <= 0 means
// tp_default_threads(). Exits 70 when a thread cannot be created.
ThreadPool *tp_create(int threads);
void tp_destroy(ThreadPool *tp);  // NULL is fine
int tp_threads(const ThreadPool *tp);  // 1 for NULL

// Runs fn for tasks 0..n_tasks-1 on all threads; returns when all are done.
void tp_run(ThreadPool *tp, int n_tasks, TpTaskFn fn, void *ctx);

#endif
