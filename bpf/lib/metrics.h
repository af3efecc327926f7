/* Accounting of every verdict an endpoint program reaches: the per-CPU packet/byte counters
 * of maps.h (keyed by {reason, direction, l4 protocol, l3}; reason 0 = forwarded), and for
 * drops also a ring-buffer record (events.h: seed-frame header + struct drop_event) so that
 * the agent's observer can show which packet was dropped and why. */
#ifndef MEMBRANE_METRICS_H
#define MEMBRANE_METRICS_H

#include "common.h"
#include "drop_reasons.h"
#include "events.h"
#include "maps.h"
#include "parse.h"

/* Counts a packet that goes on (to a local pod or to the node's stack) and returns verdict. */
static __always_inline int account_forward(struct __sk_buff *skb, const struct packet_info *info, __u8 dir, int verdict)
{
	metrics_count(REASON_FORWARDED, dir, info->l3, info->l4_proto, skb->len);
	return verdict;
}

/* Counts a drop, writes its record, and returns TC_ACT_SHOT. */
static __always_inline int account_drop(struct __sk_buff *skb, const struct packet_info *info, __u8 dir, __u8 reason)
{
	metrics_count(reason, dir, info->l3, info->l4_proto, skb->len);
	emit_drop_event(skb, reason, dir, info->l4_proto);
	return TC_ACT_SHOT;
}

#endif /* MEMBRANE_METRICS_H */
