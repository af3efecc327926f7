/* The common front of every program: Ethernet, IPv4/IPv6 and L4 ports in one pass. */
#ifndef MEMBRANE_PARSE_H
#define MEMBRANE_PARSE_H

#include "common.h"
#include "drop_reasons.h"
#include "eth.h"
#include "ipv4.h"
#include "ipv6.h"
#include "l4.h"

struct packet_info {
	__u32 l3_off;
	__u32 l4_off;
	__be16 ethertype;
	__u8 l3;        /* 4, 6, or 0 when not IP */
	__u8 l4_proto;
	__be16 sport;
	__be16 dport;
	bool later_fragment;  /* a fragment after the first: no L4 header (unless frag_resolved) */
	bool first_fragment;  /* offset 0, more to come: its ports are remembered (fragments.h) */
	bool frag_resolved;   /* a later fragment whose ports its first fragment left: sport/dport are set */
	__be32 frag_id;       /* the datagram's identification (IPv4 16 bits, IPv6 32) */
};

/* Returns 0 (info filled; l3 == 0 for non-IP frames such as ARP) or a drop reason. */
static __always_inline int parse_packet(struct __sk_buff *skb, struct packet_info *info)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	int ret;

	__builtin_memset(info, 0, sizeof(*info));
	ret = parse_eth(data, data_end, &info->l3_off, &info->ethertype);
	if (ret)
		return ret;
	if (info->ethertype == bpf_htons(ETH_P_IP)) {
		info->l3 = 4;
		ret = parse_ipv4(data, data_end, info->l3_off, &info->l4_off, &info->l4_proto, &info->later_fragment,
				 &info->first_fragment, &info->frag_id);
	} else if (info->ethertype == bpf_htons(ETH_P_IPV6)) {
		info->l3 = 6;
		ret = parse_ipv6(data, data_end, info->l3_off, &info->l4_off, &info->l4_proto, &info->later_fragment,
				 &info->first_fragment, &info->frag_id);
	} else {
		return 0;
	}
	if (ret)
		return ret;
	if (info->later_fragment)
		return 0;
	return parse_l4_ports(data, data_end, info->l4_off, info->l4_proto, &info->sport, &info->dport);
}

#endif /* MEMBRANE_PARSE_H */
