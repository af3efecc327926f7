/* Keys and values of the maps shared with user space, and the maps themselves.
 * C# mirrors: Membrane.Linux.Bpf.Datapath (MetricsKey, MetricsValue, VerdictKey, VerdictValue).
 * Multi-byte fields are host byte order unless the name or comment says __be. */
#ifndef MEMBRANE_MAPS_H
#define MEMBRANE_MAPS_H

#include "common.h"

/* Per-CPU packet/byte counters keyed like Cilium's metrics map: why (reason 0 = forwarded),
 * which direction, which L4 protocol. */
struct metrics_key {
	__u8 reason;    /* enum drop_reason */
	__u8 direction; /* enum membrane_dir */
	__u8 l4_proto;  /* IPPROTO_*, 0 for non-IP */
	__u8 l3;        /* 4 or 6, 0 for non-IP */
};

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

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

#define METRICS_MAX_ENTRIES 1024
#define VERDICT_MAX_ENTRIES 4096

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, METRICS_MAX_ENTRIES);
	__type(key, struct metrics_key);
	__type(value, struct metrics_value);
} metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VERDICT_MAX_ENTRIES);
	__type(key, struct verdict_key);
	__type(value, struct verdict_value);
} verdict SEC(".maps");

static __always_inline void metrics_count(__u8 reason, __u8 dir, __u8 l3, __u8 l4_proto, __u32 bytes)
{
	struct metrics_key key = { .reason = reason, .direction = dir, .l4_proto = l4_proto, .l3 = l3 };
	struct metrics_value *v = bpf_map_lookup_elem(&metrics, &key);

	if (v) {
		/* Per-CPU value: no atomics needed. */
		v->packets++;
		v->bytes += bytes;
		return;
	}
	struct metrics_value init = { .packets = 1, .bytes = bytes };
	bpf_map_update_elem(&metrics, &key, &init, BPF_NOEXIST);
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
