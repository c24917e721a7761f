/* libFuzzer target: meinheld's bundled http-parser, with CacheGrid's patches,
 * fed each input in several pieces as a socket would deliver it.
 *
 * Input layout (shared with the whole-server harness and the replay test):
 *   byte 0            n = byte 0 % 8, the number of cut points
 *   bytes 1 .. 2n     n little-endian 16-bit offsets, each taken modulo
 *                     (length of the request + 1)
 *   the rest          the raw bytes a client sends
 * The cuts are sorted; empty pieces are skipped. An input too short for its
 * cuts is one piece.
 *
 * Each input is parsed twice: whole, then in its pieces. Every piece is a
 * fresh heap copy of exactly its length, freed as soon as the parser returns,
 * so a read past the piece, or a pointer kept into a piece after it was
 * freed, is an AddressSanitizer report. What is checked:
 *   - every data callback's pointer and length lie inside the piece being
 *     parsed (a pointer into an earlier piece is a bug even if still mapped);
 *   - http_parser_execute never reports more bytes parsed than it was given;
 *   - the run in pieces ends with the same error as the run in one piece
 *     (the state machine carries state across calls, so the error is at the
 *     same byte), and, when neither fails, both runs produce the same events:
 *     the same sequence of callbacks with the same bytes once consecutive
 *     pieces of one element (a URL, a header name, a value, a body) are
 *     joined;
 *   - UndefinedBehaviorSanitizer's checks (built with -fsanitize=undefined).
 * It drives the parser as meinheld does: callbacks answer 0, and parsing stops
 * at the first error, at an upgrade, or when fewer bytes were parsed than given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

#define MAX_CUTS 7
#define LOG_CAPACITY (1 << 20)

enum event { EV_NONE, EV_BEGIN, EV_URL, EV_FIELD, EV_VALUE, EV_HEADERS_DONE, EV_BODY, EV_COMPLETE };

/* One run's events, as a byte string: a tag byte for each callback, followed
 * for data callbacks by their bytes; consecutive data of one kind are joined. */
typedef struct {
  unsigned char bytes[LOG_CAPACITY];
  size_t used;
  int last;
  int overflow;
} event_log;

static event_log whole_log, split_log;
static event_log *current_log;
static const char *piece_start;
static size_t piece_len;

static void fail(const char *what) {
  fprintf(stderr, "parser_fuzzer: %s\n", what);
  abort();
}

static void log_append(const void *data, size_t len) {
  if (current_log->used + len > LOG_CAPACITY) {
    current_log->overflow = 1;
    return;
  }
  memcpy(current_log->bytes + current_log->used, data, len);
  current_log->used += len;
}

static void log_event(int kind) {
  unsigned char tag = (unsigned char)kind;
  log_append(&tag, 1);
  current_log->last = kind;
}

static int on_data(int kind, const char *at, size_t len) {
  if (at == NULL) {
    fail("a data callback got a NULL pointer");
  }
  if (at < piece_start || len > piece_len || at + len > piece_start + piece_len) {
    fail("a data callback's bytes lie outside the piece being parsed");
  }
  if (current_log->last != kind) {
    log_event(kind);
  }
  log_append(at, len);
  return 0;
}

static int on_message_begin(http_parser *p) {
  log_event(EV_BEGIN);
  return 0;
}
static int on_url(http_parser *p, const char *at, size_t len) { return on_data(EV_URL, at, len); }
static int on_header_field(http_parser *p, const char *at, size_t len) { return on_data(EV_FIELD, at, len); }
static int on_header_value(http_parser *p, const char *at, size_t len) { return on_data(EV_VALUE, at, len); }
static int on_headers_complete(http_parser *p) {
  log_event(EV_HEADERS_DONE);
  return 0;
}
static int on_body(http_parser *p, const char *at, size_t len) { return on_data(EV_BODY, at, len); }
static int on_message_complete(http_parser *p) {
  log_event(EV_COMPLETE);
  return 0;
}

static http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static int compare_offsets(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

/* Parses data in the pieces that cuts (sorted, each <= len) make; the
 * parser's error number at the end. */
static int parse(event_log *log, const uint8_t *data, size_t len, const size_t *cuts, size_t ncuts) {
  http_parser parser;
  size_t start = 0;

  log->used = 0;
  log->last = EV_NONE;
  log->overflow = 0;
  current_log = log;
  http_parser_init(&parser, HTTP_REQUEST);
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    size_t n, given = end - start;
    char *copy;

    if (given == 0) {
      continue;
    }
    copy = malloc(given);
    if (copy == NULL) {
      fail("out of memory");
    }
    memcpy(copy, data + start, given);
    piece_start = copy;
    piece_len = given;
    n = http_parser_execute(&parser, &settings, copy, given);
    free(copy);
    piece_start = NULL;
    piece_len = 0;
    if (n > given) {
      fail("http_parser_execute parsed more bytes than it was given");
    }
    if (HTTP_PARSER_ERRNO(&parser) != HPE_OK || parser.upgrade || n != given) {
      return HTTP_PARSER_ERRNO(&parser) != HPE_OK ? (int)HTTP_PARSER_ERRNO(&parser) : -1;
    }
    start = end;
  }
  return HPE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
  size_t cuts[MAX_CUTS];
  size_t ncuts = 0, skip = 0;
  const uint8_t *data = input;
  size_t len = size;
  int whole_error, split_error;

  if (size >= 1) {
    size_t wanted = input[0] % (MAX_CUTS + 1);
    if (size >= 1 + 2 * wanted) {
      skip = 1 + 2 * wanted;
      data = input + skip;
      len = size - skip;
      for (size_t i = 0; i < wanted; i++) {
        size_t offset = (size_t)input[1 + 2 * i] | ((size_t)input[2 + 2 * i] << 8);
        cuts[ncuts++] = offset % (len + 1);
      }
      qsort(cuts, ncuts, sizeof(cuts[0]), compare_offsets);
    }
  }

  whole_error = parse(&whole_log, data, len, NULL, 0);
  split_error = parse(&split_log, data, len, cuts, ncuts);
  if (whole_error != split_error) {
    fail("the input in pieces ends with another error than the input whole");
  }
  if (whole_error == HPE_OK && !whole_log.overflow && !split_log.overflow &&
      (whole_log.used != split_log.used || memcmp(whole_log.bytes, split_log.bytes, whole_log.used) != 0)) {
    fail("the input in pieces gives other callbacks than the input whole");
  }
  return 0;
}
