/* placement.c -- which of N shards holds a topic (placement.h).
 *
 * Jump consistent hash needs no table and moves the fewest keys when a
 * shard is added at the end: a key moves from N to N + 1 buckets only
 * to the new bucket, with probability 1/(N + 1). Shards are therefore
 * to be appended, never inserted or removed in the middle (that
 * renumbers the ones after it). The key is the channel name's FNV-1a
 * hash: the name, not a worker-local hash seed, so that every node
 * agrees.
 */
#include "engine/placement.h"
#include "wshub.h"

/* The paper's algorithm as published: a linear congruential step per
 * candidate jump; the double division is exact enough for n < 2^31 and
 * IEEE 754 makes it the same on every host. */
unsigned
wsh_placement_jump(uint64_t key, unsigned n)
{
    int64_t b = -1, j = 0;

    while (j < (int64_t) n) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = (int64_t) ((double) (b + 1)
                       * ((double) (1LL << 31) / (double) ((key >> 33) + 1)));
    }
    return (unsigned) b;
}

unsigned
wsh_placement_shard(const char *ch, size_t len, unsigned n)
{
    return n <= 1 ? 0 : wsh_placement_jump(wsh_fnv1a64(ch, len), n);
}
