// runtime/runlog.h — the run's log: JSON lines in RUNDIR/log.jsonl.
//
// One record per line, flushed as written, so a killed run keeps every record
// it wrote. Every record has "event" and "time" (seconds since the Unix
// epoch); docs/training.md lists the events and their fields. A resumed run
// appends to the same file.
#ifndef NAO_RUNLOG_H
#define NAO_RUNLOG_H

#include <stddef.h>
#include <stdio.h>

#include "compiler/util.h"
#include "runtime/json.h"

typedef struct {
  FILE *f;        // NULL: logging off (every call is a no-op)
  char *path;
  StrBuf line;
  JsonWriter w;
} RunLog;

// Opens (appending) path; NULL path: a log that writes nothing.
int runlog_open(RunLog *l, const char *path, char *err, size_t errlen);
void runlog_close(RunLog *l);

// A record: begin (writes "event" and "time"), fields through the writer,
// end (writes the line). Returns the writer to add fields with.
JsonWriter *runlog_begin(RunLog *l, const char *event);
int runlog_end(RunLog *l);  // -1 when the write failed (a message on stderr once)

// Field helpers.
void runlog_int(RunLog *l, const char *key, long long v);
void runlog_num(RunLog *l, const char *key, double v);
void runlog_str(RunLog *l, const char *key, const char *v);
// A field whose value is JSON text already (recipe_to_json, ckpt_network_json).
void runlog_raw(RunLog *l, const char *key, const char *json);

#endif
