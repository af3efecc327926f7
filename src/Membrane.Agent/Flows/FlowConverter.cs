using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using Membrane.Api;
using Membrane.Datapath;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;
using Membrane.Policy.Identities;

namespace Membrane.Agent.Flows;

/// <summary>
/// Turns <see cref="FlowRing"/> entries into the API's flows (Hubble's JSON) and monitor records.
/// Which end of a record is which: a drop names the device it happened on (from_pod runs at
/// the host veth's ingress: that pod sent the packet; to_pod at its egress: it was to receive
/// it); a trace carries both ends' identities; a policy verdict names the endpoint whose policy
/// decided and the peer, its direction saying which one sent. Names come from the endpoints
/// the observer looked up when the record arrived and, for other identities, from
/// <paramref name="identityLabels"/>.
/// </summary>
public sealed class FlowConverter(string nodeName, Func<uint, IReadOnlyList<string>?> identityLabels)
{
    private static readonly DissectorOptions s_dissect = new() { AllowTruncated = true, FollowIcmpErrors = false, IncludePayload = false };

    // The upper half of every flow's uuid: this agent run (its start), the lower half the
    // flow's sequence in the buffer. Unique per node, stable across queries.
    private readonly long _run = DateTime.UtcNow.Ticks;

    /// <summary>The flow of a record entry; null for a lost-records notice or an undecodable record.</summary>
    public Flow? ToFlow(in FlowEntry entry, bool includePacket)
    {
        var record = entry.Record.Span;
        if (entry.IsLostNotice || !DatapathEventReader.TryCreate(record, out var reader, out _, out _) ||
            !reader.TryReadCommon(out var c, out _))
        {
            return null;
        }
        var flow = new Flow
        {
            Time = entry.Time,
            Uuid = Uuid(entry.Sequence),
            NodeName = nodeName,
            PacketLength = c.PacketLength,
            Interface = new FlowInterface { Index = c.Ifindex, Name = entry.Local?.HostIfIndex == c.Ifindex ? entry.Local.HostInterface : null },
        };
        var packet = c.Packet;
        Dissect(packet, flow);
        if (includePacket)
        {
            flow.PacketData = packet.ToArray();
        }

        uint sourceIdentity = 0, destinationIdentity = 0;
        EndpointFacts? source = entry.Source, destination = entry.Destination;
        switch (c.Type)
        {
            case EventType.Drop:
                flow.Verdict = FlowNames.Dropped;
                flow.EventType = new FlowEventType { Type = FlowNames.EventDrop, SubType = c.Reason };
                if (c.DropDirection == Direction.Ingress)
                {
                    source ??= entry.Local;
                    flow.TrafficDirection = "EGRESS";
                }
                else if (c.DropDirection == Direction.Egress)
                {
                    destination ??= entry.Local;
                    flow.TrafficDirection = "INGRESS";
                }
                break;
            case EventType.Trace:
                flow.Verdict = FlowNames.Forwarded;
                var point = (TracePoint)c.Flags;
                flow.EventType = new FlowEventType { Type = FlowNames.EventTrace, SubType = c.Flags };
                flow.TraceObservationPoint = point switch
                {
                    TracePoint.ToEndpoint => "TO_ENDPOINT",
                    TracePoint.ToStack => "TO_STACK",
                    _ => "UNKNOWN_POINT",
                };
                flow.IsReply = c.ConntrackResult == (byte)Datapath.Conntrack.CtResult.Reply;
                sourceIdentity = c.Identity1;
                destinationIdentity = c.Identity2OrRule;
                // The packet enters the pod it is delivered to, or leaves the one that sent it;
                // a reply belongs to the connection's direction (as Hubble reports it).
                var ingress = point == TracePoint.ToEndpoint && entry.Local is { } l && (destination is null || destination.Id == l.Id);
                flow.TrafficDirection = (ingress ^ flow.IsReply == true) ? "INGRESS" : "EGRESS";
                break;
            case EventType.PolicyVerdict:
                flow.Verdict = c.Reason == 0 ? FlowNames.Forwarded : FlowNames.Dropped;
                flow.EventType = new FlowEventType { Type = FlowNames.EventPolicyVerdict, SubType = c.Flags };
                flow.PolicyMatchType = ((Datapath.Policy.PolicyMatch)c.PolicyMatch) switch
                {
                    Datapath.Policy.PolicyMatch.Peer => "identity",
                    Datapath.Policy.PolicyMatch.AnyPeer => "any-identity",
                    Datapath.Policy.PolicyMatch.Default => "default-deny",
                    _ => "none",
                };
                if (c.Flags == (byte)Datapath.Policy.PolicyDirection.Egress)
                {
                    source ??= entry.Local;
                    destinationIdentity = c.Identity1;
                    flow.TrafficDirection = "EGRESS";
                }
                else
                {
                    destination ??= entry.Local;
                    sourceIdentity = c.Identity1;
                    flow.TrafficDirection = "INGRESS";
                }
                flow.IsReply = false;
                break;
        }
        if (flow.Verdict == FlowNames.Dropped && c.Reason != 0)
        {
            flow.DropReason = c.Reason;
            flow.DropReasonDesc = DropReasonDesc(c.Reason);
        }
        flow.Source = Endpoint(source, sourceIdentity);
        flow.Destination = Endpoint(destination, destinationIdentity);
        flow.Summary = Summary(flow);
        return flow;
    }

    private string Uuid(long sequence)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(bytes, _run);
        BinaryPrimitives.WriteInt64BigEndian(bytes[8..], sequence);
        return new Guid(bytes, bigEndian: true).ToString();
    }

    /// <summary>The raw record as `membrane monitor` shows it; null for a lost-records notice.</summary>
    public static MonitorRecord? ToMonitorRecord(in FlowEntry entry)
    {
        var record = entry.Record.Span;
        if (entry.IsLostNotice || record.Length < DatapathEventReader.HeaderLength)
        {
            return null;
        }
        var type = record[0] & 0x0f;
        return new MonitorRecord
        {
            Time = entry.Time,
            Type = type,
            TypeName = (EventType)type switch
            {
                EventType.Drop => "drop",
                EventType.Trace => "trace",
                EventType.PolicyVerdict => "policy-verdict",
                _ => "unknown",
            },
            SubType = record[1],
            Length = BinaryPrimitives.ReadUInt16BigEndian(record[2..]),
            Id = BinaryPrimitives.ReadUInt32BigEndian(record[4..]),
            Body = Convert.ToHexStringLower(record[DatapathEventReader.HeaderLength..]),
        };
    }

    /// <summary>Hubble's name for a drop reason where it has one (cilium/api/v1/flow DropReason), ours otherwise.</summary>
    public static string DropReasonDesc(int reason) => reason switch
    {
        (int)DropReason.InvalidPacket => "INVALID_PACKET_DROPPED",
        (int)DropReason.UnsupportedL3 => "UNSUPPORTED_L3_PROTOCOL",
        (int)DropReason.TtlExceeded => "TTL_EXCEEDED",
        (int)DropReason.ExtensionHeaderLimit => "INVALID_IPV6_EXTENSION_HEADER",
        (int)DropReason.ConntrackInvalid => "CT_INVALID",
        (int)DropReason.ConntrackMapFull => "CT_MAP_INSERTION_FAILED",
        (int)DropReason.PolicyDenied => "POLICY_DENIED",
        (int)DropReason.PolicyDeny => "POLICY_DENY",
        (int)EndpointDropReason.SpoofedIp => "INVALID_SOURCE_IP",
        (int)EndpointDropReason.SpoofedMac => "INVALID_SOURCE_MAC",
        (int)EndpointDropReason.UnknownEndpoint => "UNKNOWN_SENDER",
        _ => DatapathReasons.Name(reason).ToUpperInvariant().Replace('-', '_'),
    };

    /// <summary>Labels as Hubble shows them: source:key=value, with k8s: for a key without a source.</summary>
    public static IReadOnlyList<string> DisplayLabels(IReadOnlyList<string> labels) => labels.Select(WithSource).ToArray();

    private static string WithSource(string label)
    {
        var eq = label.IndexOf('=', StringComparison.Ordinal);
        return (eq < 0 ? label : label[..eq]).Contains(':', StringComparison.Ordinal) ? label : "k8s:" + label;
    }

    /// <summary>The packet library's form of an address.</summary>
    public static IpAddress ToPacketAddress(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return written == 4
            ? new IpAddress(Ipv4Address.Read(bytes))
            : new IpAddress(Ipv6Address.Read(bytes));
    }

    private FlowEndpoint? Endpoint(EndpointFacts? facts, uint identity)
    {
        if (facts is not null)
        {
            return new FlowEndpoint
            {
                ID = facts.Id,
                Identity = facts.Identity,
                Namespace = facts.Namespace,
                PodName = facts.PodName,
                Labels = [.. facts.Labels],
            };
        }
        if (identity == 0)
        {
            return null;
        }
        var labels = ReservedIdentities.NameOf(identity) is { } reserved ? ["reserved:" + reserved] : identityLabels(identity) ?? [];
        return new FlowEndpoint { Identity = identity, Labels = [.. labels] };
    }

    // Ethernet, the first IP header and what follows it. The captured bytes end after at most
    // 96 bytes, so lengths beyond them are expected (AllowTruncated).
    private static void Dissect(ReadOnlySpan<byte> packet, Flow flow)
    {
        var dissector = new PacketDissector(packet, LinkType.Ethernet, s_dissect);
        var ip = false;
        while (dissector.TryNext(out var layer))
        {
            switch (layer.Kind)
            {
                case LayerKind.Ethernet when flow.Ethernet is null:
                    var eth = layer.AsEthernet(packet);
                    flow.Ethernet = new FlowEthernet { Source = eth.Source.ToString(), Destination = eth.Destination.ToString() };
                    break;
                case LayerKind.IPv4 when !ip:
                    var v4 = layer.AsIpv4(packet);
                    flow.IP = new FlowIp { Source = v4.Source.ToString(), Destination = v4.Destination.ToString(), IpVersion = "IPv4" };
                    ip = true;
                    break;
                case LayerKind.IPv6 when !ip:
                    var v6 = layer.AsIpv6(packet);
                    flow.IP = new FlowIp { Source = v6.Source.ToString(), Destination = v6.Destination.ToString(), IpVersion = "IPv6" };
                    ip = true;
                    break;
                case LayerKind.Tcp when flow.L4 is null && layer.Length >= 14:
                    var tcp = layer.AsTcp(packet);
                    flow.L4 = new FlowLayer4
                    {
                        TCP = new FlowTcp { SourcePort = tcp.SourcePort, DestinationPort = tcp.DestinationPort, Flags = FlowTcpFlags.FromByte((byte)tcp.Flags) },
                    };
                    return;
                case LayerKind.Udp when flow.L4 is null:
                    var udp = layer.AsUdp(packet);
                    flow.L4 = new FlowLayer4 { UDP = new FlowPorts { SourcePort = udp.SourcePort, DestinationPort = udp.DestinationPort } };
                    return;
                case LayerKind.Icmpv4 when flow.L4 is null:
                    var icmp = layer.AsIcmpv4(packet);
                    flow.L4 = new FlowLayer4 { ICMPv4 = new FlowIcmp { Type = icmp.Type, Code = icmp.Code } };
                    return;
                case LayerKind.Icmpv6 when flow.L4 is null:
                    var icmp6 = layer.AsIcmpv6(packet);
                    flow.L4 = new FlowLayer4 { ICMPv6 = new FlowIcmp { Type = icmp6.Type, Code = icmp6.Code } };
                    return;
            }
        }
    }

    // Hubble's summaries: "TCP Flags: SYN, ACK", "UDP", "ICMPv4 EchoRequest".
    private static string Summary(Flow flow) => flow.L4 switch
    {
        { TCP: { } t } => "TCP Flags: " + string.Join(", ", t.Flags?.Names() ?? []),
        { UDP: not null } => "UDP",
        { ICMPv4: { } i } => "ICMPv4 " + IcmpName(i, v6: false),
        { ICMPv6: { } i } => "ICMPv6 " + IcmpName(i, v6: true),
        _ => flow.IP?.IpVersion ?? (flow.Ethernet is null ? "" : "Ethernet"),
    };

    private static string IcmpName(FlowIcmp icmp, bool v6) => (v6, icmp.Type) switch
    {
        (false, 0) => "EchoReply",
        (false, 3) => "DestinationUnreachable",
        (false, 8) => "EchoRequest",
        (false, 11) => "TimeExceeded",
        (true, 1) => "DestinationUnreachable",
        (true, 2) => "PacketTooBig",
        (true, 3) => "TimeExceeded",
        (true, 128) => "EchoRequest",
        (true, 129) => "EchoReply",
        (true, 135) => "NeighborSolicitation",
        (true, 136) => "NeighborAdvertisement",
        _ => "type " + icmp.Type.ToString(CultureInfo.InvariantCulture) + " code " + icmp.Code.ToString(CultureInfo.InvariantCulture),
    };
}
