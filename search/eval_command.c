// search/eval_command.c — the `command` evaluator: any program that prints an
// accuracy for an architecture file (eval.h).
//
// Each architecture runs `/bin/sh -c LINE` where LINE is the command with every
// `{}` replaced by the architecture file's path, or, when the command has no
// `{}`, the command followed by a space and the path (paths are single-quoted
// for the shell). The child also gets NAO_ARCH (the text form), NAO_ARCH_FILE
// and NAO_SPACE in its environment, stdin from /dev/null and stderr into
// PATH.log beside the architecture file. Its accuracy is the last non-blank
// line of its stdout, which must be a number and nothing else. Up to `jobs`
// commands run at once.
//
// A non-zero exit, a signal, a timeout (when set) or output without a number
// is an error naming the arch, the command line and the last line of its
// stderr; the other commands still running are then killed and reaped.
//
// The process machinery (eval_shell_run, eval.h) is shared with the full
// evaluator's nao-train processes: the caller says which line to run and how
// a clean exit becomes an accuracy.
//
// Each command runs in its own process group, so a timeout or an error kills
// everything it started. If nao-search is interrupted (SIGINT, SIGTERM,
// SIGHUP) the running groups are killed first; if it is killed outright
// (SIGKILL), Linux sends SIGKILL to the shells it started (PR_SET_PDEATHSIG),
// but what those shells started in turn may outlive it.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "compiler/util.h"
#include "search/eval.h"

extern char **environ;

enum { OUT_KEEP = 1 << 16 };  // bytes of a command's stdout kept (the tail)

typedef struct {
  char *cmd;
  int jobs;
  double timeout;
  const SearchSpace *sp;
} Command;

typedef struct {
  int idx;
  pid_t pid;
  int fd;           // stdout, -1 once at EOF
  int exited, status, timed_out;
  double start;
  StrBuf out;
  char *line, *log;
} Job;

// ---------------------------------------------------------------- signals
// The process groups of the running commands, for the signal handler: when
// nao-search is interrupted (SIGINT, SIGTERM, SIGHUP) while commands run, they
// are killed too, then the signal takes its default course. The one piece of
// global state in the search, because a signal handler can reach nothing else.
static volatile sig_atomic_t live_pgid[64];

static void live_add(pid_t pid) {
  for (int i = 0; i < 64; i++)
    if (live_pgid[i] == 0) {
      live_pgid[i] = (sig_atomic_t)pid;
      return;
    }
}

static void live_remove(pid_t pid) {
  for (int i = 0; i < 64; i++)
    if (live_pgid[i] == (sig_atomic_t)pid) live_pgid[i] = 0;
}

static void on_signal(int sig) {
  for (int i = 0; i < 64; i++)
    if (live_pgid[i] > 0) kill(-(pid_t)live_pgid[i], SIGKILL);
  signal(sig, SIG_DFL);
  raise(sig);
}

typedef struct {
  struct sigaction old[3];
} SigSave;

static const int forwarded[3] = {SIGINT, SIGTERM, SIGHUP};

static void signals_install(SigSave *sv) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; i++) sigaction(forwarded[i], &sa, &sv->old[i]);
}

static void signals_restore(const SigSave *sv) {
  for (int i = 0; i < 3; i++) sigaction(forwarded[i], &sv->old[i], NULL);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void eval_sh_quote(StrBuf *sb, const char *s) {
  sb_append(sb, "'");
  for (; *s; s++) {
    if (*s == '\'') sb_append(sb, "'\\''");
    else sb_appendn(sb, s, 1);
  }
  sb_append(sb, "'");
}

static char *command_line(const char *cmd, const char *path) {
  StrBuf sb = {0};
  const char *p = cmd, *q;
  int substituted = 0;
  while ((q = strstr(p, "{}"))) {
    sb_appendn(&sb, p, (size_t)(q - p));
    eval_sh_quote(&sb, path);
    p = q + 2, substituted = 1;
  }
  sb_append(&sb, p);
  if (!substituted) {
    sb_append(&sb, " ");
    eval_sh_quote(&sb, path);
  }
  return sb_steal(&sb);
}

// environ without NAO_ARCH, NAO_ARCH_FILE, NAO_SPACE, plus ours. Built before
// fork: the child may only call async-signal-safe functions.
static char **child_env(const EvalItem *it, const char *space, StrBuf extra[3]) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = xcalloc(n + 4, sizeof(char *));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "NAO_ARCH=", 9) && strncmp(environ[i], "NAO_ARCH_FILE=", 14) &&
        strncmp(environ[i], "NAO_SPACE=", 10))
      env[k++] = environ[i];
  sb_printf(&extra[0], "NAO_ARCH=%s", it->text);
  sb_printf(&extra[1], "NAO_ARCH_FILE=%s", it->path);
  sb_printf(&extra[2], "NAO_SPACE=%s", space);
  for (int i = 0; i < 3; i++) env[k++] = extra[i].data;
  env[k] = NULL;
  return env;
}

static int job_start(Job *j, const EvalShell *sh, const char *space, const EvalItem *it, char *err, size_t errlen) {
  sh->prepare(sh->ctx, it, &j->line, &j->log);
  int pfd[2], logfd, nullfd;
  if ((logfd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
    return snprintf(err, errlen, "%s: cannot create the command's log: %s", j->log, strerror(errno)), -1;
  if ((nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 || pipe(pfd) != 0) {
    snprintf(err, errlen, "%s: cannot set up a child process: %s", sh->what, strerror(errno));
    close(logfd);
    if (nullfd >= 0) close(nullfd);
    return -1;
  }
  fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
  fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
  StrBuf extra[3] = {{0}, {0}, {0}};
  char **env = child_env(it, space, extra);
  char *argv[] = {"/bin/sh", "-c", j->line, NULL};
  pid_t parent = getpid();
  j->pid = fork();
  if (j->pid == 0) {  // child: async-signal-safe calls only
    setpgid(0, 0);      // its own group: a timeout kills everything it started
    if (dup2(nullfd, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(logfd, 2) < 0) _exit(127);
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
#endif
    execve("/bin/sh", argv, env);
    _exit(127);
  }
  (void)parent;
  int fork_errno = errno;
  if (j->pid > 0) {
    setpgid(j->pid, j->pid);  // also here, so that kill(-pid) works at once
    live_add(j->pid);
  }
  free(env);
  for (int i = 0; i < 3; i++) sb_free(&extra[i]);
  close(pfd[1]), close(logfd), close(nullfd);
  if (j->pid < 0) {
    close(pfd[0]);
    return snprintf(err, errlen, "%s: fork failed: %s", sh->what, strerror(fork_errno)), -1;
  }
  j->fd = pfd[0];
  j->start = now_s();
  return 0;
}

// The last non-blank line of the command's log (its stderr), or "".
static void last_log_line(const char *path, char *out, size_t outlen) {
  size_t len;
  const char *why;
  char *buf = nao_read_file(path, &len, &why);
  out[0] = '\0';
  if (!buf) return;
  while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ')) len--;
  size_t s = len;
  while (s && buf[s - 1] != '\n') s--;
  snprintf(out, outlen, "%.*s", (int)(len - s > 200 ? 200 : len - s), buf + s);
  free(buf);
}

// The command's accuracy: the last non-blank line of its stdout. Otherwise
// what it printed, in what (the rest of the message is job_result's).
static int command_result(void *ctx, const EvalItem *it, const char *o, size_t e, double *acc, char *what,
                          size_t whatlen) {
  (void)ctx, (void)it;
  while (e && (o[e - 1] == '\n' || o[e - 1] == '\r' || o[e - 1] == ' ' || o[e - 1] == '\t')) e--;
  size_t s = e;
  while (s && o[s - 1] != '\n') s--;
  if (eval_parse_accuracy(o + s, e - s, acc) == 0) return 0;
  if (e == 0) snprintf(what, whatlen, "printed nothing on stdout (expected an accuracy)");
  else snprintf(what, whatlen, "printed '%.*s' as its last line (expected an accuracy)", (int)(e - s > 60 ? 60 : e - s),
                o + s);
  return -1;
}

// The job finished: its accuracy, or an error naming arch, command and stderr.
static int job_result(const EvalShell *sh, const Job *j, const EvalItem *it, double *acc, char *err, size_t errlen) {
  char tail[256], what[600];
  last_log_line(j->log, tail, sizeof tail);
  if (j->timed_out) snprintf(what, sizeof what, "did not finish in time (killed)");
  else if (WIFSIGNALED(j->status)) snprintf(what, sizeof what, "was killed by signal %d", WTERMSIG(j->status));
  else if (WEXITSTATUS(j->status) != 0) snprintf(what, sizeof what, "exited with status %d", WEXITSTATUS(j->status));
  else if (sh->result(sh->ctx, it, j->out.data ? j->out.data : "", j->out.len, acc, what, sizeof what) == 0) return 0;
  snprintf(err, errlen, "%s: arch '%s': `%s` %s%s%s%s%s", sh->what, it->text, j->line, what,
           tail[0] ? "; its stderr (" : "", tail[0] ? j->log : "", tail[0] ? ") ends: " : "", tail);
  return -1;
}

static void job_read(Job *j) {
  char buf[4096];
  ssize_t k = read(j->fd, buf, sizeof buf);
  if (k < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (k <= 0) {
    close(j->fd);
    j->fd = -1;
    return;
  }
  sb_appendn(&j->out, buf, (size_t)k);
  if (j->out.len > 2 * OUT_KEEP) {  // keep the tail
    memmove(j->out.data, j->out.data + j->out.len - OUT_KEEP, OUT_KEEP);
    j->out.len = OUT_KEEP;
    j->out.data[OUT_KEEP] = '\0';
  }
}

static void job_free(Job *j) {
  if (j->fd >= 0) close(j->fd);
  sb_free(&j->out);
  free(j->line), free(j->log);
  memset(j, 0, sizeof *j);
  j->fd = -1;
}

static void reap_all(Job *jobs, int n) {  // after an error: kill and reap the others
  for (int i = 0; i < n; i++)
    if (jobs[i].pid > 0 && !jobs[i].exited) kill(-jobs[i].pid, SIGKILL);
  for (int i = 0; i < n; i++) {
    if (jobs[i].pid > 0 && !jobs[i].exited) waitpid(jobs[i].pid, NULL, 0);
    if (jobs[i].pid > 0) live_remove(jobs[i].pid);
    job_free(&jobs[i]);
  }
}

// Waits for output, exits and deadlines of the running jobs (at most 1 s).
static void wait_events(Job *jobs, int n, double timeout) {
  struct pollfd pf[64];
  int map[64], np = 0, waiting_exit = 0;
  double tnow = now_s(), wait_s = 1.0;
  for (int i = 0; i < n; i++) {
    if (jobs[i].pid <= 0 || jobs[i].exited) continue;
    if (jobs[i].fd >= 0) pf[np] = (struct pollfd){jobs[i].fd, POLLIN, 0}, map[np++] = i;
    else waiting_exit = 1;
    if (timeout > 0 && timeout - (tnow - jobs[i].start) < wait_s) wait_s = timeout - (tnow - jobs[i].start);
  }
  if (waiting_exit && wait_s > 0.02) wait_s = 0.02;
  int ms = wait_s > 0 ? (int)(wait_s * 1000) + 1 : 0;
  if (poll(pf, (nfds_t)np, ms) > 0)
    for (int k = 0; k < np; k++)
      if (pf[k].revents) job_read(&jobs[map[k]]);
  tnow = now_s();
  for (int i = 0; i < n; i++) {
    Job *j = &jobs[i];
    if (j->pid <= 0 || j->exited) continue;
    if (timeout > 0 && !j->timed_out && tnow - j->start > timeout) kill(-j->pid, SIGKILL), j->timed_out = 1;
    if (j->fd < 0 && waitpid(j->pid, &j->status, WNOHANG) == j->pid) j->exited = 1;
  }
}

int eval_shell_run(const EvalShell *sh, const EvalItem *items, int n, int slots, double timeout, const char *space,
                   double *acc, EvalDoneFn done, void *ctx, char *err, size_t errlen) {
  Job jobs[64];
  SigSave sv;
  int next = 0, running = 0, rc = 0;
  if (slots < 1 || slots > 64) return snprintf(err, errlen, "%s: %d jobs at once: 1 to 64", sh->what, slots), -1;
  signals_install(&sv);
  for (int i = 0; i < slots; i++) memset(&jobs[i], 0, sizeof jobs[i]), jobs[i].fd = -1;
  while (rc == 0 && (next < n || running > 0)) {
    for (int s = 0; s < slots && next < n && rc == 0; s++)
      if (jobs[s].pid == 0) {
        jobs[s].idx = next;
        rc = job_start(&jobs[s], sh, space, &items[next++], err, errlen);
        if (rc == 0) running++;
      }
    if (rc) break;
    wait_events(jobs, slots, timeout);
    for (int s = 0; s < slots && rc == 0; s++) {
      Job *j = &jobs[s];
      if (j->pid <= 0 || !j->exited) continue;
      rc = job_result(sh, j, &items[j->idx], &acc[j->idx], err, errlen);
      if (rc == 0 && done) done(ctx, j->idx, acc[j->idx]);
      kill(-j->pid, SIGKILL);  // anything it left running in the background
      live_remove(j->pid);
      job_free(j);
      running--;
    }
  }
  reap_all(jobs, slots);
  signals_restore(&sv);
  return rc;
}

static void command_prepare(void *ctx, const EvalItem *it, char **line, char **log) {
  const Command *c = ctx;
  *line = command_line(c->cmd, it->path);
  StrBuf lp = {0};
  sb_printf(&lp, "%s.log", it->path);
  *log = sb_steal(&lp);
}

static int command_score(Evaluator *ev, const EvalItem *items, int n, double *acc, EvalDoneFn done, void *ctx,
                         char *err, size_t errlen) {
  Command *c = ev->impl;
  EvalShell sh = {"command evaluator", c, command_prepare, command_result};
  return eval_shell_run(&sh, items, n, c->jobs, c->timeout, c->sp->name, acc, done, ctx, err, errlen);
}

static void command_destroy(Evaluator *ev) {
  Command *c = ev->impl;
  if (!c) return;
  free(c->cmd), free(c);
  ev->impl = NULL;
}

int eval_command_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen) {
  if (!o->command || !*o->command) return snprintf(err, errlen, "the command evaluator needs --command 'CMD'"), -1;
  if (o->jobs < 1 || o->jobs > 64) return snprintf(err, errlen, "--jobs %d: 1 to 64", o->jobs), -1;
  Command *c = xcalloc(1, sizeof *c);
  c->cmd = xstrdup(o->command);
  c->jobs = o->jobs, c->timeout = o->timeout_s, c->sp = o->space;
  ev->kind = "command", ev->impl = c, ev->score = command_score, ev->destroy = command_destroy;
  return 0;
}
