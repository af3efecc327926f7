/* ARP for Ethernet/IPv4 (RFC 826). */
#ifndef MEMBRANE_ARP_H
#define MEMBRANE_ARP_H

#include "common.h"
#include <linux/if_ether.h>

/* linux/if_arp.h pulls in libc headers that do not build for -target bpf. */
#define ARP_HRD_ETHER 1 /* ARPHRD_ETHER: hardware type 1, Ethernet (IANA "ARP Parameters") */

/* An Ethernet/IPv4 ARP packet (RFC 826 "Packet format"); the addresses are byte arrays
 * because sender_ip is only 2-byte aligned. */
struct arp_eth_ipv4 {
	__be16 hw_type;
	__be16 proto_type;
	__u8 hw_len;
	__u8 proto_len;
	__be16 op;
	__u8 sender_mac[ETH_ALEN];
	__u8 sender_ip[4];
	__u8 target_mac[ETH_ALEN];
	__u8 target_ip[4];
};

/* Returns the ARP packet at data + off, or NULL when it is short or not Ethernet/IPv4. */
static __always_inline struct arp_eth_ipv4 *parse_arp(void *data, void *data_end, __u32 off)
{
	struct arp_eth_ipv4 *arp = data + off;

	if ((void *)(arp + 1) > data_end)
		return NULL;
	if (arp->hw_type != bpf_htons(ARP_HRD_ETHER) || arp->proto_type != bpf_htons(ETH_P_IP) ||
	    arp->hw_len != ETH_ALEN || arp->proto_len != 4)
		return NULL;
	return arp;
}

#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2

static __always_inline __be32 arp_ipv4(const __u8 *bytes)
{
	__be32 v;

	__builtin_memcpy(&v, bytes, sizeof(v));
	return v;
}

/* Turns the request at data + off into its reply, in place (RFC 826 "Packet Reception":
 * swap sender and target, fill in our hardware address, set the opcode to reply) and
 * readdresses the Ethernet header from host_mac to the requester. The frame keeps its
 * length and has no checksum, so nothing else changes. The caller sends it back out of the
 * device it came from with bpf_redirect(). */
static __always_inline void arp_reply_in_place(struct ethhdr *eth, struct arp_eth_ipv4 *arp, const __u8 *host_mac)
{
	__u8 requested_ip[4];

	__builtin_memcpy(requested_ip, arp->target_ip, 4);
	arp->op = bpf_htons(ARP_OP_REPLY);
	__builtin_memcpy(arp->target_mac, arp->sender_mac, ETH_ALEN);
	__builtin_memcpy(arp->target_ip, arp->sender_ip, 4);
	__builtin_memcpy(arp->sender_mac, host_mac, ETH_ALEN);
	__builtin_memcpy(arp->sender_ip, requested_ip, 4);
	__builtin_memcpy(eth->h_dest, arp->target_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, host_mac, ETH_ALEN);
}

#endif /* MEMBRANE_ARP_H */
