/* placement.h -- which of N shards holds a topic: jump consistent hash
 * (Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash
 * Algorithm", 2014) of the 64-bit FNV-1a hash (wsh_fnv1a64) of the
 * topic's channel.
 * Every node must compute the same answer: both are defined to the bit
 * (no seed, no host dependence).
 */
#ifndef WSH_ENGINE_PLACEMENT_H
#define WSH_ENGINE_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

/* The bucket of KEY among N (N >= 1): in [0, N). Going from N to N + 1
 * buckets moves a key only to the new one, 1/(N + 1) of the keys. */
unsigned wsh_placement_jump(uint64_t key, unsigned n);

/* The shard, in [0, N), of the channel CH of LEN bytes. */
unsigned wsh_placement_shard(const char *ch, size_t len, unsigned n);

#endif /* WSH_ENGINE_PLACEMENT_H */
