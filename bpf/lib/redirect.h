/* Delivery to a pod on this node without the node's IP stack: the routing hop done in BPF
 * (RFC 1812 5.3.1 / RFC 8200 3: decrement TTL or hop limit), the Ethernet header rewritten
 * as the destination's gateway would write it, then bpf_redirect_peer(), which hands the
 * packet straight to the ingress of the destination veth's peer inside the pod's namespace
 * (net/core/filter.c skb_do_redirect with BPF_F_PEER; Linux 5.10). The host veth's transmit
 * path and a second pass through the node's stack are skipped. */
#ifndef MEMBRANE_REDIRECT_H
#define MEMBRANE_REDIRECT_H

#include "common.h"
#include "drop_reasons.h"
#include "endpoint.h"
#include "ipv4.h"
#include "ipv6.h"
#include "parse.h"

/* Prepares a packet for delivery to dst: decrements the TTL (IPv4, with the RFC 1624
 * incremental checksum update in ipv4_dec_ttl) or the hop limit (IPv6: no header checksum),
 * then writes dst's MAC as the destination and dst's host-side MAC as the source. The MACs
 * must be right before the redirect: pkt_type is not recomputed on the peer's ingress, and
 * the pod's stack only takes frames addressed to it.
 * Returns 0 when the packet is ready for redirect_to_endpoint, DROP_TTL_EXCEEDED when the
 * hop would expire it (nothing changed: the caller hands it to the node's stack, which
 * answers with ICMP Time Exceeded as a router must), or another drop reason. */
static __always_inline int endpoint_rewrite(struct __sk_buff *skb, const struct packet_info *info,
					    const struct endpoint_info *dst)
{
	__u8 macs[2 * ETH_ALEN];
	int ret;

	if (info->l3 == 4)
		ret = ipv4_dec_ttl(skb, info->l3_off);
	else if (info->l3 == 6)
		ret = ipv6_dec_hoplimit(skb, info->l3_off);
	else
		ret = DROP_INVALID_PACKET;
	if (ret)
		return ret;

	/* h_dest then h_source: one store for both (struct ethhdr, include/uapi/linux/if_ether.h). */
	__builtin_memcpy(macs, dst->mac, ETH_ALEN);
	__builtin_memcpy(macs + ETH_ALEN, dst->host_mac, ETH_ALEN);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return DROP_INVALID_PACKET;
	return 0;
}

/* Hands the rewritten packet to dst's pod. Returns TC_ACT_REDIRECT (or TC_ACT_SHOT for a
 * bad ifindex, which cannot happen with flags 0 and a present entry). */
static __always_inline int redirect_to_endpoint(const struct endpoint_info *dst)
{
	return bpf_redirect_peer(dst->ifindex, 0);
}

#endif /* MEMBRANE_REDIRECT_H */
