/* A program that links jemalloc itself and uses its extended API. */
#include <jemalloc/jemalloc.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	char *p = mallocx(100, 0);
	unsigned narenas = 0;
	size_t sz = sizeof(narenas);

	if (p == NULL || mallctl("arenas.narenas", &narenas, &sz, NULL, 0))
		return 1;
	strcpy(p, "ok");
	puts(p);
	dallocx(p, 0);
	return 0;
}
