/*
 * Fake sysfs trees for the tests of shim/os.c: a temporary directory that
 * stands for "/" (os.c's functions take such a root), files written into
 * it, and a cmocka fixture that makes and removes it.
 */
#ifndef NUMASHIM_TESTS_UNIT_FAKETREE_H
#define NUMASHIM_TESTS_UNIT_FAKETREE_H

/* cmocka setup/teardown: *state is the root, a fresh directory. */
int faketree_setup(void **state);
int faketree_teardown(void **state);
/* Writes root/rel (creating directories) with exactly `text`. */
void faketree_put(const char *root, const char *rel, const char *text);

#define TREE_TEST(f) \
	cmocka_unit_test_setup_teardown(f, faketree_setup, faketree_teardown)

#endif
