/* Records the datapath writes to the event ring buffer.
 *
 * Every record starts with the seed frame header (DESIGN.md "Packet library"): `!BBH I`,
 * all in network byte order -
 *   byte 0    version (high nibble, always 1) | type (low nibble)
 *   byte 1    flags: the record's subtype (for a drop: 0)
 *   bytes 2-3 total length of the record, header included
 *   bytes 4-7 id: a per-CPU sequence number here; later a flow hash
 * - followed by a body whose layout depends on the type. Bodies are also in network byte
 * order so that saved event files read the same on every host. New record types
 * (trace, policy verdict) add a body struct and a type value; the header never changes.
 * C# mirrors: Membrane.Linux.Bpf.Datapath.EventHeader / DropEvent. */
#ifndef MEMBRANE_EVENTS_H
#define MEMBRANE_EVENTS_H

#include "common.h"

#define EVENT_VERSION 1

enum event_type {
	EVENT_DROP = 1,
	EVENT_TRACE = 2,          /* reserved for later issues */
	EVENT_POLICY_VERDICT = 3, /* reserved for later issues */
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

BTF_ANCHOR_ENUM(event_type);
BTF_ANCHOR(event_header);
BTF_ANCHOR(drop_event);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* A per-CPU counter gives each record an id without atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} event_seq SEC(".maps");

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
	__u32 *seq = bpf_map_lookup_elem(&event_seq, &zero);
	__u32 id = 0;

	if (seq) {
		id = ++*seq;
		/* Spread ids of different CPUs apart: the top byte is the CPU. */
		id = (id & 0x00ffffff) | (bpf_get_smp_processor_id() << 24);
	}
	h->version_type = (EVENT_VERSION << 4) | (type & 0x0f);
	h->flags = flags;
	h->length = bpf_htons(length);
	h->id = bpf_htonl(id);
}

/* Writes a drop record. A full ring buffer loses the record, never the verdict. */
static __always_inline void emit_drop_event(struct __sk_buff *skb, __u16 reason, __u8 dir, __u8 l4_proto)
{
	struct drop_event *e;
	__u32 cap = skb->len;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
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

#endif /* MEMBRANE_EVENTS_H */
