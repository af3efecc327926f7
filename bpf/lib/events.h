/* Records the datapath writes to the event ring buffer.
 *
 * Every record starts with the seed frame header (DESIGN.md "Packet library"): `!BBH I`,
 * all in network byte order -
 *   byte 0    version (high nibble, always 1) | type (low nibble)
 *   byte 1    flags: the record's subtype (for a drop: 0)
 *   bytes 2-3 total length of the record, header included
 *   bytes 4-7 id: a per-CPU sequence number here; later a flow hash
 * - followed by a body whose layout depends on the type. Bodies are also in network byte
 * order so that saved event files read the same on every host. New record types add a body
 * struct and a type value; the header never changes. The three bodies share their first 12
 * bytes (reason, captured, ifindex, packet_length at offsets 8..19) and end in the captured
 * bytes.
 * C# mirrors: Membrane.Linux.Bpf.Datapath.EventHeader / DropEvent / TraceEvent,
 * Membrane.Datapath.Policy.PolicyVerdictEvent. */
#ifndef MEMBRANE_EVENTS_H
#define MEMBRANE_EVENTS_H

#include "common.h"

#define EVENT_VERSION 1

enum event_type {
	EVENT_DROP = 1,
	EVENT_TRACE = 2,          /* a forwarded packet (struct trace_event) */
	EVENT_POLICY_VERDICT = 3, /* a connection's policy verdict (policy.h) */
};

/* How many leading bytes of the packet a record carries (enough for Eth + IPv6 + TCP). */
#define EVENT_CAPTURE_LEN 96

struct event_header {
	__u8 version_type; /* (EVENT_VERSION << 4) | type */
	__u8 flags;
	__be16 length;     /* whole record, this header included */
	__be32 id;
};

struct drop_event {
	struct event_header header;
	__be16 reason;     /* enum drop_reason */
	__be16 captured;   /* valid bytes in data[] */
	__be32 ifindex;    /* device the program ran on */
	__be32 packet_length; /* skb->len: the whole packet */
	__u8 direction;    /* enum membrane_dir */
	__u8 l4_proto;     /* IPPROTO_* or 0 when not parsed */
	__be16 reserved;
	__u8 data[EVENT_CAPTURE_LEN];
};

/* Where a trace record saw its packet: the header's flags byte. The numbers are Cilium's
 * monitor trace points (TRACE_TO_LXC, TRACE_TO_STACK), so that Hubble's sub_type reads the same. */
enum trace_point {
	TRACE_TO_ENDPOINT = 0, /* delivered into a pod: redirected from another pod, or from the node's stack */
	TRACE_TO_STACK = 3,    /* a pod's packet handed to the node's stack (the node, other nodes, the world) */
};

struct trace_event {
	struct event_header header; /* flags: enum trace_point */
	__be16 reserved0;
	__be16 captured;      /* valid bytes in data[] */
	__be32 ifindex;       /* the host-side veth of the endpoint */
	__be32 packet_length; /* skb->len */
	__be32 src_identity;  /* of the packet's source address */
	__be32 dst_identity;  /* of its destination address */
	__u8 ct_result;       /* enum ct_result (conntrack.h): NEW, ESTABLISHED, REPLY, RELATED */
	__u8 l4_proto;
	__u8 tcp_flags;       /* TCP only */
	__u8 reserved1;
	__u8 data[EVENT_CAPTURE_LEN];
};

/* Which forwarded packets get a trace record (the agent's --monitor-aggregation), like
 * Cilium's monitor aggregation: established traffic must not flood the ring buffer. 0 is
 * the default so that a map nobody wrote means "medium". */
enum monitor_aggregation {
	MONITOR_AGG_MEDIUM = 0,  /* a connection's first packet, ICMP errors about it, and TCP packets with SYN, FIN or RST */
	MONITOR_AGG_NONE = 1,    /* every forwarded packet */
	MONITOR_AGG_MAXIMUM = 2, /* a connection's first packet only */
};

struct monitor_config {
	__u32 aggregation; /* enum monitor_aggregation */
};

/* Per CPU: the record id sequence, and the records lost because the ring buffer was full
 * (the agent sums them over the CPUs and reports them: a lost record is never silent). */
struct event_state {
	__u32 seq;
	__u32 pad;
	__u64 lost;
};

BTF_ANCHOR_ENUM(event_type);
BTF_ANCHOR_ENUM(trace_point);
BTF_ANCHOR_ENUM(monitor_aggregation);
BTF_ANCHOR(event_header);
BTF_ANCHOR(drop_event);
BTF_ANCHOR(trace_event);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event_state);
} event_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct monitor_config);
} monitor_config SEC(".maps");

/* Pending bytes at which a record wakes the reader. Waking it for every record (the ring
 * buffer's default when the reader has caught up) cost a context switch per record: a new
 * connection took ~10 us instead of ~1 us with the agent reading (bench/README.md). The
 * reader polls at least every 100 ms anyway (BpfRingBufferReader), so records wait at most
 * that long unless a batch this size builds up first. */
#define EVENT_WAKEUP_BYTES (64 * 1024)

static __always_inline __u64 event_submit_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= EVENT_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void event_header_init(struct event_header *h, __u8 type, __u8 flags, __u16 length)
{
	__u32 zero = 0;
	struct event_state *st = bpf_map_lookup_elem(&event_state, &zero);
	__u32 id = 0;

	if (st) {
		id = ++st->seq;
		/* Spread ids of different CPUs apart: the top byte is the CPU. */
		id = (id & 0x00ffffff) | (bpf_get_smp_processor_id() << 24);
	}
	h->version_type = (EVENT_VERSION << 4) | (type & 0x0f);
	h->flags = flags;
	h->length = bpf_htons(length);
	h->id = bpf_htonl(id);
}

/* Reserves a record; a full ring buffer counts the loss (event_state) and gives NULL. */
static __always_inline void *event_reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e) {
		__u32 zero = 0;
		struct event_state *st = bpf_map_lookup_elem(&event_state, &zero);

		if (st)
			st->lost++;
	}
	return e;
}

/* Writes a drop record. A full ring buffer loses the record, never the verdict. */
static __always_inline void emit_drop_event(struct __sk_buff *skb, __u16 reason, __u8 dir, __u8 l4_proto)
{
	struct drop_event *e;
	__u32 cap = skb->len;

	e = event_reserve(sizeof(*e));
	if (!e)
		return;
	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;
	event_header_init(&e->header, EVENT_DROP, 0, sizeof(*e));
	e->reason = bpf_htons(reason);
	e->ifindex = bpf_htonl(skb->ifindex);
	e->packet_length = bpf_htonl(skb->len);
	e->direction = dir;
	e->l4_proto = l4_proto;
	e->reserved = 0;
	__builtin_memset(e->data, 0, sizeof(e->data));
	if (cap > 0 && bpf_skb_load_bytes(skb, 0, e->data, cap) < 0)
		cap = 0;
	e->captured = bpf_htons(cap);
	bpf_ringbuf_submit(e, event_submit_flags());
}

/* Writes a trace record (see trace_wanted in trace.h for which packets get one).
 * point_result is the enum trace_point | ct_result << 8 | l4_proto << 16 | tcp_flags << 24.
 * A global function like policy_check: verified once, not at each of its call sites. */
__attribute__((noinline)) int trace_emit(struct __sk_buff *skb, __u32 point_result, __u32 src_identity, __u32 dst_identity)
{
	struct trace_event *e;
	__u32 cap;

	if (!skb)
		return 0;
	e = event_reserve(sizeof(*e));
	if (!e)
		return 0;
	cap = skb->len;
	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;
	event_header_init(&e->header, EVENT_TRACE, point_result & 0xff, sizeof(*e));
	e->reserved0 = 0;
	e->ifindex = bpf_htonl(skb->ifindex);
	e->packet_length = bpf_htonl(skb->len);
	e->src_identity = bpf_htonl(src_identity);
	e->dst_identity = bpf_htonl(dst_identity);
	e->ct_result = (point_result >> 8) & 0xff;
	e->l4_proto = (point_result >> 16) & 0xff;
	e->tcp_flags = point_result >> 24;
	e->reserved1 = 0;
	__builtin_memset(e->data, 0, sizeof(e->data));
	if (cap > 0 && bpf_skb_load_bytes(skb, 0, e->data, cap) < 0)
		cap = 0;
	e->captured = bpf_htons(cap);
	bpf_ringbuf_submit(e, event_submit_flags());
	return 0;
}

#endif /* MEMBRANE_EVENTS_H */
