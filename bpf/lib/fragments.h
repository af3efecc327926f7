/* IP fragments: only a datagram's first fragment carries its L4 header, so the others could
 * not be matched to a connection or a port-specific policy entry. The first fragment's ports
 * are remembered under what all fragments of the datagram share (RFC 791 3.2: source,
 * destination, protocol, identification; RFC 8200 4.5 likewise with the Fragment header's
 * 32-bit identification), and a later fragment takes them from there: it is then conntracked
 * and judged as a packet of its datagram's connection (Cilium's ipv4_frag_datagrams map does
 * the same). A later fragment whose first one was not seen keeps no ports and is judged as
 * the policy says for an unknown port (policy.h policy_port). Entries are not deleted when a
 * datagram is complete (fragments may come out of order or twice); the LRU map ages them out. */
#ifndef MEMBRANE_FRAGMENTS_H
#define MEMBRANE_FRAGMENTS_H

#include "common.h"
#include "parse.h"
#include <linux/in.h>

struct frag_key {
	__be32 saddr[4]; /* IPv4 in saddr[0] */
	__be32 daddr[4];
	__be32 id;       /* identification as on the wire (IPv4: its 16 bits in the first half) */
	__u8 proto;
	__u8 family;     /* 4 or 6 */
	__u16 pad;
};

struct frag_ports {
	__be16 sport;
	__be16 dport;
};

#define FRAG_MAX_ENTRIES 8192

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FRAG_MAX_ENTRIES);
	__type(key, struct frag_key);
	__type(value, struct frag_ports);
} frags SEC(".maps");


/* Remembers a first fragment's ports, or gives a later fragment those of its first one. */
static __always_inline void fragments_track(struct __sk_buff *skb, struct packet_info *info)
{
	struct frag_key key = {};
	struct frag_ports ports, *known;

	if (!info->first_fragment && !info->later_fragment)
		return;
	if (info->l4_proto != IPPROTO_TCP && info->l4_proto != IPPROTO_UDP && info->l4_proto != IPPROTO_SCTP)
		return;
	key.proto = info->l4_proto;
	key.family = info->l3;
	key.id = info->frag_id;
	/* Source and destination are adjacent in both headers: IPv4 at 12 (RFC 791 3.1), IPv6 at 8. */
	if (info->l3 == 4) {
		if (bpf_skb_load_bytes(skb, info->l3_off + 12, key.saddr, 4) < 0 ||
		    bpf_skb_load_bytes(skb, info->l3_off + 16, key.daddr, 4) < 0)
			return;
	} else if (bpf_skb_load_bytes(skb, info->l3_off + 8, key.saddr, 16) < 0 ||
		   bpf_skb_load_bytes(skb, info->l3_off + 24, key.daddr, 16) < 0) {
		return;
	}
	if (info->first_fragment) {
		ports.sport = info->sport;
		ports.dport = info->dport;
		bpf_map_update_elem(&frags, &key, &ports, BPF_ANY);
		return;
	}
	known = bpf_map_lookup_elem(&frags, &key);
	if (!known)
		return;
	info->sport = known->sport;
	info->dport = known->dport;
	info->later_fragment = false;
	info->frag_resolved = true;
}

#endif /* MEMBRANE_FRAGMENTS_H */
