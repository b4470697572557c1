// search/search_steps.c — the steps of the NAO search loop (search_run.h):
// evaluate, train, generate, finish. Each writes its outputs, appends a
// log.jsonl record, moves the state to the next step and commits it.
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"
#include "search/archmap.h"
#include "search/search_report.h"
#include "search/search_run.h"
#include "search/sfile.h"

// ---------------------------------------------------------------- evaluate
// Journal of a round's results, "INDEX<TAB>ACC" per line; a torn last line
// (no newline) is ignored. Marks scored[i] and sets pool acc.
static int read_journal(Search *s, const char *path, char *scored) {
  size_t len;
  const char *why;
  char *buf = nao_read_file(path, &len, &why);
  if (!buf) return 0;  // none yet
  int k = 0;
  for (char *p = buf, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
    *nl = '\0';
    char *tab = strchr(p, '\t');
    int i = atoi(p);
    if (!tab || i < 0 || i >= s->st.pool.n) {
      snprintf(s->err, sizeof s->err, "%s: malformed journal line '%.40s'", path, p);
      free(buf);
      return -1;
    }
    s->st.pool.acc[i] = strtod(tab + 1, NULL);
    if (!scored[i]) scored[i] = 1, k++;
  }
  free(buf);
  return k;
}

static void journal_done(void *ctx, int i, double acc) {
  Search *s = ctx;
  (void)i, (void)acc;  // the index is the item's; mapped by the caller's wrapper
  s->evaluated_now++;
  search_progress_update(&s->prog, "round %d: evaluated %d/%d", s->st.round, s->evaluated_now, s->to_evaluate);
}

typedef struct {
  Search *s;
  const int *idx;  // item -> pool index
} JournalCtx;

static void journal_item(void *ctx, int item, double acc) {
  JournalCtx *j = ctx;
  Search *s = j->s;
  char line[64];
  int len = snprintf(line, sizeof line, "%d\t%.17g\n", j->idx[item], acc);
  if (s->journal_fd >= 0 && write(s->journal_fd, line, (size_t)len) != len) s->journal_failed = 1;
  journal_done(s, item, acc);
}

// Writes the architecture files of the round's evaluations; files[k] for idx[k].
static int write_files(Search *s, const int *idx, int n, char **files) {
  char path[1024];
  for (int k = 0; k < n; k++) {
    char *base = sr_path(s, "round-%03d/arch-%04d", s->st.round, idx[k]);
    int rc = search_write_arch_file(s->o, &s->sp, s->st.pool.tok + (size_t)idx[k] * s->sp.length, base, path,
                                    sizeof path, s->err, sizeof s->err);
    free(base);
    if (rc) return NAO_EXIT_INPUT;
    files[k] = xstrdup(path);
  }
  return 0;
}

static int fail_io(Search *s, const char *path, const char *what) {
  snprintf(s->err, sizeof s->err, "%s: %s: %s", path, what, strerror(errno));
  return NAO_EXIT_INPUT;
}

// Scores todo[0..n) through the evaluator, journaling each result.
static int score(Search *s, const int *todo, int n, char **files) {
  const int L = s->sp.length;
  EvalItem *items = xcalloc((size_t)(n ? n : 1), sizeof *items);
  char **texts = xcalloc((size_t)(n ? n : 1), sizeof *texts);
  double *acc = xcalloc((size_t)(n ? n : 1), sizeof *acc);
  for (int k = 0; k < n; k++) {
    texts[k] = xmalloc(SPACE_TEXT_MAX);
    space_format(&s->sp, s->st.pool.tok + (size_t)todo[k] * L, texts[k], SPACE_TEXT_MAX);
    items[k] = (EvalItem){s->st.pool.tok + (size_t)todo[k] * L, texts[k], files[k]};
  }
  char *jpath = sr_path(s, "round-%03d/evaluated.tsv", s->st.round);
  int rc = 0;
  s->journal_fd = open(jpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (s->journal_fd < 0) rc = fail_io(s, jpath, "cannot open the journal");
  JournalCtx jc = {s, todo};
  int got = rc == 0 && n ? s->ev.score(&s->ev, items, n, acc, journal_item, &jc, s->err, sizeof s->err) : 0;
  if (got) rc = got == EVAL_PENDING ? SEARCH_EXIT_JOBS : NAO_EXIT_INPUT;  // pending: a job list waits
  if (s->journal_fd >= 0 && (fsync(s->journal_fd) != 0 || close(s->journal_fd) != 0) && rc == 0)
    rc = fail_io(s, jpath, "cannot write the journal");
  if (s->journal_failed && rc == 0) rc = fail_io(s, jpath, "a journal write failed");
  s->journal_fd = -1;
  if (rc == 0)
    for (int k = 0; k < n; k++) s->st.pool.acc[todo[k]] = acc[k];
  for (int k = 0; k < n; k++) free(texts[k]);
  free(texts), free(items), free(acc), free(jpath);
  return rc;
}

// Pairwise accuracy of the predictions made at generation vs the measurements.
static double heldout_pa(const ArchList *pool, const int *idx, int n) {
  double *a = xmalloc((size_t)(n ? n : 1) * sizeof(double)), *b = xmalloc((size_t)(n ? n : 1) * sizeof(double));
  int m = 0;
  for (int k = 0; k < n; k++)
    if (isfinite(pool->pred[idx[k]]) && isfinite(pool->acc[idx[k]])) a[m] = pool->acc[idx[k]], b[m++] = pool->pred[idx[k]];
  double pa = m >= 2 ? ctl_pairwise_accuracy(a, b, m) : NAN;
  free(a), free(b);
  return pa;
}

// After scoring: the history, the pool without what the budget left
// unevaluated, sorted; the round's tables; summary; log; commit.
static int finish_evaluation(Search *s, const int *idx, int n, char **files, double t0) {
  ArchList *pool = &s->st.pool;
  char *p1 = sr_path(s, "round-%03d/archs.tsv", s->st.round), *p2 = sr_path(s, "round-%03d/pool.tsv", s->st.round);
  int rc = report_round_archs(p1, s->o->out, &s->sp, pool, idx, n, files, s->err, sizeof s->err) ? NAO_EXIT_INPUT : 0;
  double pa = heldout_pa(pool, idx, n), round_best = -INFINITY;
  for (int k = 0; k < n; k++) {
    archlist_copy_item(&s->st.history, pool, idx[k]);
    if (pool->acc[idx[k]] > round_best) round_best = pool->acc[idx[k]];
  }
  s->st.evaluations += n;
  ArchList kept;
  archlist_init(&kept, pool->len);
  for (int i = 0; i < pool->n; i++)
    if (!isnan(pool->acc[i])) archlist_copy_item(&kept, pool, i);
  archlist_free(pool);
  *pool = kept;
  archlist_sort_desc(pool);
  if (rc == 0 && report_pool(p2, &s->sp, pool, s->err, sizeof s->err) != 0) rc = NAO_EXIT_INPUT;
  if (rc == 0) rc = sr_summary(s, 0);
  StrBuf rec = {0};
  sr_rec_start(&rec, s, "evaluate");
  sb_printf(&rec, ", \"evaluated\": %d, \"round_best\": ", n);
  report_json_number(&rec, n ? round_best : NAN);
  sb_append(&rec, ", \"best\": ");
  report_json_number(&rec, pool->n ? pool->acc[0] : NAN);
  sb_append(&rec, ", \"heldout_pairwise_acc\": ");
  report_json_number(&rec, pa);
  sb_printf(&rec, ", \"time_s\": %.3f", sr_now() - t0);
  if (rc == 0) rc = sr_log(s, &rec);
  sb_free(&rec);
  s->st.phase = PHASE_TRAIN;
  if (rc == 0) rc = sr_commit(s);
  if (rc == 0) {
    char text[SPACE_TEXT_MAX];
    if (pool->n) space_format(&s->sp, pool->tok, text, sizeof text);
    sr_say(s, "round %d: evaluated %d (%ld in all); pool best %.6g: %s", s->st.round, n, s->st.evaluations,
           pool->n ? pool->acc[0] : NAN, pool->n ? text : "-");
    if (isfinite(pa)) sr_say(s, "; predictor pairwise accuracy on them %.3f", pa);
    sr_say(s, "\n");
  }
  free(p1), free(p2);
  return rc;
}

// The evaluator's preparation of the round (the ws supernet's training) on the
// whole pool, before any scoring. begin_round is called at every (re)start of
// the step: it does only what is left (nothing once the round is prepared),
// and it tells the evaluator which round it scores. The first time the round
// is ready, the evaluator's state is saved in OUT and the state records it.
static int prepare_round(Search *s) {
  if (!s->ev.begin_round) return 0;
  const ArchList *pool = &s->st.pool;
  const int L = s->sp.length, n = pool->n;
  EvalItem *items = xcalloc((size_t)n + 1, sizeof *items);
  char *texts = xmalloc(((size_t)n + 1) * SPACE_TEXT_MAX);
  for (int i = 0; i < n; i++) {
    space_format(&s->sp, pool->tok + (size_t)i * L, texts + (size_t)i * SPACE_TEXT_MAX, SPACE_TEXT_MAX);
    items[i] = (EvalItem){pool->tok + (size_t)i * L, texts + (size_t)i * SPACE_TEXT_MAX, NULL};
  }
  double t0 = sr_now();
  int rc = s->ev.begin_round(&s->ev, s->st.round, items, n, s->err, sizeof s->err) ? NAO_EXIT_INPUT : 0;
  free(items), free(texts);
  if (rc || s->st.evaluator_ready == s->st.round) return rc;
  if (s->ev.save && s->ev.save(&s->ev, s->o->out, s->err, sizeof s->err) != 0) return NAO_EXIT_INPUT;
  s->st.evaluator_ready = s->st.round;
  StrBuf rec = {0};
  sr_rec_start(&rec, s, "prepare");
  sb_printf(&rec, ", \"evaluator\": \"%s\", \"note\": ", s->ev.kind);
  report_json_string(&rec, s->ev.note);
  sb_printf(&rec, ", \"time_s\": %.3f", sr_now() - t0);
  rc = sr_log(s, &rec);
  if (rc == 0) rc = sr_commit(s);
  if (rc == 0 && s->ev.note[0]) sr_say(s, "round %d: %s (%.1f s)\n", s->st.round, s->ev.note, sr_now() - t0);
  return rc;
}

int sr_step_evaluate(Search *s) {
  double t0 = sr_now();
  ArchList *pool = &s->st.pool;
  char *dir = sr_path(s, "round-%03d", s->st.round), *jpath = sr_path(s, "round-%03d/evaluated.tsv", s->st.round);
  int rc = sf_mkdir(dir, s->err, sizeof s->err) ? NAO_EXIT_INPUT : 0;
  char *scored = xcalloc((size_t)pool->n + 1, 1);
  int *idx = xmalloc(((size_t)pool->n + 1) * sizeof(int)), *todo = xmalloc(((size_t)pool->n + 1) * sizeof(int));
  char **files = xcalloc((size_t)pool->n + 1, sizeof(char *));
  int done_before = rc ? -1 : read_journal(s, jpath, scored);
  if (done_before < 0) rc = rc ? rc : NAO_EXIT_INPUT;
  // This round's evaluations: journaled ones, then those still to do (budget permitting).
  int n = 0, n_todo = 0, allowed = sr_budget_left(s) - (done_before > 0 ? done_before : 0);
  for (int i = 0; rc == 0 && i < pool->n; i++) {
    if (scored[i]) idx[n++] = i;
    else if ((s->ev.stateful || isnan(pool->acc[i])) && n_todo < allowed) idx[n++] = i, todo[n_todo++] = i;
    else if (s->ev.stateful) pool->acc[i] = NAN;  // not re-scored this round: dropped below
  }
  if (rc == 0) rc = write_files(s, idx, n, files);
  if (rc == 0) rc = prepare_round(s);
  char **todo_files = xcalloc((size_t)n_todo + 1, sizeof(char *));
  for (int k = 0, j = 0; k < n; k++)
    if (j < n_todo && idx[k] == todo[j]) todo_files[j++] = files[k];
  s->evaluated_now = 0, s->to_evaluate = n_todo;
  if (rc == 0) rc = score(s, todo, n_todo, todo_files);
  if (rc == 0) rc = finish_evaluation(s, idx, n, files, t0);
  for (int k = 0; k < n; k++) free(files[k]);
  free(files), free(todo_files), free(scored), free(idx), free(todo), free(dir), free(jpath);
  return rc;
}

// ---------------------------------------------------------------- train
// Targets in [0, 1]: (acc - min) / (max - min) over the pool; 0.5 when all equal
// (the reference divides by zero there).
static void targets(const ArchList *pool, float *y, double *lo, double *hi) {
  *lo = INFINITY, *hi = -INFINITY;
  for (int i = 0; i < pool->n; i++) *lo = fmin(*lo, pool->acc[i]), *hi = fmax(*hi, pool->acc[i]);
  for (int i = 0; i < pool->n; i++) y[i] = *hi > *lo ? (float)((pool->acc[i] - *lo) / (*hi - *lo)) : 0.5f;
}

// In-sample quality after training: pairwise accuracy of the predictions, and
// the fraction of the pool the decoder reconstructs exactly.
static void fit_quality(Search *s, const float *y, double *pa, double *recon) {
  const ArchList *pool = &s->st.pool;
  const int n = pool->n, L = s->sp.length;
  float *pred = xmalloc((size_t)n * sizeof(float));
  double *a = xmalloc((size_t)n * sizeof(double)), *b = xmalloc((size_t)n * sizeof(double));
  int *out = xmalloc((size_t)n * L * sizeof(int)), exact = 0;
  ctl_predict(&s->ctl, n, pool->tok, pred);
  for (int i = 0; i < n; i++) a[i] = y[i], b[i] = pred[i];
  *pa = ctl_pairwise_accuracy(a, b, n);
  ctl_generate(&s->ctl, n, pool->tok, 0.0, s->sp.allowed, out, NULL);
  for (int i = 0; i < n; i++) exact += !memcmp(out + (size_t)i * L, pool->tok + (size_t)i * L, (size_t)L * sizeof(int));
  *recon = (double)exact / n;
  free(pred), free(a), free(b), free(out);
}

int sr_step_train(Search *s) {
  double t0 = sr_now(), lo, hi, pa, recon;
  const ArchList *pool = &s->st.pool;
  const int E = s->o->controller_epochs;
  float *y = xmalloc((size_t)pool->n * sizeof(float));
  targets(pool, y, &lo, &hi);
  ctl_adam_reset(&s->ctl);
  CtlLoss loss = {NAN, NAN, NAN};
  for (int e = 1; e <= E; e++) {
    loss = ctl_train_epoch(&s->ctl, pool->n, pool->tok, y, space_augment, &s->sp, &s->st.rng);
    search_progress_update(&s->prog, "round %d: controller epoch %d/%d  loss %.5f  mse %.5f  nll %.5f", s->st.round, e, E,
                    loss.loss, loss.mse, loss.nll);
  }
  fit_quality(s, y, &pa, &recon);
  char rel[64];
  snprintf(rel, sizeof rel, "round-%03d/controller.safetensors", s->st.round);
  char *path = sr_path(s, "%s", rel), *latest = sr_path(s, "controller.safetensors");
  int rc = 0;
  if (ctl_save(&s->ctl, path, s->err, sizeof s->err) != 0 || ctl_save(&s->ctl, latest, s->err, sizeof s->err) != 0)
    rc = NAO_EXIT_INPUT;
  StrBuf rec = {0};
  sr_rec_start(&rec, s, "train");
  sb_printf(&rec, ", \"epochs\": %d, \"loss\": ", E);
  report_json_number(&rec, loss.loss);
  sb_append(&rec, ", \"mse\": ");
  report_json_number(&rec, loss.mse);
  sb_append(&rec, ", \"nll\": ");
  report_json_number(&rec, loss.nll);
  sb_printf(&rec, ", \"train_pairwise_acc\": %.6f, \"reconstruction_acc\": %.6f, \"time_s\": %.3f", pa, recon,
            sr_now() - t0);
  if (rc == 0) rc = sr_log(s, &rec);
  sb_free(&rec);
  snprintf(s->st.controller, sizeof s->st.controller, "%s", rel);
  s->st.phase = PHASE_GENERATE;
  if (rc == 0) rc = sr_commit(s);
  if (rc == 0)
    sr_say(s, "round %d: controller trained %d epochs in %.1f s: loss %.5f; pairwise accuracy %.3f, "
           "reconstruction %.3f on the pool\n", s->st.round, E, sr_now() - t0, loss.loss, pa, recon);
  free(y), free(path), free(latest);
  return rc;
}

// ---------------------------------------------------------------- generate
// The inference step from the pool's best, lambda = 1, 2, ... until enough new
// valid architectures (not in the pool, not generated twice, and for a
// stateless evaluator never evaluated) or lambda > max_step.
static int generate_new(Search *s, ArchList *fresh, int *lambdas) {
  const ArchList *pool = &s->st.pool;
  const int L = s->sp.length, top = pool->n < s->o->infer_top ? pool->n : s->o->infer_top;
  ArchMap seen;
  archmap_init(&seen, L);
  for (int i = 0; i < pool->n; i++) archmap_put(&seen, pool->tok + (size_t)i * L, 1);
  if (!s->ev.stateful)
    for (int i = 0; i < s->st.history.n; i++) archmap_put(&seen, s->st.history.tok + (size_t)i * L, 1);
  int *out = xmalloc((size_t)top * L * sizeof(int)), lambda = 0;
  char why[128];
  while (fresh->n < s->o->new_archs) {
    lambda++;
    ctl_generate(&s->ctl, top, pool->tok, (double)lambda, s->sp.allowed, out, NULL);
    for (int i = 0; i < top && fresh->n < s->o->new_archs; i++) {
      const int *t = out + (size_t)i * L;
      if (space_check(&s->sp, t, why, sizeof why) != 0 || archmap_get(&seen, t) >= 0) continue;
      archmap_put(&seen, t, 1);
      lambdas[fresh->n] = lambda;
      archlist_push(fresh, t, NAN, NAN, s->st.round + 1);
    }
    search_progress_update(&s->prog, "round %d: generating, lambda %d: %d/%d new", s->st.round, lambda, fresh->n,
                    s->o->new_archs);
    if (lambda > s->o->max_step) break;
  }
  archmap_free(&seen);
  free(out);
  return lambda;
}

static int write_generated(Search *s, const ArchList *fresh, const int *lambdas) {
  StrBuf sb = {0};
  char text[SPACE_TEXT_MAX];
  sb_append(&sb, "arch\tlambda\tpredicted\n");
  for (int i = 0; i < fresh->n; i++) {
    space_format(&s->sp, fresh->tok + (size_t)i * fresh->len, text, sizeof text);
    sb_printf(&sb, "%s\t%d\t%.10g\n", text, lambdas[i], fresh->pred[i]);
  }
  char *path = sr_path(s, "round-%03d/generated.tsv", s->st.round);
  int rc = sf_write_file(path, sb.data, sb.len, s->err, sizeof s->err) ? NAO_EXIT_INPUT : 0;
  free(path), sb_free(&sb);
  return rc;
}

int sr_step_generate(Search *s) {
  double t0 = sr_now(), lo, hi;
  ArchList *pool = &s->st.pool, fresh;
  archlist_init(&fresh, pool->len);
  float *y = xmalloc((size_t)pool->n * sizeof(float));
  int *lambdas = xmalloc(((size_t)s->o->new_archs + 1) * sizeof(int));
  targets(pool, y, &lo, &hi);
  int lambda = generate_new(s, &fresh, lambdas);
  float *pred = xmalloc(((size_t)fresh.n + 1) * sizeof(float));
  if (fresh.n) ctl_predict(&s->ctl, fresh.n, fresh.tok, pred);
  for (int i = 0; i < fresh.n; i++) fresh.pred[i] = lo + pred[i] * (hi - lo);  // back to the accuracy scale
  int rc = write_generated(s, &fresh, lambdas);
  ArchList next;  // the best (|pool| - new) old archs, then the new ones
  archlist_init(&next, pool->len);
  for (int i = 0; i < pool->n - fresh.n; i++) archlist_copy_item(&next, pool, i);
  for (int i = 0; i < fresh.n; i++) archlist_copy_item(&next, &fresh, i);
  archlist_free(pool);
  *pool = next;
  StrBuf rec = {0};
  sr_rec_start(&rec, s, "generate");
  sb_printf(&rec, ", \"new\": %d, \"lambda_max\": %d, \"time_s\": %.3f", fresh.n, lambda, sr_now() - t0);
  if (rc == 0) rc = sr_log(s, &rec);
  sb_free(&rec);
  s->st.round++;
  s->st.phase = PHASE_EVALUATE;
  if (rc == 0) rc = sr_commit(s);
  if (rc == 0)
    sr_say(s, "round %d: generated %d new architectures (lambda up to %d)%s\n", s->st.round - 1, fresh.n, lambda,
           fresh.n < s->o->new_archs ? ": fewer than asked, the controller found no more unseen ones" : "");
  archlist_free(&fresh);
  free(y), free(lambdas), free(pred);
  return rc;
}

// ---------------------------------------------------------------- finish
int sr_step_finish(Search *s) {
  int rc = sr_summary(s, 1);
  StrBuf rec = {0};
  sr_rec_start(&rec, s, "finish");
  if (rc == 0) rc = sr_log(s, &rec);
  sb_free(&rec);
  s->st.phase = PHASE_FINISHED;
  if (rc == 0) rc = sr_commit(s);
  if (rc == 0) {
    char *sum = sr_path(s, "summary.json");
    sr_say(s, "done: %ld evaluations; best architecture in %s/top/rank-1.*; summary %s\n", s->st.evaluations,
           s->o->out, sum);
    free(sum);
  }
  return rc;
}
