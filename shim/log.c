#include "shim/log.h"
#include "shim/os.h"
#include "policy/policy.h"

#include <stdbool.h>
#include <string.h>

void ns_line_init(struct ns_line *l)
{
	l->len = 0;
	ns_line_str(l, "numashim: ", 0);
}

void ns_line_str(struct ns_line *l, const char *s, size_t max)
{
	size_t room = sizeof(l->buf) - 1 - l->len; /* keep one byte for '\n' */
	size_t n = strlen(s);
	bool cut = false;

	if (max && n > max) {
		n = max;
		cut = true;
	}
	if (n > room) {
		n = room;
		cut = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	if (cut && l->len >= 3)
		memcpy(l->buf + l->len - 3, "...", 3);
}

void ns_line_clean(struct ns_line *l, const char *s, size_t max)
{
	size_t from = l->len;

	ns_line_str(l, s, max);
	for (size_t i = from; i < l->len; i++)
		if ((unsigned char)l->buf[i] < 0x20 || l->buf[i] == 0x7f)
			l->buf[i] = '?';
}

void ns_line_long(struct ns_line *l, long v)
{
	char num[24];

	if (v < 0)
		ns_line_str(l, "-", 0);
	policy_format_u64(v < 0 ? 0UL - (unsigned long)v : (unsigned long)v, num);
	ns_line_str(l, num, 0);
}

void ns_line_emit(struct ns_line *l)
{
	l->buf[l->len++] = '\n';
	os_write_stderr(l->buf, l->len);
	l->len = 0;
}

void ns_log_bad_input(void *ctx, const char *var, const char *value,
		      const char *why, const char *fallback)
{
	struct ns_line l;

	(void)ctx;
	ns_line_init(&l);
	ns_line_clean(&l, var, 64);
	ns_line_str(&l, "=\"", 0);
	/* A hostile value must not push the reason off the line, nor start
	 * a line of its own (a newline in it could forge one). */
	ns_line_clean(&l, value, 80);
	ns_line_str(&l, "\": ", 0);
	ns_line_str(&l, why, 0);
	ns_line_str(&l, "; using ", 0);
	ns_line_str(&l, fallback, 0);
	ns_line_emit(&l);
}

void ns_log_once(int *flag, const char *what, int err, const char *consequence)
{
	struct ns_line l;

	if (__atomic_exchange_n(flag, 1, __ATOMIC_RELAXED))
		return;
	ns_line_init(&l);
	ns_line_str(&l, what, 0);
	ns_line_str(&l, " failed (", 0);
	ns_line_str(&l, os_strerror(err), 0);
	ns_line_str(&l, "): ", 0);
	ns_line_str(&l, consequence, 0);
	ns_line_emit(&l);
}
