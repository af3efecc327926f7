/* Ethernet II parsing (IEEE 802.3 clause 3.2.6) with one optional 802.1Q tag (IEEE 802.1Q 9.3). */
#ifndef MEMBRANE_ETH_H
#define MEMBRANE_ETH_H

#include "common.h"
#include <linux/if_ether.h>

#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif

struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* Parses the Ethernet header at data. On success *l3_off is the offset of the L3 header and
 * *proto its ethertype in network byte order. Returns 0, or a drop reason. */
static __always_inline int parse_eth(void *data, void *data_end, __u32 *l3_off, __be16 *proto)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return DROP_INVALID_PACKET;
	*proto = eth->h_proto;
	*l3_off = sizeof(*eth);
	if (eth->h_proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_tag *tag = (void *)(eth + 1);

		if ((void *)(tag + 1) > data_end)
			return DROP_INVALID_PACKET;
		*proto = tag->encapsulated_proto;
		*l3_off += sizeof(*tag);
	}
	return 0;
}

#endif /* MEMBRANE_ETH_H */
