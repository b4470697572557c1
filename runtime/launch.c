// runtime/launch.c — the local launcher (launch.h): fork/exec of N children,
// signal forwarding, exit statuses, heartbeats and hang detection.
//
// Why fork/exec and not a re-exec under mpirun: a GPU machine need not have
// an MPI installed (the CUDA image this project runs on has none), NCCL
// inside one node needs no MPI (the unique id travels in the environment),
// and supervising the children directly lets the launcher name a rank that
// died or hung and forward signals exactly once (docs/distributed.md).
//
// Everything a child needs (its argv and environment) is built before the
// first fork: between fork and exec the child calls only async-signal-safe
// functions, because the parent may have threads (NCCL's bootstrap root).
#include "runtime/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/dist.h"

extern char **environ;

// The launcher's signal flags: the only state a handler can reach.
static volatile sig_atomic_t launch_signals, launch_last_signal;

static void on_signal(int sig) {
  launch_last_signal = sig;
  launch_signals++;
}

typedef struct {
  pid_t pid;
  int fd;                 // heartbeat pipe (read end), -1 once closed
  int running;
  int status;             // waitpid status once ended
  long long seq;          // the last collective it reached
  unsigned char part[8];  // a heartbeat split across reads
  int n_part;
  double changed_at;      // when its heartbeat last advanced (or it started)
} Child;

typedef struct {
  const LaunchOptions *o;
  Child *c;
  int n, running;
  int stopping;           // a signal was forwarded
  int failing;            // stopping everyone after a failure
  double kill_at;         // SIGKILL the rest at this time (failing)
  LaunchResult *r;
  struct pollfd *pf;      // (n) scratch of read_heartbeats
  int *map;               // (n)
} Launch;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int launch_self_path(char *out, size_t outlen, char *err, size_t errlen) {
  ssize_t n = readlink("/proc/self/exe", out, outlen - 1);
  if (n <= 0 || (size_t)n >= outlen - 1) {
    snprintf(err, errlen, "cannot find this program's path (/proc/self/exe): %s", n < 0 ? strerror(errno) : "too long");
    return -1;
  }
  out[n] = 0;
  return 0;
}

// ---------------------------------------------------------------- environment

static char *env_int(const char *name, long long v) {
  size_t len = strlen(name) + 32;
  char *s = xmalloc(len);
  snprintf(s, len, "%s=%lld", name, v);
  return s;
}

// The parent's environment without NAO_DIST_* and with rank's variables.
static char **child_env(const LaunchOptions *o, int rank, int fd) {
  size_t n = 0;
  while (environ && environ[n]) n++;
  char **env = xcalloc(n + 8, sizeof *env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "NAO_DIST_", 9) != 0) env[k++] = xstrdup(environ[i]);
  env[k++] = env_int("NAO_DIST_RANK", rank);
  env[k++] = env_int("NAO_DIST_WORLD", o->n);
  env[k++] = env_int("NAO_DIST_LOCAL_RANK", rank);
  env[k++] = env_int("NAO_DIST_LOCAL_WORLD", o->n);
  env[k++] = env_int("NAO_DIST_HEARTBEAT_FD", fd);
  if (o->timeout > 0) {
    char t[64];
    snprintf(t, sizeof t, "NAO_DIST_TIMEOUT=%.17g", o->timeout);
    env[k++] = xstrdup(t);
  }
  if (o->nccl_id) {
    char *s = xmalloc(sizeof "NAO_DIST_NCCL_ID=" + 2 * DIST_NCCL_ID_BYTES);
    int len = snprintf(s, 32, "NAO_DIST_NCCL_ID=");
    for (int i = 0; i < DIST_NCCL_ID_BYTES; i++) len += snprintf(s + len, 3, "%02x", o->nccl_id[i]);
    env[k++] = s;
  }
  env[k] = NULL;
  return env;
}

static void free_env(char **env) {
  for (size_t i = 0; env && env[i]; i++) free(env[i]);
  free(env);
}

// ---------------------------------------------------------------- starting

// In the child, between fork and exec: async-signal-safe calls only.
static void child_exec(const LaunchOptions *o, char **env, int fd, pid_t parent) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(70);  // the parent died before prctl
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  fcntl(fd, F_SETFD, 0);  // the heartbeat pipe survives exec; the others close
  execve(o->argv[0], o->argv, env);
  static const char msg[] = ": cannot execute the program for a rank\n";
  ssize_t w = write(2, o->argv[0], strlen(o->argv[0]));
  w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(127);
}

static void stop_all(Launch *l, int sig) {
  for (int i = 0; i < l->n; i++)
    if (l->c[i].running) kill(l->c[i].pid, sig);
}

static int start_children(Launch *l, char *err, size_t errlen) {
  const LaunchOptions *o = l->o;
  pid_t parent = getpid();
  for (int i = 0; i < l->n; i++) {
    int p[2];
    if (pipe(p) != 0) {
      snprintf(err, errlen, "pipe: %s", strerror(errno));
      return -1;
    }
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    char **env = child_env(o, i, p[1]);
    pid_t pid = fork();
    if (pid == 0) child_exec(o, env, p[1], parent);
    free_env(env);
    close(p[1]);
    if (pid < 0) {
      close(p[0]);
      snprintf(err, errlen, "fork (rank %d): %s", i, strerror(errno));
      return -1;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    l->c[i] = (Child){.pid = pid, .fd = p[0], .running = 1, .changed_at = now_s()};
    l->running++;
    if (o->verbose) fprintf(stderr, "%s: rank %d is pid %d\n", o->prog, i, (int)pid);
  }
  return 0;
}

// ---------------------------------------------------------------- supervising

static void read_heartbeats(Launch *l) {
  struct pollfd *pf = l->pf;
  int *map = l->map, n = 0;
  for (int i = 0; i < l->n; i++)
    if (l->c[i].fd >= 0) pf[n] = (struct pollfd){l->c[i].fd, POLLIN, 0}, map[n++] = i;
  if (n == 0 || poll(pf, (nfds_t)n, 50) <= 0) {
    if (n == 0) {
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    return;
  }
  for (int k = 0; k < n; k++) {
    Child *c = &l->c[map[k]];
    if (!(pf[k].revents & (POLLIN | POLLHUP))) continue;
    unsigned char buf[4096];
    ssize_t got;
    while ((got = read(c->fd, buf, sizeof buf)) > 0)
      for (ssize_t i = 0; i < got; i++) {
        c->part[c->n_part++] = buf[i];
        if (c->n_part < 8) continue;
        long long s;
        memcpy(&s, c->part, 8);
        if (s > c->seq) c->seq = s, c->changed_at = now_s();
        c->n_part = 0;
      }
    if (got == 0) close(c->fd), c->fd = -1;  // the child closed it (exit or exec of something else)
  }
}

static void describe(const Child *c, int rank, char *out, size_t outlen) {
  if (WIFSIGNALED(c->status))
    snprintf(out, outlen, "rank %d (pid %d) was killed by signal %d (%s)", rank, (int)c->pid,
             WTERMSIG(c->status), strsignal(WTERMSIG(c->status)));
  else
    snprintf(out, outlen, "rank %d (pid %d) exited with status %d", rank, (int)c->pid,
             WEXITSTATUS(c->status));
}

static int exit_code(int status) {
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static void begin_failing(Launch *l, int rank, int status_out, int hung) {
  l->failing = 1;
  l->kill_at = now_s() + (l->o->grace > 0 ? l->o->grace : 5);
  l->r->failed_rank = rank;
  l->r->hung = hung;
  l->r->status = status_out;
  fprintf(stderr, "%s: %s\n", l->o->prog, l->r->why);
  fflush(stderr);
  stop_all(l, SIGTERM);
}

static void reap(Launch *l) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < l->n; i++) {
      Child *c = &l->c[i];
      if (c->pid != pid || !c->running) continue;
      c->running = 0, c->status = status;
      l->running--;
      int code = exit_code(status);
      int expected = code == 0 || (l->stopping && code == 128 + (int)launch_last_signal);
      if (!expected && !l->failing) {
        char what[200];
        describe(c, i, what, sizeof what);
        snprintf(l->r->why, sizeof l->r->why, "%s; stopping the other ranks", what);
        begin_failing(l, i, code, 0);
      }
    }
  }
}

// A rank whose heartbeat has not advanced for the timeout while another rank
// is ahead of it is hung: the others wait for it in a collective (they do not
// advance either, but nobody is ahead of them). A slow rank that advances is
// not.
static void detect_hang(Launch *l, double now) {
  if (l->o->timeout <= 0 || l->failing || l->stopping) return;
  long long top = 0;
  int top_rank = -1;
  for (int i = 0; i < l->n; i++)
    if (l->c[i].seq > top) top = l->c[i].seq, top_rank = i;
  for (int i = 0; i < l->n; i++) {
    Child *c = &l->c[i];
    if (!c->running || c->seq >= top || now - c->changed_at < l->o->timeout) continue;
    snprintf(l->r->why, sizeof l->r->why,
             "rank %d (pid %d) made no progress for %.0f s: it has not reached collective #%lld, "
             "which rank %d reached (hung?); stopping all ranks",
             i, (int)c->pid, now - c->changed_at, c->seq + 1, top_rank);
    begin_failing(l, i, 70, 1);
    return;
  }
}

static void forward_signals(Launch *l, int *seen) {
  if (launch_signals == *seen) return;
  *seen = launch_signals;
  if (*seen == 1 && !l->failing) {
    l->stopping = 1;
    stop_all(l, (int)launch_last_signal);
  } else {
    stop_all(l, SIGKILL);
  }
}

int launch_run(const LaunchOptions *o, LaunchResult *r) {
  memset(r, 0, sizeof *r);
  r->failed_rank = -1;
  if (o->n < 1 || !o->argv || !o->argv[0]) {
    snprintf(r->why, sizeof r->why, "launch: nothing to start");
    return -1;
  }
  Launch l = {o, xcalloc((size_t)o->n, sizeof(Child)), o->n, 0, 0, 0, 0, r,
              xcalloc((size_t)o->n, sizeof(struct pollfd)), xcalloc((size_t)o->n, sizeof(int))};
  struct sigaction sa, old[3];
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
  launch_signals = 0;
  for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old[i]);
  char err[300];
  int rc = start_children(&l, err, sizeof err);
  if (rc != 0) {
    snprintf(r->why, sizeof r->why, "launch: %s", err);
    stop_all(&l, SIGKILL);
  }
  int seen = 0;
  while (l.running > 0) {
    read_heartbeats(&l);
    forward_signals(&l, &seen);
    reap(&l);
    double now = now_s();
    detect_hang(&l, now);
    if (l.failing && now >= l.kill_at) stop_all(&l, SIGKILL);
  }
  for (int i = 0; i < l.n; i++)
    if (l.c[i].fd >= 0) close(l.c[i].fd);
  if (rc == 0 && !l.failing && l.stopping) r->status = 128 + (int)launch_last_signal;
  for (int i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
  free(l.c), free(l.pf), free(l.map);
  return rc;
}
