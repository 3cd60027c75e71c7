/* relay.h -- the master side of the local engine (relay.c).
 *
 * Workers' subscriptions and presence, the relay of their publishes to
 * each other, and the sequencer of rooms with history: a service of the
 * master (core/service.h), which hands it every frame of the workers'
 * channels; the workers' side is local.h.
 */
#ifndef WSH_RELAY_H
#define WSH_RELAY_H

#include "core/service.h"

extern const wsh_service_t wsh_relay_service;

#endif /* WSH_RELAY_H */
