/* Keys and values of the maps shared with user space, and the maps themselves.
 * C# mirrors: Membrane.Linux.Bpf.Datapath (MetricsKey, MetricsValue, VerdictKey, VerdictValue).
 * Multi-byte fields are host byte order unless the name or comment says __be. */
#ifndef MEMBRANE_MAPS_H
#define MEMBRANE_MAPS_H

#include "common.h"
#include <linux/in.h>

/* Per-CPU packet/byte counters keyed like Cilium's metrics map: why (reason 0 = forwarded),
 * which direction, which L3 and L4 protocol. The map is a per-CPU ARRAY with one slot per
 * {reason, direction, l3, l4 class} (metrics_slot), not a hash keyed by metrics_key: the hash
 * lookup cost ~27 ns a packet, the array's a few (bench/README.md). metrics_key stays the
 * decoded form user space shows. */
struct metrics_key {
	__u8 reason;    /* enum drop_reason */
	__u8 direction; /* enum membrane_dir */
	__u8 l4_proto;  /* IPPROTO_*, 0 for non-IP; IPPROTO_RAW (255) for "another protocol" */
	__u8 l3;        /* 4 or 6, 0 for non-IP */
};
BTF_ANCHOR(metrics_key);

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

/* The L4 protocols counted apart; every other one shares METRICS_L4_OTHER. */
enum metrics_l4 {
	METRICS_L4_NONE = 0,   /* not IP, or not parsed that far */
	METRICS_L4_TCP = 1,
	METRICS_L4_UDP = 2,
	METRICS_L4_ICMP = 3,
	METRICS_L4_ICMPV6 = 4,
	METRICS_L4_SCTP = 5,
	METRICS_L4_OTHER = 6,
	METRICS_L4_CLASSES = 7,
};
BTF_ANCHOR_ENUM(metrics_l4);

/* slot = ((reason * 3 + direction) * 3 + l3 class) * METRICS_L4_CLASSES + l4 class, with l3
 * class 0 (not IP), 1 (IPv4), 2 (IPv6). Reasons are < 128 (drop_reasons.h). The C# twin is
 * MetricsKey.ToSlot/FromSlot. */
enum metrics_layout {
	METRICS_REASONS = 128,
	METRICS_DIRECTIONS = 3,
	METRICS_L3_CLASSES = 3,
	METRICS_SLOTS = METRICS_REASONS * METRICS_DIRECTIONS * METRICS_L3_CLASSES * METRICS_L4_CLASSES,
};
BTF_ANCHOR_ENUM(metrics_layout);

enum verdict_action {
	ACTION_NONE = 0,    /* no entry: the default applies (allow) */
	ACTION_ALLOW = 1,
	ACTION_DROP = 2,
	ACTION_ROUTE = 3,   /* allow and act as a router hop: decrement TTL / hop limit */
};
BTF_ANCHOR_ENUM(verdict_action);

/* Verdict for traffic to an L4 protocol and destination port; dport 0 is the wildcard
 * entry for the whole protocol. */
struct verdict_key {
	__u8 l4_proto;
	__u8 pad;
	__be16 dport;   /* network byte order, as on the wire */
};

struct verdict_value {
	__u8 action;    /* enum verdict_action */
	__u8 pad[3];
	__u32 hits;     /* incremented (non-atomically, it is a hint) on each match */
};

#define VERDICT_MAX_ENTRIES 4096

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, METRICS_SLOTS);
	__type(key, __u32);
	__type(value, struct metrics_value);
} metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VERDICT_MAX_ENTRIES);
	__type(key, struct verdict_key);
	__type(value, struct verdict_value);
} verdict SEC(".maps");

static __always_inline __u32 metrics_l4_class(__u8 l4_proto)
{
	switch (l4_proto) {
	case 0:
		return METRICS_L4_NONE;
	case IPPROTO_TCP:
		return METRICS_L4_TCP;
	case IPPROTO_UDP:
		return METRICS_L4_UDP;
	case IPPROTO_ICMP:
		return METRICS_L4_ICMP;
	case 58: /* IPPROTO_ICMPV6 */
		return METRICS_L4_ICMPV6;
	case IPPROTO_SCTP:
		return METRICS_L4_SCTP;
	default:
		return METRICS_L4_OTHER;
	}
}

static __always_inline void metrics_count(__u8 reason, __u8 dir, __u8 l3, __u8 l4_proto, __u32 bytes)
{
	__u32 l3c = l3 == 4 ? 1 : l3 == 6 ? 2 : 0;
	__u32 slot = ((((__u32)reason & (METRICS_REASONS - 1)) * METRICS_DIRECTIONS + (dir < METRICS_DIRECTIONS ? dir : 0)) *
			      METRICS_L3_CLASSES + l3c) * METRICS_L4_CLASSES + metrics_l4_class(l4_proto);
	struct metrics_value *v = bpf_map_lookup_elem(&metrics, &slot);

	if (v) {
		/* Per-CPU value: no atomics needed. */
		v->packets++;
		v->bytes += bytes;
	}
}

/* Looks up the exact {proto, dport} entry, then the protocol wildcard. */
static __always_inline struct verdict_value *verdict_lookup(__u8 l4_proto, __be16 dport)
{
	struct verdict_key key = { .l4_proto = l4_proto, .dport = dport };
	struct verdict_value *v = bpf_map_lookup_elem(&verdict, &key);

	if (v)
		return v;
	key.dport = 0;
	return bpf_map_lookup_elem(&verdict, &key);
}

#endif /* MEMBRANE_MAPS_H */
