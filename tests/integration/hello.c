/* Compiled by gcc.test with gcc running under the shim; the binary it makes
 * must then run and print the fixed lines below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct item {
	struct item *next;
	char name[24];
};

int main(void)
{
	struct item *head = NULL;
	unsigned long sum = 0;
	int n = 0;

	for (int i = 0; i < 10000; i++) {
		struct item *it = malloc(sizeof(*it));
		if (it == NULL)
			return 1;
		snprintf(it->name, sizeof(it->name), "item-%d", i);
		it->next = head;
		head = it;
	}
	while (head) {
		struct item *next = head->next;
		sum += strlen(head->name);
		n++;
		free(head);
		head = next;
	}
	printf("hello from a program gcc built under numashim\n");
	printf("items %d name bytes %lu\n", n, sum);
	return 0;
}
