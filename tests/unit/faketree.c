/* Fake sysfs trees for the tests of shim/os.c (see faketree.h). */
#include "tests/unit/faketree.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int faketree_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	char *root = malloc(256);

	/* os.c keeps 100 bytes of the root; stay well inside that here
	 * (os_topology's long_root_is_not_cut tests longer ones). */
	if (tmp == NULL || strlen(tmp) > 60)
		tmp = "/tmp";
	snprintf(root, 256, "%s/numashim-unit-XXXXXX", tmp);
	if (mkdtemp(root) == NULL) {
		free(root);
		return -1;
	}
	*state = root;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int faketree_teardown(void **state)
{
	char *root = *state;

	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(root);
	return 0;
}

void faketree_put(const char *root, const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	for (char *p = path + strlen(root) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	f = fopen(path, "w");
	if (f == NULL)
		fail_msg("create %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}
