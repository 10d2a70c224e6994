/*
 * Node lists in numactl's syntax, and sizes with K/M/G/T suffixes.
 *
 * The tools use libnuma's numa_parse_nodestring for the same syntax; the
 * shim cannot, because libnuma allocates its bitmasks through malloc and
 * the shim parses its environment while its heap is being set up.
 */
#include "policy/policy.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads a decimal number < limit at *sp; advances *sp. */
static int read_number(const char **sp, long limit, long *out)
{
	const char *s = *sp;
	long v = 0;

	if (!is_digit(*s))
		return -EINVAL;
	while (is_digit(*s)) {
		v = v * 10 + (*s - '0');
		if (v >= limit)
			return -ERANGE;
		s++;
	}
	*sp = s;
	*out = v;
	return 0;
}

/* The n-th set bit of mask (n from 0), or -1. */
static int nth_node(policy_nodemask_t mask, long n)
{
	for (int i = 0; i < POLICY_MAX_NODES; i++) {
		if (!(mask & policy_node_bit(i)))
			continue;
		if (n-- == 0)
			return i;
	}
	return -1;
}

int policy_list_foreach(const char *s, long limit,
			void (*fn)(void *ctx, long id), void *ctx)
{
	size_t n = strlen(s);

	/* sysfs lists end in a newline and may be empty (a CPU-less node). */
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	if (n == 0)
		return 0;
	for (const char *end = s + n;;) {
		long lo, hi;
		int rc = read_number(&s, limit, &lo);

		if (rc)
			return rc;
		hi = lo;
		if (s < end && *s == '-') {
			s++;
			rc = read_number(&s, limit, &hi);
			if (rc)
				return rc;
			if (hi < lo)
				return -EINVAL;
		}
		for (long id = lo; id <= hi; id++)
			fn(ctx, id);
		if (s == end)
			return 0;
		if (*s != ',')
			return -EINVAL;
		s++;
	}
}

struct nodelist_ctx {
	policy_nodemask_t allowed, mask;
	bool relative, out_of_range;
};

static void add_node(void *p, long n)
{
	struct nodelist_ctx *c = p;
	int node = c->relative ? nth_node(c->allowed, n) : (int)n;

	if (node < 0)
		c->out_of_range = true;
	else
		c->mask |= policy_node_bit(node);
}

int policy_parse_nodelist(const char *s, policy_nodemask_t allowed,
			  policy_nodemask_t *out)
{
	struct nodelist_ctx c = { .allowed = allowed };
	bool invert = false;
	int rc;

	if (s == NULL)
		return -EINVAL;
	if (*s == '!') {
		invert = true;
		s++;
	}
	if (*s == '+') {
		c.relative = true;
		s++;
	}
	if (strcmp(s, "all") == 0) {
		if (c.relative)
			return -EINVAL;
		*out = invert ? 0 : allowed;
		return 0;
	}
	/* Unlike a sysfs file, an empty or space-padded list is a typo here. */
	if (*s == '\0' || s[strlen(s) - 1] == '\n' || s[strlen(s) - 1] == ' ')
		return -EINVAL;
	rc = policy_list_foreach(s, POLICY_MAX_NODES, add_node, &c);
	if (rc)
		return rc;
	if (c.out_of_range)
		return -ERANGE;
	*out = invert ? (allowed & ~c.mask) : c.mask;
	return 0;
}

/* Appends src to buf at *pos; false when it no longer fits. */
static bool append(char *buf, size_t len, size_t *pos, const char *src)
{
	size_t n = strlen(src);

	if (*pos + n + 1 > len)
		return false;
	memcpy(buf + *pos, src, n + 1);
	*pos += n;
	return true;
}

size_t policy_format_u64(uint64_t v, char *out)
{
	char tmp[21];
	size_t n = 0, len;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	len = n;
	while (n)
		*out++ = tmp[--n];
	*out = '\0';
	return len;
}

size_t policy_format_nodelist(policy_nodemask_t mask, char *buf, size_t len)
{
	size_t pos = 0, ends[POLICY_MAX_NODES + 1];
	int nends = 0;
	bool first = true;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	ends[nends++] = 0;
	for (int i = 0; i < POLICY_MAX_NODES; i++) {
		char item[48], num[24];
		int j = i;

		if (!(mask & policy_node_bit(i)))
			continue;
		while (j + 1 < POLICY_MAX_NODES && (mask & policy_node_bit(j + 1)))
			j++;
		item[0] = '\0';
		if (!first)
			strcat(item, ",");
		policy_format_u64((uint64_t)i, num);
		strcat(item, num);
		if (j > i) {
			strcat(item, "-");
			policy_format_u64((uint64_t)j, num);
			strcat(item, num);
		}
		if (!append(buf, len, &pos, item)) {
			/* Cut after the last whole item that leaves room for the
			 * "..." saying so: never in the middle of a node id. */
			while (nends > 1 && ends[nends - 1] + 4 > len)
				nends--;
			pos = ends[nends - 1];
			buf[pos] = '\0';
			append(buf, len, &pos, "...");
			return pos;
		}
		ends[nends++] = pos;
		first = false;
		i = j;
	}
	return pos;
}

int policy_parse_size(const char *s, size_t *out)
{
	unsigned long long v = 0;
	unsigned shift = 0;

	if (s == NULL || !is_digit(*s))
		return -EINVAL;
	while (is_digit(*s)) {
		unsigned d = (unsigned)(*s++ - '0');

		if (v > (ULLONG_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	switch (*s) {
	case 'k': case 'K': shift = 10; s++; break;
	case 'm': case 'M': shift = 20; s++; break;
	case 'g': case 'G': shift = 30; s++; break;
	case 't': case 'T': shift = 40; s++; break;
	default: break;
	}
	if (shift && (*s == 'i' || *s == 'I'))
		s++;
	if (shift && (*s == 'b' || *s == 'B'))
		s++;
	if (*s != '\0')
		return -EINVAL;
	if (shift && v > (ULLONG_MAX >> shift))
		return -ERANGE;
	v <<= shift;
	if (v > SIZE_MAX)
		return -ERANGE;
	*out = (size_t)v;
	return 0;
}
