/* IPv4 header parsing (RFC 791 3.1) and the TTL decrement of a forwarding hop (RFC 1812 5.3.1). */
#ifndef MEMBRANE_IPV4_H
#define MEMBRANE_IPV4_H

#include "common.h"
#include "drop_reasons.h"
#include <linux/ip.h>
#include <stddef.h>

#define IPV4_FRAG_OFFSET_MASK 0x1fff
#define IPV4_MORE_FRAGMENTS 0x2000

/* Validates the IPv4 header at data + off. Sets *l4_off (after options), *l4_proto,
 * *later_fragment for a non-first fragment (its L4 ports are not in this packet),
 * *first_fragment for offset 0 with more fragments to come, and *frag_id (RFC 791:
 * fragments of one datagram share source, destination, protocol and identification). */
static __always_inline int parse_ipv4(void *data, void *data_end, __u32 off,
				      __u32 *l4_off, __u8 *l4_proto, bool *later_fragment,
				      bool *first_fragment, __be32 *frag_id)
{
	struct iphdr *ip = data + off;
	__u32 ihl_bytes;

	if ((void *)(ip + 1) > data_end)
		return DROP_INVALID_PACKET;
	if (ip->version != 4 || ip->ihl < 5)
		return DROP_INVALID_PACKET;
	ihl_bytes = ip->ihl * 4;
	if (data + off + ihl_bytes > data_end)
		return DROP_INVALID_PACKET;
	*l4_off = off + ihl_bytes;
	*l4_proto = ip->protocol;
	*later_fragment = (ip->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK)) != 0;
	*first_fragment = !*later_fragment && (ip->frag_off & bpf_htons(IPV4_MORE_FRAGMENTS));
	*frag_id = ip->id;
	return 0;
}

/* Decrements the TTL and patches the header checksum incrementally (RFC 1624 eqn. 3) with
 * bpf_l3_csum_replace; the TTL shares a 16-bit word with the protocol field. */
static __always_inline int ipv4_dec_ttl(struct __sk_buff *skb, __u32 ip_off)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ip_off;
	__be16 old_word, new_word;

	if ((void *)(ip + 1) > data_end)
		return DROP_INVALID_PACKET;
	if (ip->ttl <= 1)
		return DROP_TTL_EXCEEDED;
	old_word = *(__be16 *)&ip->ttl;
	ip->ttl--;
	new_word = *(__be16 *)&ip->ttl;
	if (bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), old_word, new_word, 2) < 0)
		return DROP_INVALID_PACKET;
	return 0;
}

#endif /* MEMBRANE_IPV4_H */
