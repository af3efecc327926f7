/* Network policy in the datapath (DESIGN.md "Traffic from a pod", steps 5 and 6).
 *
 * The agent resolves CiliumNetworkPolicy / NetworkPolicy rules against identities into
 * entries {endpoint, peer identity, direction, protocol, port range} -> allow | deny and
 * writes them into two LPM tries, one for allow entries and one for deny entries. A port
 * range becomes prefixes over the 16 port bits, "any port" is a prefix that stops after the
 * protocol, "any protocol" one that stops before it, and "any peer" is the peer identity 0
 * (looked up second). Keeping deny entries in a map of their own makes "deny beats allow"
 * independent of how specific each entry is: any deny that matches wins.
 *
 * Only the first packet of a connection is judged (conntrack NEW); established and reply
 * packets, and ICMP errors RELATED to a connection, are not looked at again. An endpoint
 * that no rule selects for a direction is unrestricted in that direction; once a rule
 * selects it (ENDPOINT_F_*_POLICY, set by the agent), the direction is default-deny.
 *
 * The peer's identity: a local endpoint's own (endpoint map), else the ipcache (an LPM trie
 * of CIDR -> identity the agent fills for the node's addresses and CIDR rules), else world. */
#ifndef MEMBRANE_POLICY_H
#define MEMBRANE_POLICY_H

#include "common.h"
#include "drop_reasons.h"
#include "endpoint.h"
#include "events.h"
#include "parse.h"

/* The reserved identities (DESIGN.md "Identities"; Cilium's numbers). */
enum reserved_identity {
	IDENTITY_UNKNOWN = 0, /* also: "any peer" in a policy key */
	IDENTITY_HOST = 1,
	IDENTITY_WORLD = 2,
	IDENTITY_UNMANAGED = 3,
	IDENTITY_HEALTH = 4,
	IDENTITY_INIT = 5,
	IDENTITY_REMOTE_NODE = 6,
};
BTF_ANCHOR_ENUM(reserved_identity);

enum policy_dir {
	POLICY_INGRESS = 1, /* traffic into the endpoint */
	POLICY_EGRESS = 2,  /* traffic out of it */
};
BTF_ANCHOR_ENUM(policy_dir);

/* LPM key: prefixlen counts the bits of the fields below, in order, that must match.
 * endpoint, identity and direction always match (POLICY_PREFIX_ANY_PROTO bits); then the
 * protocol (8 more); then the port's leading bits (up to 16 more), network byte order so that
 * a prefix of the bytes is a prefix of the number. For ICMP the port is the ICMP type. */
struct policy_key {
	__u32 prefixlen;
	__u32 endpoint;  /* the endpoint's host-side veth ifindex */
	__u32 identity;  /* the peer's identity; 0 = any peer */
	__u8 direction;  /* enum policy_dir */
	__u8 protocol;   /* IPPROTO_* */
	__be16 dport;
};

enum policy_prefix {
	POLICY_PREFIX_ANY_PROTO = 72, /* endpoint + identity + direction */
	POLICY_PREFIX_ANY_PORT = 80,  /* ... + protocol */
	POLICY_PREFIX_FULL = 96,      /* ... + all 16 port bits */
};
BTF_ANCHOR_ENUM(policy_prefix);

struct policy_entry {
	__u32 rule; /* the agent's number for the rule that made the entry (in verdict records) */
};

/* Almost every rule names one port, every port of a protocol, or every protocol: those
 * entries live in the policy_exact hash under their policy_key (prefixlen FULL, ANY_PORT or
 * ANY_PROTO, the fields past the prefix zero), one probe each whatever their number. Only a
 * port range that is none of those is cut into prefixes for the policy_allow/policy_deny
 * tries, whose lookups walk deeper as they fill. An exact key holds both verdicts. */
enum policy_exact_flags {
	POLICY_EXACT_ALLOW = 1,
	POLICY_EXACT_DENY = 2,
};
BTF_ANCHOR_ENUM(policy_exact_flags);

struct policy_exact {
	__u32 allow_rule;
	__u32 deny_rule;
	__u32 flags;      /* enum policy_exact_flags */
};

struct ipcache_key {
	__u32 prefixlen; /* 32 (family and padding) + the address prefix */
	__u8 family;     /* 4 or 6 */
	__u8 pad[3];
	__be32 addr[4];  /* IPv4 in addr[0] */
};

struct ipcache_entry {
	__u32 identity;
};

#define POLICY_MAX_ENTRIES 262144 /* per node, all endpoints; allocated as used (BPF_F_NO_PREALLOC) */
#define IPCACHE_MAX_ENTRIES 16384

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
} policy_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
} policy_deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POLICY_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct policy_key);
	__type(value, struct policy_exact);
} policy_exact SEC(".maps");

/* Written by the agent before the entries it speaks of and cleared after they are gone, so
 * that it never says "none" while some exist: with no deny entry on the node the first allow
 * found ends a lookup, and with no range entry the tries are not asked. */
struct policy_config {
	__u32 denies; /* nonzero: some endpoint has deny entries */
	__u32 ranges; /* nonzero: some endpoint has port-range entries in the tries */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct policy_config);
} policy_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, IPCACHE_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_entry);
} ipcache SEC(".maps");

/* What decided a verdict (in verdict records). */
enum policy_match {
	POLICY_MATCH_NONE = 0,       /* the direction is not enforced for the endpoint */
	POLICY_MATCH_PEER = 1,       /* an entry for the peer's identity */
	POLICY_MATCH_ANY_PEER = 2,   /* an entry for any peer */
	POLICY_MATCH_DEFAULT = 3,    /* no entry: the enforced direction's default deny */
};
BTF_ANCHOR_ENUM(policy_match);

/* A policy verdict record (events.h), written for the first packet of every connection an
 * enforced direction judged, allowed or not. Header flags: enum policy_dir. */
struct policy_verdict_event {
	struct event_header header;
	__be16 reason;        /* 0 allowed, else DROP_POLICY_DENIED / DROP_POLICY_DENY */
	__be16 captured;      /* valid bytes in data[] */
	__be32 ifindex;       /* the endpoint's host-side veth */
	__be32 packet_length;
	__be32 peer_identity;
	__be32 rule;          /* the matching entry's rule, 0 for the default */
	__be16 dport;         /* as in the policy key */
	__u8 l4_proto;
	__u8 match;           /* enum policy_match */
	__u8 data[EVENT_CAPTURE_LEN];
};
BTF_ANCHOR(policy_verdict_event);

static __always_inline __u32 ipcache_identity(__u8 family, const __be32 *addr)
{
	struct ipcache_key key = { .prefixlen = 32 + (family == 4 ? 32 : 128), .family = family };
	struct ipcache_entry *e;

	key.addr[0] = addr[0];
	if (family == 6) {
		key.addr[1] = addr[1];
		key.addr[2] = addr[2];
		key.addr[3] = addr[3];
	}
	e = bpf_map_lookup_elem(&ipcache, &key);
	return e ? e->identity : IDENTITY_WORLD;
}

/* The port a policy key holds for a packet: the destination port, the ICMP type for ICMP,
 * and 0 for a packet without an L4 header of its own (a later fragment), which only the
 * entries for any port match. */
static __always_inline __be16 policy_port(const struct packet_info *info)
{
	if (info->later_fragment)
		return 0;
	if (info->l4_proto == IPPROTO_ICMP || info->l4_proto == 58 /* IPPROTO_ICMPV6 */)
		return bpf_htons(bpf_ntohs(info->sport) >> 8); /* parse_l4_ports: sport = type, code */
	return info->dport;
}

struct policy_verdict {
	__u8 reason; /* 0 or the drop reason */
	__u8 match;  /* enum policy_match */
	__u32 rule;
};

/* What the entries for one peer identity say about a packet, the most specific first. */
struct policy_hits {
	__u32 deny_rule;
	__u32 allow_rule;
	bool deny;
	bool allow;
};

static __always_inline void policy_exact_probe(struct policy_key *key, __u32 prefixlen, __u8 proto, __be16 dport,
					       struct policy_hits *h)
{
	struct policy_exact *e;

	key->prefixlen = prefixlen;
	key->protocol = proto;
	key->dport = dport;
	e = bpf_map_lookup_elem(&policy_exact, key);
	if (!e)
		return;
	if ((e->flags & POLICY_EXACT_DENY) && !h->deny) {
		h->deny = true;
		h->deny_rule = e->deny_rule;
	}
	if ((e->flags & POLICY_EXACT_ALLOW) && !h->allow) {
		h->allow = true;
		h->allow_rule = e->allow_rule;
	}
}

static __always_inline void policy_range_probe(void *trie, const struct policy_key *key, bool *hit, __u32 *rule)
{
	struct policy_entry *e;

	if (*hit)
		return;
	e = bpf_map_lookup_elem(trie, key);
	if (e) {
		*hit = true;
		*rule = e->rule;
	}
}

/* The entries for one peer identity, from the most specific on: the exact port, a port range
 * (the tries hold only ranges, all of them narrower than a whole protocol), every port of the
 * protocol, every protocol. Without deny entries on the node the first allow ends it. */
static __always_inline void policy_collect(const struct endpoint_info *ep, __u8 dir, __u32 identity, __u8 proto,
					   __be16 dport, const struct policy_config *cfg, struct policy_hits *h)
{
	struct policy_key key = { .endpoint = ep->ifindex, .identity = identity, .direction = dir };

	policy_exact_probe(&key, POLICY_PREFIX_FULL, proto, dport, h);
	if (!cfg->denies && h->allow)
		return;
	if (cfg->ranges) {
		key.prefixlen = POLICY_PREFIX_FULL;
		if (cfg->denies)
			policy_range_probe(&policy_deny, &key, &h->deny, &h->deny_rule);
		policy_range_probe(&policy_allow, &key, &h->allow, &h->allow_rule);
		if (!cfg->denies && h->allow)
			return;
	}
	policy_exact_probe(&key, POLICY_PREFIX_ANY_PORT, proto, 0, h);
	if (!cfg->denies && h->allow)
		return;
	policy_exact_probe(&key, POLICY_PREFIX_ANY_PROTO, 0, 0, h);
}

/* Judges one direction of an endpoint for a connection's first packet: a deny entry (for the
 * peer, then for any peer) denies, else an allow entry (likewise) allows, else the enforced
 * direction's default denies. */
static __always_inline void policy_judge(const struct endpoint_info *ep, __u8 dir, __u32 peer, __u8 proto,
					 __be16 dport, struct policy_verdict *v)
{
	__u32 flag = dir == POLICY_INGRESS ? ENDPOINT_F_INGRESS_POLICY : ENDPOINT_F_EGRESS_POLICY;
	struct policy_hits mine = {}, any = {};
	struct policy_config all = { .denies = 1, .ranges = 1 }, *cfg;
	__u32 zero = 0;

	v->reason = 0;
	v->match = POLICY_MATCH_NONE;
	v->rule = 0;
	if (!(ep->flags & flag))
		return;
	cfg = bpf_map_lookup_elem(&policy_config, &zero);
	if (!cfg)
		cfg = &all;
	policy_collect(ep, dir, peer, proto, dport, cfg, &mine);
	if (mine.deny) {
		v->reason = DROP_POLICY_DENY;
		v->match = POLICY_MATCH_PEER;
		v->rule = mine.deny_rule;
		return;
	}
	if (!cfg->denies && mine.allow) {
		v->match = POLICY_MATCH_PEER;
		v->rule = mine.allow_rule;
		return;
	}
	policy_collect(ep, dir, IDENTITY_UNKNOWN, proto, dport, cfg, &any);
	if (any.deny) {
		v->reason = DROP_POLICY_DENY;
		v->match = POLICY_MATCH_ANY_PEER;
		v->rule = any.deny_rule;
	} else if (mine.allow) {
		v->match = POLICY_MATCH_PEER;
		v->rule = mine.allow_rule;
	} else if (any.allow) {
		v->match = POLICY_MATCH_ANY_PEER;
		v->rule = any.allow_rule;
	} else {
		v->reason = DROP_POLICY_DENIED;
		v->match = POLICY_MATCH_DEFAULT;
	}
}

/* Judges one direction of endpoint ep for a connection's first packet and writes a verdict
 * record when the direction is enforced; returns 0 or the drop reason. dir_proto is the
 * enum policy_dir in the low byte and the IPPROTO_* above it; dport as in the policy key.
 *
 * A global function (BPF allows five arguments, hence the packing): the verifier checks it
 * once on its own rather than at every call site. Inlined, the outcomes of its four lookups
 * multiplied the paths of the whole program and loading took 1 s instead of 0.2 s. Its
 * arguments are scalars and pointers the verifier lets be NULL, so it checks them. */
__attribute__((noinline)) int policy_check(struct __sk_buff *skb, const struct endpoint_info *ep, __u32 dir_proto,
					   __u32 peer, __u32 dport)
{
	struct policy_verdict v;
	struct policy_verdict_event *e;
	__u8 dir = dir_proto & 0xff, proto = (dir_proto >> 8) & 0xff;
	__u32 cap;

	if (!skb || !ep)
		return 0;
	policy_judge(ep, dir, peer, proto, (__be16)dport, &v);
	if (v.match == POLICY_MATCH_NONE)
		return 0;
	e = event_reserve(sizeof(*e));
	if (!e)
		return v.reason;
	cap = skb->len;
	if (cap > EVENT_CAPTURE_LEN)
		cap = EVENT_CAPTURE_LEN;
	event_header_init(&e->header, EVENT_POLICY_VERDICT, dir, sizeof(*e));
	e->reason = bpf_htons(v.reason);
	e->ifindex = bpf_htonl(ep->ifindex);
	e->packet_length = bpf_htonl(skb->len);
	e->peer_identity = bpf_htonl(peer);
	e->rule = bpf_htonl(v.rule);
	e->dport = (__be16)dport;
	e->l4_proto = proto;
	e->match = v.match;
	__builtin_memset(e->data, 0, sizeof(e->data));
	if (cap > 0 && bpf_skb_load_bytes(skb, 0, e->data, cap) < 0)
		cap = 0;
	e->captured = bpf_htons(cap);
	bpf_ringbuf_submit(e, event_submit_flags());
	return v.reason;
}

/* policy_check for the packet info parses gave. */
static __always_inline int policy_check_packet(struct __sk_buff *skb, const struct endpoint_info *ep, __u8 dir,
					       __u32 peer, const struct packet_info *info)
{
	return policy_check(skb, ep, dir | ((__u32)info->l4_proto << 8), peer, policy_port(info));
}

#endif /* MEMBRANE_POLICY_H */
