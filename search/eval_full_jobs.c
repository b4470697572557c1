// search/eval_full_jobs.c — the full evaluator's nao-train command lines, run
// as local processes (--jobs N, through eval_shell_run) or written as a job
// list (--job-list) for GNU parallel, a Slurm array or anything that runs
// lines of shell (eval_full.h says where each file lives).
//
// A command line is complete: absolute paths (job lists run from anywhere),
// the recipe as options, --quiet --progress off, and for a job list its
// output sent to ROUND/runs/arch-IIII.log. jobs.txt is written once per round
// and never rewritten, so that the line numbers a running Slurm array reads
// stay valid; jobs-pending.txt is rewritten each time with the lines still
// without a result (--resume added where a checkpoint shows a run that was
// stopped midway).
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/eval_full.h"
#include "search/sfile.h"

// The nao-train line for it. threads > 0: --threads; log: output redirected there.
static char *command_for(const Full *f, const EvalItem *it, int threads, const char *log) {
  StrBuf sb = {0};
  char *run = full_run_dir(it->path, 1), ckpt[4300], abs[PATH_MAX];
  const char *arch_path = realpath(it->path, abs) ? abs : it->path;
  eval_sh_quote(&sb, f->nao_train);
  sb_append(&sb, " ");
  eval_sh_quote(&sb, arch_path);
  sb_append(&sb, " --out ");
  eval_sh_quote(&sb, run);
  sb_append(&sb, " --quiet --progress off");
  for (int k = 0; k < f->n_opts; k++) {
    sb_printf(&sb, " --%s ", f->opt_name[k]);
    eval_sh_quote(&sb, f->opt_value[k]);
  }
  if (f->data_abs) sb_append(&sb, " --data "), eval_sh_quote(&sb, f->data_abs);
  if (f->synth_train > 0) sb_printf(&sb, " --synthetic-size %d,%d", f->synth_train, f->synth_test);
  if (threads > 0) sb_printf(&sb, " --threads %d", threads);
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run);
  if (sf_exists(ckpt)) sb_append(&sb, " --resume");  // stopped midway: continue it
  if (log) sb_append(&sb, " >"), eval_sh_quote(&sb, log), sb_append(&sb, " 2>&1");
  free(run);
  return sb_steal(&sb);
}

static char *log_path(const EvalItem *it, int absolute) {
  char *run = full_run_dir(it->path, absolute);
  StrBuf sb = {0};
  sb_printf(&sb, "%s.log", run);
  free(run);
  return sb_steal(&sb);
}

// ---------------------------------------------------------------- processes

static void proc_prepare(void *ctx, const EvalItem *it, char **line, char **log) {
  const Full *f = ctx;
  char *cmd = command_for(f, it, f->threads_per_job, NULL);
  StrBuf sb = {0};
  sb_printf(&sb, "exec %s", cmd);  // the shell becomes nao-train: one process to kill
  *line = sb_steal(&sb);
  *log = log_path(it, 0);
  free(cmd);
}

static int proc_result(void *ctx, const EvalItem *it, const char *out, size_t len, double *acc, char *msg,
                       size_t msglen) {
  const Full *f = ctx;
  (void)out, (void)len;
  char *run = full_run_dir(it->path, 0), why[1200];
  int got = full_read_score(f, it, run, acc, why, sizeof why);
  if (got == 1) snprintf(msg, msglen, "ended without writing %s/result.json", run);
  else if (got < 0) snprintf(msg, msglen, "ended, but: %s", why);
  free(run);
  return got ? -1 : 0;
}

typedef struct {
  const int *map;  // sub-batch item -> caller's item
  EvalDoneFn done;
  void *ctx;
} SubBatch;

static void sub_done(void *ctx, int i, double acc) {
  const SubBatch *b = ctx;
  if (b->done) b->done(b->ctx, b->map[i], acc);
}

int full_run_processes(Full *f, const EvalItem *items, const int *todo, int m, double *acc, EvalDoneFn done,
                       void *ctx, char *err, size_t errlen) {
  EvalItem *sub = xmalloc((size_t)m * sizeof *sub);
  double *sub_acc = xmalloc((size_t)m * sizeof(double));
  for (int k = 0; k < m; k++) sub[k] = items[todo[k]];
  EvalShell sh = {"full evaluator", f, proc_prepare, proc_result};
  SubBatch b = {todo, done, ctx};
  int rc = eval_shell_run(&sh, sub, m, f->jobs, f->timeout, f->sp->name, sub_acc, sub_done, &b, err, errlen);
  for (int k = 0; rc == 0 && k < m; k++) acc[todo[k]] = sub_acc[k];
  free(sub), free(sub_acc);
  return rc;
}

// ---------------------------------------------------------------- job list

// "NAME (what is known)" for an unfinished run, appended to sb.
static void describe_pending(StrBuf *sb, const EvalItem *it) {
  char *run = full_run_dir(it->path, 0), *log = log_path(it, 0), tail[160] = "";
  const char *base = strrchr(run, '/') + 1, *why;
  size_t len;
  char *text = nao_read_file(log, &len, &why);
  while (text && len && (text[len - 1] == '\n' || text[len - 1] == ' ')) len--;
  size_t s = len;
  while (text && s && text[s - 1] != '\n') s--;
  if (text && len > s) snprintf(tail, sizeof tail, "%.*s", (int)(len - s > 140 ? 140 : len - s), text + s);
  if (!sf_exists(run) && !text) sb_printf(sb, "%s (not started)", base);
  else if (tail[0]) sb_printf(sb, "%s (no result.json; %s ends: %s)", base, log, tail);
  else sb_printf(sb, "%s (started, no result.json yet: %s)", base, run);
  free(text), free(run), free(log);
}

int full_job_list(Full *f, const EvalItem *items, const int *todo, int m, char *err, size_t errlen) {
  char *round = full_run_dir(items[todo[0]].path, 1);  // ROUND/runs/arch-IIII -> ROUND
  *strrchr(round, '/') = '\0';
  *strrchr(round, '/') = '\0';
  StrBuf lines = {0}, jobs = {0}, pending = {0}, names = {0};
  sb_printf(&jobs, "%s/jobs.txt", round);
  sb_printf(&pending, "%s/jobs-pending.txt", round);
  for (int k = 0; k < m; k++) {
    char *log = log_path(&items[todo[k]], 1), *cmd = command_for(f, &items[todo[k]], 0, log);
    sb_printf(&lines, "%s\n", cmd);
    if (k < 12) sb_append(&names, k ? ", " : ""), describe_pending(&names, &items[todo[k]]);
    free(log), free(cmd);
  }
  if (m > 12) sb_printf(&names, " and %d more", m - 12);
  int fresh = !sf_exists(jobs.data), rc = 0;
  if ((fresh && sf_write_atomic(jobs.data, lines.data, lines.len, err, errlen) != 0) ||
      sf_write_atomic(pending.data, lines.data, lines.len, err, errlen) != 0)
    rc = -1;
  else if (f->collect && !fresh)  // collect: the listed trainings should have run
    rc = -1, snprintf(err, errlen, "collect: %d training%s of this round %s no result yet: %s. Their commands are in "
                      "%s; run them, then `nao-search collect --out %s` again", m, m == 1 ? "" : "s",
                      m == 1 ? "has" : "have", names.data, pending.data, f->out);
  else if (fresh)
    rc = EVAL_PENDING, snprintf(err, errlen, "%d training%s to run, one command a line in %s. Run them (e.g. "
                                "`parallel < %s`, or a Slurm array whose task i runs line i), then `nao-search "
                                "collect --out %s`", m, m == 1 ? "" : "s", jobs.data, jobs.data, f->out);
  else
    rc = EVAL_PENDING, snprintf(err, errlen, "%d training%s of this round %s no result yet; their commands are in %s "
                                "(the whole round's in %s). Run them, then `nao-search collect --out %s`", m,
                                m == 1 ? "" : "s", m == 1 ? "has" : "have", pending.data, jobs.data, f->out);
  sb_free(&lines), sb_free(&jobs), sb_free(&pending), sb_free(&names), free(round);
  return rc;
}
