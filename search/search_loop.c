// search/search_loop.c — the NAO search loop (search.h): setup of the run
// folder, the steps evaluate / train / generate, each ending with an atomic
// commit of OUT/state, and resumption from the last commit.
//
// Invariants: a step changes nothing that the state file points at before its
// commit (the controller is saved under the new round's name, the log is
// truncated back to the committed size on resume); so a kill at any moment
// loses at most the step in flight, and the evaluations that finished inside
// it survive in the round's journal (evaluated.tsv). Given the seed and the
// thread count, a resumed run makes the same decisions as an uninterrupted one.
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler/util.h"
#include "search/archmap.h"
#include "search/eval.h"
#include "search/progress.h"
#include "search/search.h"
#include "search/search_report.h"
#include "search/search_state.h"
#include "search/search_run.h"
#include "search/sfile.h"

// ---------------------------------------------------------------- helpers
double sr_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

char *sr_path(const Search *s, const char *fmt, ...) {
  StrBuf sb = {0};
  va_list ap;
  sb_printf(&sb, "%s/", s->o->out);
  va_start(ap, fmt);
  sb_vprintf(&sb, fmt, ap);
  va_end(ap);
  return sb_steal(&sb);
}

void sr_say(Search *s, const char *fmt, ...) {
  if (s->o->quiet) return;
  search_progress_clear(&s->prog);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

int sr_commit(Search *s) {
  return search_state_save(&s->st, &s->sp, s->o->out, s->err, sizeof s->err) ? NAO_EXIT_INPUT : 0;
}

int sr_log(Search *s, StrBuf *rec) {
  char *path = sr_path(s, "log.jsonl");
  sb_append(rec, "}\n");
  int rc = sf_append(path, rec->data, rec->len, s->err, sizeof s->err);
  if (rc == 0) s->st.log_size += rec->len;
  free(path);
  sb_free(rec);
  return rc ? NAO_EXIT_INPUT : 0;
}

void sr_rec_start(StrBuf *rec, const Search *s, const char *step) {
  sb_printf(rec, "{\"round\": %d, \"step\": \"%s\", \"evaluations\": %ld", s->st.round, step, s->st.evaluations);
}

int sr_budget_left(const Search *s) {
  if (s->o->budget <= 0) return 1 << 30;
  long left = s->o->budget - s->st.evaluations;
  return left < 0 ? 0 : left > (1 << 30) ? 1 << 30 : (int)left;
}

static int n_evaluated(const ArchList *l) {
  int k = 0;
  for (int i = 0; i < l->n; i++) k += !isnan(l->acc[i]);
  return k;
}

int sr_done(const Search *s) {
  return s->st.round >= s->o->rounds || sr_budget_left(s) == 0 || n_evaluated(&s->st.pool) < 2;
}

// The best architectures so far, best first: every evaluation for a stateless
// evaluator; the latest scores of the pool for a stateful one.
static void ranked(const Search *s, ArchList *out) {
  const ArchList *src = s->ev.stateful ? &s->st.pool : &s->st.history;
  archlist_init(out, src->len);
  for (int i = 0; i < src->n; i++)
    if (!isnan(src->acc[i])) archlist_copy_item(out, src, i);
  archlist_sort_desc(out);
}

int sr_summary(Search *s, int finished) {
  ArchList r;
  ranked(s, &r);
  int rc = report_summary(s->o, &s->sp, &s->st, &r, finished, s->err, sizeof s->err);
  archlist_free(&r);
  return rc ? NAO_EXIT_INPUT : 0;
}

// ---------------------------------------------------------------- setup
static int seed_pool(Search *s) {
  Rng rng;
  ArchMap seen;
  int tok[SPACE_MAX_LEN];
  rng_derive(&rng, s->o->seed, STREAM_POOL);
  archmap_init(&seen, s->sp.length);
  long tries = 0, limit = 20L * s->o->seed_archs + 200000;  // >> coupon-collector needs
  while (s->st.pool.n < s->o->seed_archs && tries++ < limit) {
    space_random(&s->sp, &rng, tok);
    if (archmap_get(&seen, tok) >= 0) continue;  // a duplicate would waste an evaluation
    archmap_put(&seen, tok, 1);
    archlist_push(&s->st.pool, tok, NAN, NAN, 0);
  }
  archmap_free(&seen);
  if (s->st.pool.n < s->o->seed_archs) {
    snprintf(s->err, sizeof s->err, "--seed-archs %d: found only %d distinct architectures in the %s space",
             s->o->seed_archs, s->st.pool.n, s->sp.name);
    return NAO_EXIT_USAGE;
  }
  return 0;
}

static int open_run(Search *s) {
  const SearchOptions *o = s->o;
  char *state = sr_path(s, "state"), *config = sr_path(s, "config"), *logp = sr_path(s, "log.jsonl");
  int rc = 0, exists = sf_exists(state);
  if (!o->resume && exists) {
    snprintf(s->err, sizeof s->err, "%s already holds a run (%s): continue it with --resume, or use another --out",
             o->out, state);
    rc = NAO_EXIT_USAGE;
  } else if (o->resume && !exists) {
    snprintf(s->err, sizeof s->err, "--resume: %s holds no run to resume (no %s)", o->out, state);
    rc = NAO_EXIT_USAGE;
  } else if (sf_mkdir(o->out, s->err, sizeof s->err) != 0 ||
             sf_write_atomic(config, o->config_text, strlen(o->config_text), s->err, sizeof s->err) != 0) {
    rc = NAO_EXIT_INPUT;
  } else if (o->resume) {
    if (search_state_load(&s->st, &s->sp, o->out, s->err, sizeof s->err) != 0) rc = NAO_EXIT_INPUT;
    else if (sf_truncate(logp, (size_t)s->st.log_size, s->err, sizeof s->err) != 0) rc = NAO_EXIT_INPUT;
  } else {
    rng_derive(&s->st.rng, o->seed, STREAM_LOOP);
    if ((rc = seed_pool(s)) == 0 && sf_write_file(logp, "", 0, s->err, sizeof s->err) != 0) rc = NAO_EXIT_INPUT;
    if (rc == 0) rc = sr_commit(s);
  }
  free(state), free(config), free(logp);
  return rc;
}

static int setup(Search *s) {
  const SearchOptions *o = s->o;
  if (space_init(&s->sp, o->space, s->err, sizeof s->err) != 0) return NAO_EXIT_USAGE;
  EvalOptions eo;
  memset(&eo, 0, sizeof eo);
  eo.space = &s->sp, eo.table = o->table, eo.command = o->command, eo.jobs = o->jobs, eo.timeout_s = o->timeout;
  // full: --full-data, else the search's --data
  eo.out = o->out, eo.full_epochs = o->full_epochs, eo.full_data = *o->full_data ? o->full_data : o->data;
  eo.full_recipe = o->full_recipe, eo.full_synthetic = o->full_synthetic, eo.nao_train = o->nao_train;
  eo.job_list = o->job_list, eo.collect = o->collect;
  eo.backbone = &o->backbone, eo.data = o->data, eo.backend = o->backend;
  eo.ws_epochs = o->ws_epochs, eo.ws_batch = o->ws_batch;
  eo.ws_lr = o->ws_lr, eo.ws_lr_min = o->ws_lr_min, eo.ws_momentum = o->ws_momentum;
  eo.ws_weight_decay = o->ws_weight_decay, eo.ws_grad_clip = o->ws_grad_clip;
  eo.ws_drop_path_keep = o->ws_drop_path_keep, eo.ws_eval_images = o->ws_eval_images;
  eo.ws_heldout = o->ws_heldout, eo.ws_train_images = o->ws_train_images;
  eo.rounds = o->rounds, eo.threads = o->ctl.threads, eo.seed = o->seed;
  eo.state_dir = o->out, eo.progress = &s->prog;
  if (eval_create(&s->ev, o->evaluator, &eo, s->err, sizeof s->err) != 0) return NAO_EXIT_INPUT;
  s->have_ev = 1;
  int rc = open_run(s);
  if (rc) return rc;
  if (o->resume && s->ev.load) {  // the evaluator's state (the ws supernet), if any was saved
    int got = s->ev.load(&s->ev, o->out, s->err, sizeof s->err);
    if (got < 0) return NAO_EXIT_INPUT;
    if (got == 1 && s->st.evaluator_ready >= 0) {
      snprintf(s->err, sizeof s->err, "--resume: %s/state says the %s evaluator was prepared for round %d, but %s "
               "holds no saved evaluator state", o->out, s->ev.kind, s->st.evaluator_ready, o->out);
      return NAO_EXIT_INPUT;
    }
  }
  Rng init;
  rng_derive(&init, o->seed, STREAM_INIT);
  ctl_create(&s->ctl, &o->ctl, &init);
  s->have_ctl = 1;
  if (s->st.controller[0]) {
    char *path = sr_path(s, "%s", s->st.controller);
    int bad = ctl_load(&s->ctl, path, s->err, sizeof s->err);
    free(path);
    if (bad) return NAO_EXIT_INPUT;
  }
  if (s->st.phase == PHASE_FINISHED && !sr_done(s)) s->st.phase = PHASE_TRAIN;  // more rounds or budget
  return 0;
}

int search_run(const SearchOptions *o) {
  Search s;
  memset(&s, 0, sizeof s);
  s.o = o;
  s.journal_fd = -1;
  s.ev_loaded_round = -1;
  search_state_init(&s.st, 1);
  search_progress_init(&s.prog, o->progress == 1 || (o->progress < 0 && isatty(2)));
  int rc = space_init(&s.sp, o->space, s.err, sizeof s.err) ? NAO_EXIT_USAGE : 0;
  if (rc == 0) {
    search_state_free(&s.st);
    search_state_init(&s.st, s.sp.length);
    rc = setup(&s);
  }
  if (rc == 0 && o->resume)
    sr_say(&s, "resuming %s: round %d, step %s, %ld evaluations made\n", o->out, s.st.round,
        search_phase_name(s.st.phase), s.st.evaluations);
  while (rc == 0 && s.st.phase != PHASE_FINISHED) {
    switch (s.st.phase) {
      case PHASE_EVALUATE: rc = sr_step_evaluate(&s); break;
      case PHASE_TRAIN: rc = sr_done(&s) ? sr_step_finish(&s) : sr_step_train(&s); break;
      case PHASE_GENERATE: rc = sr_step_generate(&s); break;
      case PHASE_FINISHED: break;
    }
  }
  search_progress_clear(&s.prog);
  if (rc) fprintf(stderr, "nao-search: %s\n", s.err);
  if (s.have_ctl) ctl_destroy(&s.ctl);
  if (s.have_ev) eval_destroy(&s.ev);
  search_state_free(&s.st);
  return rc;
}
