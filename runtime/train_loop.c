// runtime/train_loop.c — the training loop and evaluation (trainer.h).
//
// Per epoch e (0-based): lr = recipe_lr_at_epoch(e); the loader's epoch e in
// order (a resumed run skips the batches its checkpoint had done); one
// backend step per batch at global step t with the drop-path schedule's
// T = total_steps; a log record every log_interval steps; at the epoch's end
// validation and test scores, the checkpoint, and best.safetensors when the
// validation top-1 improved (selection on validation only, never on test:
// decision O15). A stop request (the signal flag) is honoured between steps:
// the checkpoint is written at the exact position and the loop returns.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/train_dist.h"
#include "runtime/trainer.h"

typedef struct {
  double loss_sum;   // sum over samples of the step loss
  long long top1, images, steps;
  double seconds;    // training time (evaluation excluded)
} Meter;

static void meter_add(Meter *m, const StepResult *r, int n, double seconds) {
  if (r->images > 0) n = (int)r->images;  // data parallel: every rank's images
  m->loss_sum += r->loss * n;
  m->top1 += r->top1;
  m->images += n;
  m->steps++;
  m->seconds += seconds;
}

static double meter_rate(const Meter *m) { return m->seconds > 0 ? (double)m->images / m->seconds : 0; }

static void say(Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(Trainer *t, const char *fmt, ...) {
  if (t->cfg.quiet) return;
  progress_clear(&t->progress);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fflush(stderr);
}

// ---------------------------------------------------------------- evaluation

int trainer_evaluate(Trainer *t, DataSplit split, EvalScores *out) {
  memset(out, 0, sizeof *out);
  Loader *ld = split == DATA_VALID ? t->valid_loader : t->test_loader;
  if (!ld) return 0;
  int drc = train_dist_sync_buffers(t);  // every rank scores rank 0's model
  if (drc) return drc;
  char err[600];
  if (loader_start_epoch(ld, 0, err, sizeof err) != 0) {
    fprintf(stderr, "nao-train: data: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  double loss = 0;
  long long top1 = 0, top5 = 0;
  LoaderBatch *b;
  int got;
  while ((got = loader_next(ld, &b, err, sizeof err)) == 1) {
    EvalResult r;
    int rc = backend_eval_batch(t->backend, b->images, b->labels, b->n, &r);
    loader_release(ld, b);
    if (rc != 0) {
      fprintf(stderr, "nao-train: %s\n", backend_error(t->backend));
      return NAO_EXIT_INTERNAL;
    }
    loss += r.loss_sum, top1 += r.top1, top5 += r.top5, out->images += b->n;
  }
  if (got < 0) {
    fprintf(stderr, "nao-train: data: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  if ((drc = train_dist_reduce_eval(t, &loss, &top1, &top5, &out->images)) != 0) return drc;
  if (out->images > 0) {
    out->loss = loss / (double)out->images;
    out->top1 = (double)top1 / (double)out->images;
    out->top5 = (double)top5 / (double)out->images;
  }
  return 0;
}

static void log_eval(Trainer *t, const char *split, const EvalScores *s, double seconds) {
  RunLog *l = &t->log;
  runlog_begin(l, "eval");
  runlog_str(l, "split", split);
  runlog_int(l, "epoch", t->pos.epoch);
  runlog_int(l, "step", t->pos.step);
  runlog_num(l, "loss", s->loss);
  runlog_num(l, "top1", s->top1);
  runlog_num(l, "top5", s->top5);
  runlog_int(l, "images", s->images);
  runlog_num(l, "seconds", seconds);
  runlog_end(l);
}

// Validation then test; fills t->last_valid / last_test.
static int evaluate_both(Trainer *t) {
  double t0 = progress_now();
  int rc = 0;
  if (t->has_valid && (rc = trainer_evaluate(t, DATA_VALID, &t->last_valid)) == 0)
    log_eval(t, "valid", &t->last_valid, progress_now() - t0);
  double t1 = progress_now();
  if (rc == 0 && (rc = trainer_evaluate(t, DATA_TEST, &t->last_test)) == 0)
    log_eval(t, "test", &t->last_test, progress_now() - t1);
  return rc;
}

// ---------------------------------------------------------------- checkpoints

static int save(Trainer *t, const char *path, const char *why) {
  if (backend_download(t->backend) != 0) {
    fprintf(stderr, "nao-train: backend: downloading the model: %s\n", backend_error(t->backend));
    return NAO_EXIT_INTERNAL;
  }
  int drc = train_dist_before_save(t);
  if (drc || !train_dist_writer(t)) return drc;  // rank 0 writes
  char err[600];
  t->pos.threads = t->cfg.threads > 0 ? t->cfg.threads : tp_default_threads();
  if (ckpt_save(path, &t->state, &t->nb.spec, &t->recipe, &t->pos, err, sizeof err) != 0) {
    progress_clear(&t->progress);
    fprintf(stderr, "nao-train: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  RunLog *l = &t->log;
  runlog_begin(l, "checkpoint");
  runlog_str(l, "path", path);
  runlog_str(l, "reason", why);
  runlog_int(l, "step", t->pos.step);
  runlog_int(l, "epoch", t->pos.epoch);
  runlog_int(l, "batch", t->pos.batch);
  runlog_end(l);
  return 0;
}

// ---------------------------------------------------------------- steps

static void log_train(Trainer *t, const Meter *m, double lr, double grad_norm) {
  RunLog *l = &t->log;
  runlog_begin(l, "train");
  runlog_int(l, "step", t->pos.step);
  runlog_int(l, "epoch", t->pos.epoch);
  runlog_int(l, "batch", t->pos.batch);
  runlog_num(l, "loss", m->images ? m->loss_sum / (double)m->images : 0);
  runlog_num(l, "top1", m->images ? (double)m->top1 / (double)m->images : 0);
  runlog_num(l, "lr", lr);
  runlog_num(l, "grad_norm", grad_norm);
  runlog_num(l, "images_per_sec", meter_rate(m));
  runlog_end(l);
}

static void show_progress(Trainer *t, const Meter *m, const Meter *run, double lr) {
  ProgressInfo p;
  p.epoch = t->pos.epoch, p.epochs = t->recipe.epochs;
  p.step = t->pos.step, p.total_steps = t->total_steps;
  p.images_per_sec = meter_rate(m->images ? m : run);
  p.loss = m->images ? m->loss_sum / (double)m->images : 0;
  p.top1 = m->images ? (double)m->top1 / (double)m->images : 0;
  p.lr = lr;
  double per_step = run->steps ? run->seconds / (double)run->steps : -1;
  p.eta_seconds = per_step < 0 ? -1 : per_step * (double)(t->total_steps - t->pos.step);
  // The last step of the run is always drawn: the line ends on 100%.
  progress_update(&t->progress, &p, t->pos.step >= t->total_steps);
}

static int one_step(Trainer *t, LoaderBatch *b, double lr, StepResult *r) {
  RunState rs = {t->pos.step, t->total_steps, t->pos.seed, 1};
  const Recipe *rc = &t->recipe;
  SgdHyper h = {lr, rc->momentum, rc->weight_decay, rc->grad_clip};
  int got = backend_train_step(t->backend, b->images, b->labels, b->n, &rs, &h, r);
  if (got == BACKEND_NONFINITE) {
    progress_clear(&t->progress);
    fprintf(stderr,
            "nao-train: training diverged at step %lld (epoch %d): %s; the last checkpoint is kept "
            "(try a lower --lr)\n",
            t->pos.step, t->pos.epoch + 1, backend_error(t->backend));
    return NAO_EXIT_INPUT;
  }
  if (got != 0) {
    progress_clear(&t->progress);
    fprintf(stderr, "nao-train: %s\n", backend_error(t->backend));
    return NAO_EXIT_INTERNAL;
  }
  return 0;
}

typedef struct {
  Meter interval, epoch, run;
  double lr, grad_norm;
} LoopState;

// The batches of the current epoch from t->pos.batch on. Sets *stopped when a
// stop request or max_steps ended it early.
static int epoch_batches(Trainer *t, LoopState *s, int *stopped) {
  char err[600];
  Loader *ld = t->train_loader;
  // A resumed run starts at the batch its checkpoint had reached.
  if (loader_start_epoch_at(ld, t->pos.epoch, t->pos.batch, err, sizeof err) != 0) {
    fprintf(stderr, "nao-train: data: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  int rc = 0;
  LoaderBatch *b;
  while (rc == 0 && t->pos.batch < t->steps_per_epoch) {
    int stop = train_dist_stop(t);  // asked between steps (e.g. during an evaluation)
    if (stop < 0) return -stop;
    if (stop) {
      *stopped = 1;
      return 0;
    }
    double t0 = progress_now();  // images/s counts the wait for data too
    int got = loader_next(ld, &b, err, sizeof err);
    if (got != 1) {
      fprintf(stderr, "nao-train: data: %s\n", got < 0 ? err : "the epoch ended early");
      return NAO_EXIT_INPUT;
    }
    StepResult r;
    rc = one_step(t, b, s->lr, &r);
    int n = b->n;
    loader_release(ld, b);
    if (rc) return rc;
    double dt = progress_now() - t0;
    t->pos.step++, t->pos.batch++;
    meter_add(&s->interval, &r, n, dt), meter_add(&s->epoch, &r, n, dt), meter_add(&s->run, &r, n, dt);
    s->grad_norm = r.grad_norm;
    if (t->pos.step % t->recipe.log_interval == 0) {
      log_train(t, &s->interval, s->lr, r.grad_norm);
      memset(&s->interval, 0, sizeof s->interval);
    }
    show_progress(t, &s->interval, &s->run, s->lr);
    stop = train_dist_stop(t);
    if (stop < 0) return -stop;
    if (stop || (t->recipe.max_steps > 0 && t->pos.step >= t->recipe.max_steps)) {
      *stopped = 1;
      return 0;
    }
    if (t->cfg.checkpoint_steps > 0 && t->pos.step % t->cfg.checkpoint_steps == 0 &&
        t->pos.batch < t->steps_per_epoch && (rc = save(t, t->ckpt_path, "steps")) != 0)
      return rc;
  }
  return rc;
}

static void epoch_line(Trainer *t, const LoopState *s) {
  char dur[32];
  progress_format_duration(s->epoch.seconds, dur, sizeof dur);
  StrBuf sb = {0};
  sb_printf(&sb, "epoch %d/%d: train loss %.4f acc %.2f%% (%.0f img/s, %s)", t->pos.epoch + 1,
            t->recipe.epochs, s->epoch.images ? s->epoch.loss_sum / (double)s->epoch.images : 0,
            s->epoch.images ? 100.0 * (double)s->epoch.top1 / (double)s->epoch.images : 0,
            meter_rate(&s->epoch), dur);
  if (t->has_valid)
    sb_printf(&sb, " | valid loss %.4f top1 %.2f%% top5 %.2f%%", t->last_valid.loss,
              100 * t->last_valid.top1, 100 * t->last_valid.top5);
  sb_printf(&sb, " | test loss %.4f top1 %.2f%% top5 %.2f%%\n", t->last_test.loss,
            100 * t->last_test.top1, 100 * t->last_test.top5);
  say(t, "%s", sb.data);
  sb_free(&sb);
}

// End of an epoch (or of a run cut short by max_steps): scores, best, checkpoint.
static int finish_epoch(Trainer *t, LoopState *s, int complete) {
  int rc = evaluate_both(t);
  if (rc) return rc;
  epoch_line(t, s);
  if (complete) t->pos.epoch++, t->pos.batch = 0;
  if (t->has_valid && t->last_valid.top1 > t->pos.best_valid_top1) {
    t->pos.best_valid_top1 = t->last_valid.top1;
    t->pos.best_epoch = t->pos.epoch - complete;
    if ((rc = save(t, t->best_path, "best validation top-1")) != 0) return rc;
  }
  return save(t, t->ckpt_path, complete ? "epoch" : "max steps");
}

static void log_end(Trainer *t, const char *reason) {
  RunLog *l = &t->log;
  runlog_begin(l, "end");
  runlog_str(l, "reason", reason);
  runlog_int(l, "step", t->pos.step);
  runlog_int(l, "epoch", t->pos.epoch);
  runlog_num(l, "test_top1", t->last_test.top1);
  runlog_num(l, "test_top5", t->last_test.top5);
  runlog_num(l, "best_valid_top1", t->pos.best_valid_top1);
  runlog_int(l, "best_epoch", t->pos.best_epoch);
  runlog_end(l);
}

int trainer_train(Trainer *t, TrainEnd *end) {
  LoopState s;
  memset(&s, 0, sizeof s);
  *end = TRAIN_DONE;
  if (t->pos.step > 0)
    say(t, "nao-train: resuming %s at step %lld (epoch %d, batch %d)\n", t->run_dir, t->pos.step,
        t->pos.epoch + 1, t->pos.batch);
  int ran = 0;
  while (t->pos.epoch < t->recipe.epochs) {
    if (t->recipe.max_steps > 0 && t->pos.step >= t->recipe.max_steps) break;
    s.lr = recipe_lr_at_epoch(&t->recipe, t->pos.epoch);
    memset(&s.epoch, 0, sizeof s.epoch);
    int stopped = 0;
    ran = 1;
    int rc = epoch_batches(t, &s, &stopped);
    if (rc) return rc;
    if (stopped && t->stop_signal) {  // train_dist_stop saw a signal (here or on any rank)
      progress_clear(&t->progress);
      if ((rc = save(t, t->ckpt_path, "stop requested")) != 0) return rc;
      say(t, "nao-train: stopped at step %lld (epoch %d, batch %d/%d); checkpoint %s (continue with --resume)\n",
          t->pos.step, t->pos.epoch + 1, t->pos.batch, t->steps_per_epoch, t->ckpt_path);
      log_end(t, "interrupted");
      *end = TRAIN_INTERRUPTED;
      return 0;
    }
    int complete = t->pos.batch >= t->steps_per_epoch;
    if ((rc = finish_epoch(t, &s, complete)) != 0) return rc;
    if (stopped && !complete) {
      *end = TRAIN_MAX_STEPS;
      break;
    }
  }
  if (t->recipe.max_steps > 0 && t->pos.step >= t->recipe.max_steps) *end = TRAIN_MAX_STEPS;
  if (!ran) {  // a resumed run that was complete: report its scores all the same
    say(t, "nao-train: nothing left to train in %s\n", t->run_dir);
    int rc = evaluate_both(t);
    if (rc) return rc;
  }
  say(t, "nao-train: %s after %lld steps: final test top-1 %.2f%% top-5 %.2f%%", 
      *end == TRAIN_MAX_STEPS ? "stopped at --max-steps" : "done", t->pos.step,
      100 * t->last_test.top1, 100 * t->last_test.top5);
  if (t->pos.best_epoch >= 0)
    say(t, "; best validation top-1 %.2f%% at epoch %d (%s)", 100 * t->pos.best_valid_top1,
        t->pos.best_epoch + 1, t->best_path);
  say(t, "\n");
  log_end(t, *end == TRAIN_MAX_STEPS ? "max_steps" : "done");
  return 0;
}

// ---------------------------------------------------------------- --eval-only

static void print_scores(const char *split, const EvalScores *s) {
  printf("{\"split\":\"%s\",\"loss\":%.9g,\"top1\":%.9g,\"top5\":%.9g,\"images\":%lld}\n", split,
         s->loss, s->top1, s->top5, s->images);
  fprintf(stderr, "%s: loss %.4f top-1 %.2f%% top-5 %.2f%% (%lld images)\n", split, s->loss,
          100 * s->top1, 100 * s->top5, s->images);
}

int trainer_eval_only(Trainer *t) {
  int rc = evaluate_both(t);
  if (rc || !train_dist_writer(t)) return rc;  // rank 0 prints every rank's scores
  if (t->has_valid) print_scores("valid", &t->last_valid);
  print_scores("test", &t->last_test);
  fflush(stdout);
  return 0;
}
