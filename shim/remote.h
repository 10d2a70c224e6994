/* shim/remote_batch.c: the batches of addresses that carry remote frees
 * home (shim/remote.c). */
#ifndef NUMASHIM_SHIM_REMOTE_H
#define NUMASHIM_SHIM_REMOTE_H

#include <stdint.h>

#define REMOTE_BATCH 62 /* blocks a batch holds: 512 bytes a batch */

struct remote_batch {
	struct remote_batch *next;
	uint32_t n;
	void *p[REMOTE_BATCH];
};
_Static_assert(sizeof(struct remote_batch) == 512, "a batch is 512 bytes");

/* A batch to fill (a spare, else the pool's, else new ones; NULL when none
 * can be had), an empty one back, and a thread's spares to the pool at its
 * end. */
NS_HIDDEN struct remote_batch *ns_batch_get(void);
NS_HIDDEN void ns_batch_put(struct remote_batch *b);
NS_HIDDEN void ns_batch_release(void);

#endif
