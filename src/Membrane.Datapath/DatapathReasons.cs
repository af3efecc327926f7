using Membrane.Linux.Bpf.Datapath;

namespace Membrane.Datapath;

/// <summary>
/// Names of the reason numbers the datapath puts into the metrics key and drop records: the
/// shared ones of bpf/lib/drop_reasons.h (<see cref="DropReason"/>, 0..63) and the endpoint
/// programs' own (<see cref="EndpointDropReason"/>, 64..95).
/// </summary>
public static class DatapathReasons
{
    /// <summary>A stable, lower-case name for <paramref name="reason"/> (as the CLI and metrics show it).</summary>
    public static string Name(int reason) => reason switch
    {
        (int)DropReason.Forwarded => "forwarded",
        (int)DropReason.InvalidPacket => "invalid-packet",
        (int)DropReason.UnsupportedL3 => "unsupported-l3",
        (int)DropReason.Policy => "verdict-map-drop",
        (int)DropReason.TtlExceeded => "ttl-exceeded",
        (int)DropReason.ExtensionHeaderLimit => "ipv6-extension-header-limit",
        (int)DropReason.ConntrackInvalid => "ct-invalid",
        (int)DropReason.ConntrackMapFull => "ct-map-full",
        (int)DropReason.PolicyDenied => "policy-denied",
        (int)DropReason.PolicyDeny => "policy-deny",
        (int)EndpointDropReason.SpoofedIp => "spoofed-source-ip",
        (int)EndpointDropReason.SpoofedMac => "spoofed-source-mac",
        (int)EndpointDropReason.UnknownEndpoint => "unknown-endpoint",
        _ => "reason-" + reason.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>True for every reason but 0 (forwarded).</summary>
    public static bool IsDrop(int reason) => reason != (int)DropReason.Forwarded;
}

/// <summary>One line of the metrics map summed over every CPU.</summary>
/// <param name="Reason">The reason number (0: forwarded).</param>
/// <param name="Direction">The hook's direction (from_pod runs at the host veth's ingress).</param>
/// <param name="L3">4, 6, or 0 for non-IP (and in <see cref="Datapath.ReadMetricsByReason"/>'s sums).</param>
/// <param name="L4Protocol">IPPROTO_*, or 0 (likewise).</param>
/// <param name="Packets">Packets counted.</param>
/// <param name="Bytes">Bytes counted (skb->len: Ethernet header included).</param>
public readonly record struct DatapathMetric(int Reason, Direction Direction, byte L3, byte L4Protocol, ulong Packets, ulong Bytes)
{
    /// <summary>The reason's name (<see cref="DatapathReasons.Name"/>).</summary>
    public string ReasonName => DatapathReasons.Name(Reason);
}

/// <summary>A drop record of the event ring buffer, decoded and copied (safe to keep).</summary>
/// <param name="Id">The record id from the seed-frame header (CPU in the top byte, sequence below).</param>
/// <param name="Reason">Why the packet was dropped.</param>
/// <param name="Ifindex">The device the program ran on (in the node's namespace).</param>
/// <param name="Direction">The hook's direction.</param>
/// <param name="L4Protocol">IPPROTO_*, or 0 when the packet was not parsed that far.</param>
/// <param name="PacketLength">The whole packet's length.</param>
/// <param name="Packet">The packet's first bytes (at most 96).</param>
public sealed record DatapathDrop(uint Id, int Reason, int Ifindex, Direction Direction, byte L4Protocol, int PacketLength, byte[] Packet)
{
    /// <summary>The reason's name.</summary>
    public string ReasonName => DatapathReasons.Name(Reason);

    /// <summary>
    /// Decodes one ring-buffer record. Never throws: a record that is not a well-formed drop
    /// record gives false with the reader's error and the byte offset where it is.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> record, out DatapathDrop? drop, out EventReadError error, out int offset)
    {
        drop = null;
        if (!DatapathEventReader.TryCreate(record, out var reader, out error, out offset))
        {
            return false;
        }
        if (reader.Type != EventType.Drop)
        {
            error = EventReadError.WrongType;
            offset = 0;
            return false;
        }
        if (!reader.TryReadCommon(out var view, out error))
        {
            offset = reader.Length;
            return false;
        }
        drop = new DatapathDrop(reader.Id, view.Reason, view.Ifindex, view.DropDirection, view.L4Protocol, view.PacketLength, view.Packet.ToArray());
        return true;
    }
}
