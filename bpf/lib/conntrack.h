/* Connection tracking: every IP packet that crosses an endpoint program is classified as
 * NEW, ESTABLISHED, REPLY, RELATED, INVALID or UNTRACKED against a table of connections,
 * so that established and reply traffic can skip policy (issue 6) and NAT can be reversed
 * (a later issue). The C# model (Membrane.Datapath.Conntrack.ConntrackModel) implements the
 * same rules, and a differential test runs both on the same packets.
 *
 * TCP follows Linux nf_conntrack (net/netfilter/nf_conntrack_proto_tcp.c): the same states,
 * the same transition table, the same flag index, mid-stream pickup of an ACK (the default
 * nf_conntrack_tcp_loose=1) and the reopening of a connection by a SYN in TIME_WAIT/CLOSE.
 * Deliberately NOT done here: window tracking (tcp_in_window) - like Cilium's datapath, the
 * table only follows flags - and the resynchronisation of IGNOREd packets (last_index).
 *
 * One entry per connection, keyed by the tuple of its first packet (the ORIGINAL
 * direction); a packet is looked up as it is, then reversed (REPLY). On one node every packet
 * crosses exactly one conntrack hook: from_pod for whatever a pod sends (to another pod,
 * delivered by redirect_peer, or to the stack) and to_pod for what the node's stack sends
 * into a pod. So, unlike Cilium's separate egress and ingress entries, one entry per
 * connection is enough and the key carries no direction; the hook that opened the
 * connection is kept in the value (origin). */
#ifndef MEMBRANE_CONNTRACK_H
#define MEMBRANE_CONNTRACK_H

#include "common.h"
#include "drop_reasons.h"
#include "endpoint.h"
#include "ipv6.h"
#include "l4.h"
#include "parse.h"
#include <linux/ip.h>

/* ICMP types (RFC 792, RFC 4443); linux/icmp.h would pull in libc headers. */
#define CT_ICMP_ECHOREPLY 0
#define CT_ICMP_DEST_UNREACH 3
#define CT_ICMP_SOURCE_QUENCH 4
#define CT_ICMP_REDIRECT 5
#define CT_ICMP_ECHO 8
#define CT_ICMP_TIME_EXCEEDED 11
#define CT_ICMP_PARAMETERPROB 12
#define CT_ICMPV6_DEST_UNREACH 1
#define CT_ICMPV6_PKT_TOOBIG 2
#define CT_ICMPV6_TIME_EXCEED 3
#define CT_ICMPV6_PARAMPROB 4
#define CT_ICMPV6_ECHO_REQUEST 128
#define CT_ICMPV6_ECHO_REPLY 129

/* Linux's TCP conntrack states, same numbers (uapi nf_conntrack_tcp.h); UDP, ICMP echo and
 * other protocols are pseudo-connections, unreplied until the responder sends. */
enum ct_state {
	CT_STATE_NONE = 0,
	CT_STATE_SYN_SENT = 1,
	CT_STATE_SYN_RECV = 2,
	CT_STATE_ESTABLISHED = 3,
	CT_STATE_FIN_WAIT = 4,
	CT_STATE_CLOSE_WAIT = 5,
	CT_STATE_LAST_ACK = 6,
	CT_STATE_TIME_WAIT = 7,
	CT_STATE_CLOSE = 8,
	CT_STATE_SYN_SENT2 = 9,
	CT_STATE_UNREPLIED = 16,
	CT_STATE_REPLIED = 17,
};
BTF_ANCHOR_ENUM(ct_state);

enum ct_result {
	CT_RESULT_NEW = 1,         /* opens a connection (the caller creates the entry) */
	CT_RESULT_ESTABLISHED = 2, /* a tracked connection, from its originator */
	CT_RESULT_REPLY = 3,       /* a tracked connection, from its responder */
	CT_RESULT_RELATED = 4,     /* an ICMP error about a packet of a tracked connection */
	CT_RESULT_INVALID = 5,     /* fits no connection and cannot open one: dropped */
	CT_RESULT_UNTRACKED = 6,   /* later fragments, neighbour discovery, link-local IPv6 */
};
BTF_ANCHOR_ENUM(ct_result);

enum ct_dir {
	CT_DIR_ORIGINAL = 0,
	CT_DIR_REPLY = 1,
};
BTF_ANCHOR_ENUM(ct_dir);

/* Which hook saw the connection's first packet. */
enum ct_origin {
	CT_ORIGIN_FROM_POD = 1, /* the endpoint opened it (from_pod) */
	CT_ORIGIN_TO_POD = 2,   /* the node's stack opened it toward the endpoint (to_pod) */
};
BTF_ANCHOR_ENUM(ct_origin);

enum ct_entry_flags {
	CT_F_REPLY_SEEN = 1 << 0, /* the responder has sent at least one packet */
};
BTF_ANCHOR_ENUM(ct_entry_flags);

/* Tuples in network byte order, as the originator's first packet carried them. ICMP echo:
 * request sport = identifier, dport = 0; reply sport = 0, dport = identifier, so that a
 * reply reversed is its request. flags is zero for connections (reserved for service
 * entries of the load balancer); pad is zero because hash keys compare every byte. */
struct ct_key4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 flags;
	__u16 pad;
};

struct ct_key6 {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 flags;
	__u16 pad;
};

/* Times are whole seconds of CLOCK_MONOTONIC (bpf_ktime_get_coarse_ns), which is what user
 * space reads with clock_gettime(CLOCK_MONOTONIC). Counters are added atomically: two CPUs may
 * carry the two directions of one connection at once. */
struct ct_entry {
	__u64 packets_orig;
	__u64 bytes_orig;
	__u64 packets_reply;
	__u64 bytes_reply;
	__u32 lifetime;        /* expires when CLOCK_MONOTONIC passes this second */
	__u32 created;         /* the second the entry was made */
	__u32 src_identity;    /* the originator's security identity (0: not known yet) */
	__u16 rev_nat_index;   /* reverse-NAT entry of a translated connection (0: none) */
	__u8 state;            /* enum ct_state */
	__u8 origin;           /* enum ct_origin */
	__u8 tcp_flags_orig;   /* TCP flags seen from the originator (FIN 0x01 .. CWR 0x80) */
	__u8 tcp_flags_reply;  /* and from the responder */
	__u8 flags;            /* enum ct_entry_flags */
	__u8 pad;
	__u32 last_seen;       /* the second of the last packet counted */
};

/* Per-state lifetimes in seconds, written by the agent (--ct-timeout-*); 0 = the default. */
struct ct_config {
	__u32 tcp_syn;         /* SYN_SENT, SYN_RECV, SYN_SENT2 */
	__u32 tcp_established; /* ESTABLISHED and the half-closed FIN_WAIT, CLOSE_WAIT */
	__u32 tcp_close;       /* LAST_ACK, TIME_WAIT, CLOSE */
	__u32 other;           /* UDP, ICMP, other protocols */
};

/* Cilium's defaults (pkg/defaults: CT lifetimes). */
#define CT_DEFAULT_TCP_SYN 60
#define CT_DEFAULT_TCP_ESTABLISHED 21600
#define CT_DEFAULT_TCP_CLOSE 10
#define CT_DEFAULT_OTHER 60

/* The object's size; the agent resizes both maps before loading (--ct-max-entries). */
#define CT_DEFAULT_MAX_ENTRIES 65536

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_DEFAULT_MAX_ENTRIES);
	__type(key, struct ct_key4);
	__type(value, struct ct_entry);
} ct4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_DEFAULT_MAX_ENTRIES);
	__type(key, struct ct_key6);
	__type(value, struct ct_entry);
} ct6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_config);
} ct_config SEC(".maps");

/* TCP header flag bits (RFC 9293 3.1, byte 13). */
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* get_conntrack_index() of nf_conntrack_proto_tcp.c. */
enum ct_tcp_index {
	CT_TCP_SYN = 0,
	CT_TCP_SYNACK = 1,
	CT_TCP_FIN = 2,
	CT_TCP_ACK = 3,
	CT_TCP_RST = 4,
	CT_TCP_NONE = 5,
};

static __always_inline __u32 ct_tcp_index(__u8 flags)
{
	if (flags & TCP_FLAG_RST)
		return CT_TCP_RST;
	if (flags & TCP_FLAG_SYN)
		return (flags & TCP_FLAG_ACK) ? CT_TCP_SYNACK : CT_TCP_SYN;
	if (flags & TCP_FLAG_FIN)
		return CT_TCP_FIN;
	if (flags & TCP_FLAG_ACK)
		return CT_TCP_ACK;
	return CT_TCP_NONE;
}

#define CT_TCP_STATES 10
#define sNO CT_STATE_NONE
#define sSS CT_STATE_SYN_SENT
#define sSR CT_STATE_SYN_RECV
#define sES CT_STATE_ESTABLISHED
#define sFW CT_STATE_FIN_WAIT
#define sCW CT_STATE_CLOSE_WAIT
#define sLA CT_STATE_LAST_ACK
#define sTW CT_STATE_TIME_WAIT
#define sCL CT_STATE_CLOSE
#define sS2 CT_STATE_SYN_SENT2
#define sIV 0xfe /* invalid */
#define sIG 0xff /* ignore: accepted, the entry is left as it is */

/* tcp_conntracks[dir][index][state] of nf_conntrack_proto_tcp.c (Linux 6.x), where the
 * reasons for each cell are written down; RFC 9293 3.5-3.6 for the handshake and close. */
static const __u8 ct_tcp_table[2][6][CT_TCP_STATES] = {
	{
		/* ORIGINAL  sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
		/* syn    */ { sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 },
		/* synack */ { sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR },
		/* fin    */ { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
		/* ack    */ { sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV },
		/* rst    */ { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
		/* none   */ { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV },
	},
	{
		/* REPLY     sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
		/* syn    */ { sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2 },
		/* synack */ { sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
		/* fin    */ { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
		/* ack    */ { sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG },
		/* rst    */ { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
		/* none   */ { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV },
	},
};

/* The second of the coarse clock, remembered per CPU with the jiffy it was read in. */
struct ct_clock {
	__u64 jiffies;
	__u32 now;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_clock);
} ct_clock SEC(".maps");

/* The current second of CLOCK_MONOTONIC, which user space reads with clock_gettime. The
 * coarse clock is the time of the last tick, so it only moves when jiffies do: it is read
 * (a helper call and a 64-bit division, ~14 ns) once per tick and CPU, and every other
 * packet pays an inlined per-CPU array lookup and the inlined jiffies load (bench/README.md).
 * A CPU that reads between a tick's jiffies update and its clock update keeps the previous
 * tick's time until the next tick: the second may trail by two ticks. */
static __always_inline __u32 ct_now(void)
{
	__u32 zero = 0;
	struct ct_clock *c = bpf_map_lookup_elem(&ct_clock, &zero);
	__u64 j = bpf_jiffies64();
	__u32 now;

	if (c && c->jiffies == j)
		return c->now;
	now = (__u32)(bpf_ktime_get_coarse_ns() / 1000000000ULL);
	if (c) {
		c->jiffies = j;
		c->now = now;
	}
	return now;
}

static __always_inline __u32 ct_timeout(__u8 state, __u8 proto)
{
	__u32 zero = 0;
	struct ct_config *cfg = bpf_map_lookup_elem(&ct_config, &zero);
	__u32 t;

	if (proto != IPPROTO_TCP) {
		t = cfg ? cfg->other : 0;
		return t ? t : CT_DEFAULT_OTHER;
	}
	switch (state) {
	case CT_STATE_SYN_SENT:
	case CT_STATE_SYN_RECV:
	case CT_STATE_SYN_SENT2:
		t = cfg ? cfg->tcp_syn : 0;
		return t ? t : CT_DEFAULT_TCP_SYN;
	case CT_STATE_ESTABLISHED:
	case CT_STATE_FIN_WAIT:
	case CT_STATE_CLOSE_WAIT:
		t = cfg ? cfg->tcp_established : 0;
		return t ? t : CT_DEFAULT_TCP_ESTABLISHED;
	default:
		t = cfg ? cfg->tcp_close : 0;
		return t ? t : CT_DEFAULT_TCP_CLOSE;
	}
}

/* What conntrack needs of a packet besides its tuple. */
struct ct_packet {
	__u32 len;       /* skb->len */
	__u8 proto;      /* the key's protocol */
	__u8 tcp_flags;  /* TCP only */
	__u8 icmp_kind;  /* enum ct_icmp_kind */
	__u8 pad;
};

enum ct_icmp_kind {
	CT_ICMP_NONE = 0,       /* not ICMP, or ICMP echo request: tracked like UDP */
	CT_ICMP_ECHO_REPLY = 1, /* may not open a connection */
	CT_ICMP_ERROR = 2,      /* looked up by the quoted packet: RELATED or INVALID */
	CT_ICMP_UNTRACKED = 3,  /* ICMPv6 neighbour/router discovery, MLD */
	CT_ICMP_OTHER = 4,      /* any other type: INVALID */
};

/* The outcome of ct_lookup. For CT_RESULT_NEW, state is the state a new entry starts in
 * and nothing has been written: the caller creates the entry (ct_create) once policy
 * allowed the connection. */
struct ct_verdict {
	__u8 result; /* enum ct_result */
	__u8 state;  /* the connection's state after this packet */
	__u8 dir;    /* enum ct_dir, for ESTABLISHED/REPLY */
	__u8 pad;
};

/* The state a connection's first packet opens, CT_STATE_NONE when it cannot open one. */
static __always_inline __u8 ct_initial_state(const struct ct_packet *pkt)
{
	if (pkt->proto == IPPROTO_TCP) {
		__u8 s = ct_tcp_table[CT_DIR_ORIGINAL][ct_tcp_index(pkt->tcp_flags)][CT_STATE_NONE];

		return s == sIV ? CT_STATE_NONE : s;
	}
	if (pkt->icmp_kind == CT_ICMP_ECHO_REPLY)
		return CT_STATE_NONE;
	return CT_STATE_UNREPLIED;
}

static __always_inline void ct_account(struct ct_entry *e, __u8 dir, const struct ct_packet *pkt)
{
	if (dir == CT_DIR_ORIGINAL) {
		__sync_fetch_and_add(&e->packets_orig, 1);
		__sync_fetch_and_add(&e->bytes_orig, pkt->len);
		if (pkt->proto == IPPROTO_TCP && (e->tcp_flags_orig | pkt->tcp_flags) != e->tcp_flags_orig)
			e->tcp_flags_orig |= pkt->tcp_flags;
	} else {
		__sync_fetch_and_add(&e->packets_reply, 1);
		__sync_fetch_and_add(&e->bytes_reply, pkt->len);
		if (pkt->proto == IPPROTO_TCP && (e->tcp_flags_reply | pkt->tcp_flags) != e->tcp_flags_reply)
			e->tcp_flags_reply |= pkt->tcp_flags;
		if (!(e->flags & CT_F_REPLY_SEEN))
			e->flags |= CT_F_REPLY_SEEN;
	}
}

/* Steps 3 and 4 of the rules (see the C# model): a packet of a live entry. Returns the
 * verdict; CT_RESULT_NEW means "reopened": the caller deletes the entry and creates one
 * in the packet's orientation. */
static __always_inline void ct_update(struct ct_entry *e, __u8 dir, const struct ct_packet *pkt,
				      __u32 now, struct ct_verdict *v)
{
	__u8 old = e->state, next;

	v->dir = dir;
	v->result = dir == CT_DIR_ORIGINAL ? CT_RESULT_ESTABLISHED : CT_RESULT_REPLY;
	if (pkt->proto == IPPROTO_TCP) {
		if (old >= CT_TCP_STATES) {
			/* A TCP entry holds a TCP state; anything else is damage. */
			v->result = CT_RESULT_INVALID;
			v->state = old;
			return;
		}
		next = ct_tcp_table[dir & 1][ct_tcp_index(pkt->tcp_flags)][old];
		if (next == sIV) {
			v->result = CT_RESULT_INVALID;
			v->state = old;
			return;
		}
		if (next == sIG) {
			v->state = old;
			return;
		}
		if (next == CT_STATE_SYN_SENT && (old == CT_STATE_TIME_WAIT || old == CT_STATE_CLOSE)) {
			/* RFC 1122 4.2.2.13 / Linux: a SYN reopens a closed connection. */
			v->result = CT_RESULT_NEW;
			v->state = CT_STATE_SYN_SENT;
			return;
		}
	} else {
		next = dir == CT_DIR_REPLY ? CT_STATE_REPLIED : old;
	}
	v->state = next;
	ct_account(e, dir, pkt);
	/* The lifetime moves on with the state or the second; within one second of one state
	 * it is already now + that state's timeout. */
	if (next != old || e->last_seen != now) {
		e->state = next;
		e->lifetime = now + ct_timeout(next, pkt->proto);
		e->last_seen = now;
	}
}

static __always_inline bool ct_alive(const struct ct_entry *e, __u32 now)
{
	return (__s32)(e->lifetime - now) >= 0;
}

static __always_inline int ct_create(void *map, const void *key, const struct ct_packet *pkt,
				     __u8 state, __u8 origin, __u32 identity)
{
	__u32 now = ct_now();
	struct ct_entry e = {
		.packets_orig = 1,
		.bytes_orig = pkt->len,
		.created = now,
		.last_seen = now,
		.lifetime = now + ct_timeout(state, pkt->proto),
		.src_identity = identity,
		.state = state,
		.origin = origin,
		.tcp_flags_orig = pkt->proto == IPPROTO_TCP ? pkt->tcp_flags : 0,
	};

	return bpf_map_update_elem(map, key, &e, BPF_ANY) ? DROP_CT_MAP_FULL : 0;
}

/* Classifies a packet whose tuple is *key (its reverse in *rkey) and updates the entry it
 * belongs to. A reopened connection has its old entry deleted here. */
static __always_inline void ct_lookup(void *map, const void *key, const void *rkey,
				      const struct ct_packet *pkt, struct ct_verdict *v)
{
	__u32 now = ct_now();
	struct ct_entry *e;

	v->dir = CT_DIR_ORIGINAL;
	e = bpf_map_lookup_elem(map, key);
	if (e && ct_alive(e, now)) {
		ct_update(e, CT_DIR_ORIGINAL, pkt, now, v);
		return;
	}
	e = bpf_map_lookup_elem(map, rkey);
	if (e && ct_alive(e, now)) {
		ct_update(e, CT_DIR_REPLY, pkt, now, v);
		if (v->result == CT_RESULT_NEW) {
			/* Reopened from the other side: the new connection is the packet's own. */
			bpf_map_delete_elem(map, rkey);
			v->dir = CT_DIR_ORIGINAL;
		}
		return;
	}
	v->state = ct_initial_state(pkt);
	v->result = v->state == CT_STATE_NONE ? CT_RESULT_INVALID : CT_RESULT_NEW;
}

/* An ICMP error is RELATED when the packet it quotes belongs to a live entry. */
static __always_inline __u8 ct_related(void *map, const void *qkey, const void *rqkey)
{
	__u32 now = ct_now();
	struct ct_entry *e = bpf_map_lookup_elem(map, qkey);

	if (e && ct_alive(e, now))
		return CT_RESULT_RELATED;
	e = bpf_map_lookup_elem(map, rqkey);
	if (e && ct_alive(e, now))
		return CT_RESULT_RELATED;
	return CT_RESULT_INVALID;
}

/* ICMP types (RFC 792, RFC 4443, RFC 4861, RFC 3810). */
static __always_inline __u8 ct_icmp4_kind(__u8 type)
{
	switch (type) {
	case CT_ICMP_ECHO:
		return CT_ICMP_NONE;
	case CT_ICMP_ECHOREPLY:
		return CT_ICMP_ECHO_REPLY;
	case CT_ICMP_DEST_UNREACH:
	case CT_ICMP_SOURCE_QUENCH:
	case CT_ICMP_REDIRECT:
	case CT_ICMP_TIME_EXCEEDED:
	case CT_ICMP_PARAMETERPROB:
		return CT_ICMP_ERROR;
	default:
		return CT_ICMP_OTHER;
	}
}

static __always_inline __u8 ct_icmp6_kind(__u8 type)
{
	switch (type) {
	case CT_ICMPV6_ECHO_REQUEST:
		return CT_ICMP_NONE;
	case CT_ICMPV6_ECHO_REPLY:
		return CT_ICMP_ECHO_REPLY;
	case CT_ICMPV6_DEST_UNREACH:
	case CT_ICMPV6_PKT_TOOBIG:
	case CT_ICMPV6_TIME_EXCEED:
	case CT_ICMPV6_PARAMPROB:
		return CT_ICMP_ERROR;
	case 130 ... 137: /* MLD query/report/done, router/neighbour solicitation/advertisement, redirect */
	case 143:         /* MLDv2 report */
		return CT_ICMP_UNTRACKED;
	default:
		return CT_ICMP_OTHER;
	}
}

/* Fills the ports of a key from the L4 header at off: TCP/UDP/SCTP ports, ICMP echo
 * identifier (see struct ct_key4), the ICMP kind, and for the packet's own TCP header
 * (tcp_flags not NULL) the flags. ICMP counts only in its own family (ICMPv6 inside IPv4 is
 * just another protocol). A quoted header (RFC 792: at least 8 bytes of it) needs only its
 * ports; the packet's own TCP header needs its 20 bytes, an ICMP header its 8. */
static __always_inline int ct_l4(void *data, void *data_end, __u32 off, __u8 proto, bool icmp6,
				 __be16 *sport, __be16 *dport, __u8 *tcp_flags, __u8 *kind)
{
	*sport = 0;
	*dport = 0;
	*kind = CT_ICMP_NONE;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) {
		__be16 *ports = data + off;

		if ((void *)(ports + 2) > data_end)
			return DROP_INVALID_PACKET;
		*sport = ports[0];
		*dport = ports[1];
		if (proto == IPPROTO_TCP && tcp_flags) {
			__u8 *tcp = data + off;

			if ((void *)(tcp + 20) > data_end)
				return DROP_INVALID_PACKET;
			*tcp_flags = tcp[13];
		}
		return 0;
	}
	if (proto == (icmp6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP)) {
		/* type, code, checksum, identifier (RFC 792 echo; RFC 4443 4.1) */
		__u8 *icmp = data + off;

		if ((void *)(icmp + 8) > data_end)
			return DROP_INVALID_PACKET;
		*kind = icmp6 ? ct_icmp6_kind(icmp[0]) : ct_icmp4_kind(icmp[0]);
		if (*kind == CT_ICMP_NONE)
			*sport = *(__be16 *)(icmp + 4);
		else if (*kind == CT_ICMP_ECHO_REPLY)
			*dport = *(__be16 *)(icmp + 4);
	}
	return 0;
}

/* A later fragment whose ports its first fragment left (fragments.h): it has no L4 header of
 * its own to read. Its TCP flags are taken as a bare ACK - every segment after the handshake
 * carries one - so it moves no connection along and opens none but by loose pickup. */
static __always_inline void ct_fragment_ports(const struct packet_info *info, __be16 *sport, __be16 *dport, struct ct_packet *pkt)
{
	*sport = info->sport;
	*dport = info->dport;
	pkt->tcp_flags = info->l4_proto == IPPROTO_TCP ? TCP_FLAG_ACK : 0;
	pkt->icmp_kind = CT_ICMP_NONE;
}

/* A quoted packet can only be matched when it is a first fragment and, if ICMP, an echo. */
static __always_inline bool ct_quote_usable(__u8 quoted_kind)
{
	return quoted_kind == CT_ICMP_NONE || quoted_kind == CT_ICMP_ECHO_REPLY;
}

static __always_inline void ct_reverse4(struct ct_key4 *r, const struct ct_key4 *k)
{
	r->saddr = k->daddr;
	r->daddr = k->saddr;
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
	r->flags = 0;
	r->pad = 0;
}

static __always_inline void ct_reverse6(struct ct_key6 *r, const struct ct_key6 *k)
{
	__builtin_memcpy(r->saddr, k->daddr, 16);
	__builtin_memcpy(r->daddr, k->saddr, 16);
	r->sport = k->dport;
	r->dport = k->sport;
	r->proto = k->proto;
	r->flags = 0;
	r->pad = 0;
}

/* The result of conntrack for one packet, with what ct_commit needs afterwards. */
struct ct_ctx {
	struct ct_verdict v;
	struct ct_packet pkt;
	union {
		struct ct_key4 k4;
		struct ct_key6 k6;
	};
};

/* Conntrack for an IPv4 packet (info parsed, header bounds checked by the caller). */
static __always_inline int ct_ipv4(struct __sk_buff *skb, const struct packet_info *info, struct ct_ctx *c)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + info->l3_off;
	struct ct_key4 rk = {};
	int ret = 0;

	__builtin_memset(c, 0, sizeof(*c));
	if ((void *)(ip + 1) > data_end)
		return DROP_INVALID_PACKET;
	if (info->later_fragment) {
		c->v.result = CT_RESULT_UNTRACKED;
		return 0;
	}
	c->pkt.len = skb->len;
	c->pkt.proto = info->l4_proto;
	c->k4.saddr = ip->saddr;
	c->k4.daddr = ip->daddr;
	c->k4.proto = info->l4_proto;
	if (info->frag_resolved)
		ct_fragment_ports(info, &c->k4.sport, &c->k4.dport, &c->pkt);
	else
		ret = ct_l4(data, data_end, info->l4_off, info->l4_proto, false,
			    &c->k4.sport, &c->k4.dport, &c->pkt.tcp_flags, &c->pkt.icmp_kind);
	if (ret)
		return ret;
	switch (c->pkt.icmp_kind) {
	case CT_ICMP_ERROR: {
		/* The quoted header: RFC 792, after the 8-byte ICMP header. */
		__u32 qoff = info->l4_off + 8;
		struct iphdr *q = data + qoff;
		struct ct_key4 qk = {}, rqk;
		__u8 qkind;
		__u32 ihl;

		if ((void *)(q + 1) > data_end)
			return DROP_INVALID_PACKET;
		ihl = (q->ihl & 0xf) * 4;
		if (ihl < sizeof(*q))
			return DROP_INVALID_PACKET;
		/* An error goes back to the sender of the packet it quotes (Linux
		 * nf_conntrack_inet_error: "outer daddr mismatch" is invalid); otherwise a pod
		 * could wrap any data in an "error" about a connection it knows. */
		if (q->saddr != ip->daddr) {
			c->v.result = CT_RESULT_INVALID;
			return 0;
		}
		qk.saddr = q->saddr;
		qk.daddr = q->daddr;
		qk.proto = q->protocol;
		ret = ct_l4(data, data_end, qoff + ihl, q->protocol, false, &qk.sport, &qk.dport, NULL, &qkind);
		if (ret)
			return ret;
		if ((q->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK)) || !ct_quote_usable(qkind)) {
			c->v.result = CT_RESULT_INVALID;
			return 0;
		}
		ct_reverse4(&rqk, &qk);
		c->v.result = ct_related(&ct4, &qk, &rqk);
		return 0;
	}
	case CT_ICMP_OTHER:
		c->v.result = CT_RESULT_INVALID;
		return 0;
	}
	ct_reverse4(&rk, &c->k4);
	ct_lookup(&ct4, &c->k4, &rk, &c->pkt, &c->v);
	return 0;
}

/* fe80::/10 or ff00::/8: an address on the link (RFC 4291 2.5.6, 2.7). */
static __always_inline bool ipv6_link_scope(const __be32 *addr)
{
	return (addr[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000) ||
	       (addr[0] & bpf_htonl(0xff000000)) == bpf_htonl(0xff000000);
}

/* Conntrack for an IPv6 packet. */
static __always_inline int ct_ipv6(struct __sk_buff *skb, const struct packet_info *info, struct ct_ctx *c)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + info->l3_off;
	struct ct_key6 rk = {};
	int ret = 0;

	__builtin_memset(c, 0, sizeof(*c));
	if ((void *)(ip6 + 1) > data_end)
		return DROP_INVALID_PACKET;
	/* Link-scoped traffic (fe80::/10, ::) never leaves the link (RFC 4291 2.5.6). */
	if (info->later_fragment || (ip6->saddr.in6_u.u6_addr32[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000) ||
	    (ip6->saddr.in6_u.u6_addr32[0] | ip6->saddr.in6_u.u6_addr32[1] |
	     ip6->saddr.in6_u.u6_addr32[2] | ip6->saddr.in6_u.u6_addr32[3]) == 0) {
		c->v.result = CT_RESULT_UNTRACKED;
		return 0;
	}
	c->pkt.len = skb->len;
	c->pkt.proto = info->l4_proto;
	__builtin_memcpy(c->k6.saddr, ip6->saddr.in6_u.u6_addr32, 16);
	__builtin_memcpy(c->k6.daddr, ip6->daddr.in6_u.u6_addr32, 16);
	c->k6.proto = info->l4_proto;
	if (info->frag_resolved)
		ct_fragment_ports(info, &c->k6.sport, &c->k6.dport, &c->pkt);
	else
		ret = ct_l4(data, data_end, info->l4_off, info->l4_proto, true,
			    &c->k6.sport, &c->k6.dport, &c->pkt.tcp_flags, &c->pkt.icmp_kind);
	if (ret)
		return ret;
	switch (c->pkt.icmp_kind) {
	case CT_ICMP_ERROR: {
		/* The quoted packet after the 8-byte ICMPv6 header (RFC 4443 3). Deliberately
		 * less than Linux and the model: the quote's extension headers are not walked,
		 * its next header is taken as the protocol, so an error quoting a packet with
		 * extension headers finds no connection (INVALID). Pods' TCP/UDP carry none. */
		__u32 qoff = info->l4_off + 8;
		struct ipv6hdr *q = data + qoff;
		struct ct_key6 qk = {}, rqk;
		__u8 qkind;

		if ((void *)(q + 1) > data_end)
			return DROP_INVALID_PACKET;
		__builtin_memcpy(qk.saddr, q->saddr.in6_u.u6_addr32, 16);
		__builtin_memcpy(qk.daddr, q->daddr.in6_u.u6_addr32, 16);
		qk.proto = q->nexthdr;
		/* As for IPv4: back to the quoted packet's sender only. */
		if (!ipv6_equal(qk.saddr, c->k6.daddr)) {
			c->v.result = CT_RESULT_INVALID;
			return 0;
		}
		ret = ct_l4(data, data_end, qoff + sizeof(*q), q->nexthdr, true, &qk.sport, &qk.dport, NULL, &qkind);
		if (ret)
			return ret;
		if (!ct_quote_usable(qkind)) {
			c->v.result = CT_RESULT_INVALID;
			return 0;
		}
		ct_reverse6(&rqk, &qk);
		c->v.result = ct_related(&ct6, &qk, &rqk);
		return 0;
	}
	case CT_ICMP_UNTRACKED:
		c->v.result = CT_RESULT_UNTRACKED;
		return 0;
	case CT_ICMP_OTHER:
		c->v.result = CT_RESULT_INVALID;
		return 0;
	}
	ct_reverse6(&rk, &c->k6);
	ct_lookup(&ct6, &c->k6, &rk, &c->pkt, &c->v);
	return 0;
}

/* After ct_ipv4/ct_ipv6 (and, later, policy): a NEW connection gets its entry. Returns 0
 * or the drop reason. */
static __always_inline int ct_commit(const struct packet_info *info, const struct ct_ctx *c,
				     __u8 origin, __u32 identity)
{
	if (c->v.result != CT_RESULT_NEW)
		return 0;
	if (info->l3 == 4)
		return ct_create(&ct4, &c->k4, &c->pkt, c->v.state, origin, identity);
	return ct_create(&ct6, &c->k6, &c->pkt, c->v.state, origin, identity);
}

#endif /* MEMBRANE_CONNTRACK_H */
