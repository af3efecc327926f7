/* Why the datapath dropped a packet. The numbering is an API: events and the metrics map
 * carry it, the C# mirror (Membrane.Linux.Bpf.Datapath.DropReason) must match, and values
 * are never reused (Cilium keeps its DROP_* codes stable the same way, bpf/lib/common.h).
 * 0 means "not dropped" so that a metrics key with reason 0 counts forwarded packets. */
#ifndef MEMBRANE_DROP_REASONS_H
#define MEMBRANE_DROP_REASONS_H

#include "common.h"

enum drop_reason {
	REASON_FORWARDED = 0,     /* not a drop: the packet went on */
	DROP_INVALID_PACKET = 1,  /* too short or malformed headers */
	DROP_UNSUPPORTED_L3 = 2,  /* ethertype we do not handle (ARP is let through, not counted here) */
	DROP_POLICY = 3,          /* the test filter's verdict map said drop (test_filter.c) */
	DROP_TTL_EXCEEDED = 4,    /* TTL / hop limit would reach 0 on decrement */
	DROP_EXT_HDR_LIMIT = 5,   /* more IPv6 extension headers than we walk */
	DROP_CT_INVALID = 6,      /* conntrack: fits no connection and cannot open one (conntrack.h) */
	DROP_CT_MAP_FULL = 7,     /* conntrack: the new connection's entry could not be stored */
	DROP_POLICY_DENIED = 8,   /* policy: an enforced direction and no rule allowed it (policy.h) */
	DROP_POLICY_DENY = 9,     /* policy: a deny rule matched */
};
BTF_ANCHOR_ENUM(drop_reason);

#endif /* MEMBRANE_DROP_REASONS_H */
