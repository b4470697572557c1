// runtime/json.h — a small strict JSON reader and a writer for records.
//
// Reader: RFC 8259 JSON into a tree allocated in one arena (freed at once by
// json_free). Strict: no comments, no trailing commas, no NaN, strings must be
// valid UTF-8 (escapes \uXXXX with surrogate pairs are decoded), nesting at most
// JSON_MAX_DEPTH deep. Numbers keep their double value and, when the literal is
// an integer that fits int64, the exact integer. Duplicate object keys are
// kept in order; callers that must refuse them (safetensors) check.
// Errors: -1 and "byte OFFSET: what is wrong" in err.
//
// Writer: appends JSON text to a StrBuf (one-line records for log.jsonl and
// safetensors headers). Non-finite doubles are written as null, since JSON has
// no NaN or infinity.
#ifndef NAO_JSON_H
#define NAO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/util.h"

enum { JSON_MAX_DEPTH = 64 };

typedef enum {
  JSON_NULL = 0,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} JsonKind;

typedef struct JsonValue JsonValue;
struct JsonValue {
  JsonKind kind;
  size_t offset;      // byte offset of the value in the parsed text
  int boolean;        // JSON_BOOL
  double number;      // JSON_NUMBER
  int is_int;         // JSON_NUMBER: the literal is an integer that fits int64
  int64_t integer;    // exact value when is_int
  char *str;          // JSON_STRING: NUL-terminated UTF-8 (may hold \u0000)
  size_t len;         // JSON_STRING: bytes, without the final NUL
  int n;              // JSON_ARRAY / JSON_OBJECT: members
  JsonValue *items;   // members' values, in order
  char **keys;        // JSON_OBJECT: members' keys, in order
  size_t *key_lens;   // JSON_OBJECT: keys' lengths
};

typedef struct {
  Arena arena;
  JsonValue *root;
} JsonDoc;

// Parses text[0..len) as one JSON value (surrounding whitespace allowed).
int json_parse(const char *text, size_t len, JsonDoc *doc, char *err, size_t errlen);
void json_free(JsonDoc *doc);
// The first member named key of an object, or NULL.
const JsonValue *json_get(const JsonValue *obj, const char *key);
const char *json_kind_name(JsonKind k);  // "string", "object", ...

// ---------------------------------------------------------------- writer

typedef struct {
  StrBuf *out;
  int depth;
  unsigned char first[JSON_MAX_DEPTH];  // no member written yet at this depth
  int after_key;                        // a key was written; its value is next
} JsonWriter;

void jw_init(JsonWriter *w, StrBuf *out);
void jw_object_begin(JsonWriter *w);
void jw_object_end(JsonWriter *w);
void jw_array_begin(JsonWriter *w);
void jw_array_end(JsonWriter *w);
void jw_key(JsonWriter *w, const char *key);
void jw_string(JsonWriter *w, const char *s);
void jw_stringn(JsonWriter *w, const char *s, size_t n);
void jw_int(JsonWriter *w, int64_t v);
void jw_double(JsonWriter *w, double v);  // shortest text that reads back equal
void jw_bool(JsonWriter *w, int v);
void jw_null(JsonWriter *w);
// A quoted, escaped JSON string appended to sb.
void json_append_string(StrBuf *sb, const char *s, size_t n);

#endif
