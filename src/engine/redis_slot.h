/* redis_slot.h -- Redis Cluster hash slots, and the hash-tagged names
 * that keep a room's channel and keys in one slot. Pure code, any
 * process. Internal to src/engine.
 *
 * Cluster mode (issue 22) routes a room to the master that serves the
 * slot of its hash tag. Every name of a room is written
 *
 *     PREFIX KIND "{" TAG "}" [SUFFIX]
 *
 * with TAG = redis_tag_encode(REALM "#" NAME): PREFIX "room:{TAG}" its
 * channel, PREFIX "presence:{TAG}" and PREFIX "presence_ids:{TAG}" its
 * presence, PREFIX "hist:{TAG}:s" ... its history, PREFIX
 * "client:{TAG}" a client's channel; so the room's SPUBLISH, SSUBSCRIBE
 * and Lua scripts all touch one slot. A name may hold '{' and '}',
 * which would end the tag early or start it late: the tag writes '%',
 * '{' and '}' as "%25", "%7B" and "%7D", so it holds no brace and the
 * first '{' of the name is the one before TAG, provided PREFIX and KIND
 * hold none (redis_slot_prefix_ok; the configuration check refuses
 * such a prefix in cluster mode).
 */
#ifndef WSH_ENGINE_REDIS_SLOT_H
#define WSH_ENGINE_REDIS_SLOT_H

#include "core/core.h"

#define REDIS_SLOTS         16384
/* Bytes of the tag of a name of LEN bytes, at most. */
#define REDIS_TAG_MAX(len)  (3 * (len))

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, no
 * reflection), the checksum of the Redis Cluster specification. */
uint16_t redis_crc16(const void *buf, size_t len);

/* The part of KEY that is hashed: the bytes between the first '{' and
 * the first '}' after it when there are any, else the whole key
 * (Redis Cluster specification, "Hash tags"). *TAG and *N point into
 * KEY. Returns true when a hash tag was found. */
bool redis_slot_hashed(const char *key, size_t len, const char **tag,
    size_t *n);

/* The hash slot of KEY (LEN bytes, binary safe): 0 .. 16383, the
 * same as CLUSTER KEYSLOT. */
unsigned redis_slot(const char *key, size_t len);

/* NAME (LEN bytes) as a tag into BUF (REDIS_TAG_MAX(LEN) bytes): '%'
 * '{' '}' written "%25" "%7B" "%7D", the rest as is. Returns the
 * length. */
size_t redis_tag_encode(char *buf, const char *name, size_t len);

/* Back from a tag: TAG (LEN bytes) decoded into BUF (LEN bytes
 * suffice), its length in *N. WSH_ERROR, BUF undefined, for what
 * redis_tag_encode never writes: a brace, or a '%' not followed by
 * "25", "7B" or "7D". */
int redis_tag_decode(char *buf, const char *tag, size_t len, size_t *n);

/* PREFIX KIND "{" TAG(NAME) "}" into BUF of SIZE bytes. Returns the
 * length (no NUL written), or 0 when it does not fit. */
size_t redis_slot_key(char *buf, size_t size, const char *prefix,
    const char *kind, const char *name, size_t len);

/* The name in a key made by redis_slot_key with PREFIX and KIND: the
 * decoded tag into BUF (SIZE bytes), its length in *N. WSH_ERROR when
 * KEY is not PREFIX KIND "{" TAG "}" ... with a valid TAG, or the name
 * does not fit. What follows the '}' (a history key's ":s") is
 * ignored. */
int redis_slot_key_name(const char *key, size_t len, const char *prefix,
    const char *kind, char *buf, size_t size, size_t *n);

/* True when PREFIX holds no '{' or '}': a brace there would move or
 * end the hash tag of every name (see above). */
bool redis_slot_prefix_ok(const char *prefix);

#endif /* WSH_ENGINE_REDIS_SLOT_H */
