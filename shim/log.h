/*
 * Logging from inside the allocator: a fixed buffer and write(2), never
 * stdio (which allocates and takes locks the program may hold).
 */
#ifndef NUMASHIM_LOG_H
#define NUMASHIM_LOG_H

#include <stddef.h>

struct ns_line {
	char buf[512];
	size_t len;
};

void ns_line_init(struct ns_line *l) __attribute__((visibility("hidden")));
/* Appends s, at most max bytes of it ("..." marks a cut); max 0 = all. */
void ns_line_str(struct ns_line *l, const char *s, size_t max)
	__attribute__((visibility("hidden")));
/* The same, with control characters (a newline, an escape) shown as '?'. */
void ns_line_clean(struct ns_line *l, const char *s, size_t max)
	__attribute__((visibility("hidden")));
void ns_line_long(struct ns_line *l, long v) __attribute__((visibility("hidden")));
/* Appends a newline and writes the line to stderr. */
void ns_line_emit(struct ns_line *l) __attribute__((visibility("hidden")));

/* numashim: VAR="value": why; using fallback */
void ns_log_bad_input(void *ctx, const char *var, const char *value,
		      const char *why, const char *fallback)
	__attribute__((visibility("hidden")));

/* "numashim: <what> failed (<strerror>): <consequence>", once per flag. */
void ns_log_once(int *flag, const char *what, int err, const char *consequence)
	__attribute__((visibility("hidden")));

#endif
