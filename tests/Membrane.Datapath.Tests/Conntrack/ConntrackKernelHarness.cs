using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using Membrane.Datapath.Conntrack;
using Membrane.Packets;

namespace Membrane.Datapath.Tests.Conntrack;

/// <summary>
/// Drives the kernel's conntrack with BPF_PROG_TEST_RUN: a pod P (the endpoint on loopback,
/// ifindex 1, where a test run's packet arrives) talks to a peer X outside the node. What P
/// sends runs through from_pod (to the stack), what X sends runs through to_pod. Frames
/// come from Membrane.Packets' builder; tables are read back from the pinned maps.
/// </summary>
internal sealed class ConntrackKernelHarness : IDisposable
{
    public const uint TcActOk = DatapathObjects.TcActOk;
    public const uint TcActShot = DatapathObjects.TcActShot;

    public static readonly MacAddress PodMac = MacAddress.Parse("02:00:00:00:00:10");
    public static readonly MacAddress HostMac = MacAddress.Parse("02:00:00:00:01:10");
    public static readonly Ipv4Address Pod4 = Ipv4Address.Parse("198.18.0.10");
    public static readonly Ipv4Address Peer4 = Ipv4Address.Parse("198.19.7.7");
    public static readonly Ipv4Address Router4 = Ipv4Address.Parse("198.19.0.1");
    public static readonly Ipv6Address Pod6 = Ipv6Address.Parse("fd00:198:18::10");
    public static readonly Ipv6Address Peer6 = Ipv6Address.Parse("fd00:198:18:7::7");
    public static readonly Ipv6Address Router6 = Ipv6Address.Parse("fd00:198:18:7::1");

    private const int LoopbackIfindex = 1;
    private readonly DatapathTestScope _scope;

    public ConntrackKernelHarness(Func<DatapathOptions, DatapathOptions>? configure = null)
    {
        _scope = new DatapathTestScope();
        Datapath = Datapath.Open(configure is null ? _scope.Options : configure(_scope.Options));
        Datapath.UpsertEndpoint(new EndpointEntry(LoopbackIfindex, IPAddress.Parse(Pod4.ToString()), IPAddress.Parse(Pod6.ToString()),
            PhysicalAddress.Parse(PodMac.ToString()), PhysicalAddress.Parse(HostMac.ToString()), 300));
    }

    public Datapath Datapath { get; }

    /// <summary>CLOCK_MONOTONIC in whole seconds, the datapath's clock (Stopwatch is CLOCK_MONOTONIC on Linux).</summary>
    public static ulong Now => (ulong)(Stopwatch.GetTimestamp() / Stopwatch.Frequency);

    /// <summary>Runs <paramref name="frame"/> through from_pod (sent by the pod) or to_pod (sent toward it); the tc verdict.</summary>
    public uint Run(byte[] frame, bool fromPod)
    {
        var program = fromPod ? Datapath.Program : Datapath.ToPodProgram;
        var output = new byte[frame.Length + 64];
        return program.TestRun(frame, output).ReturnValue;
    }

    /// <summary>Empties both tables.</summary>
    public void Flush()
    {
        foreach (var key in Datapath.Conntrack4.Keys.ToArray())
        {
            Datapath.Conntrack4.Delete(key);
        }
        foreach (var key in Datapath.Conntrack6.Keys.ToArray())
        {
            Datapath.Conntrack6.Delete(key);
        }
    }

    /// <summary>Both tables as comparable rows.</summary>
    public IReadOnlyList<CtRow> Table()
    {
        var rows = new List<CtRow>();
        foreach (var key in Datapath.Conntrack4.Keys.ToArray())
        {
            if (Datapath.Conntrack4.TryLookup(key, out var e))
            {
                var tuple = new CtTuple(V4(key.SourceAddress), V4(key.DestinationAddress), key.SourcePort, key.DestinationPort, key.Protocol);
                rows.Add(CtRow.From(tuple, e));
            }
        }
        foreach (var key in Datapath.Conntrack6.Keys.ToArray())
        {
            if (Datapath.Conntrack6.TryLookup(key, out var e))
            {
                var tuple = new CtTuple(V6(key.SourceAddress), V6(key.DestinationAddress), key.SourcePort, key.DestinationPort, key.Protocol);
                rows.Add(CtRow.From(tuple, e));
            }
        }
        return rows.OrderBy(r => r.Key.ToString(), StringComparer.Ordinal).ToArray();
    }

    private static IpAddress V4(uint wire) => new(new Ipv4Address(BinaryPrimitives.ReverseEndianness(wire)));

    private static IpAddress V6(Bytes16 wire)
    {
        ReadOnlySpan<byte> b = wire;
        return new(new Ipv6Address(BinaryPrimitives.ReadUInt64BigEndian(b), BinaryPrimitives.ReadUInt64BigEndian(b[8..])));
    }

    public void Dispose()
    {
        Datapath.Dispose();
        _scope.Dispose();
    }

    // --- frames: family 4 or 6; "fromPod" picks P -> X or X -> P ---

    public static byte[] Tcp(int family, bool fromPod, ushort podPort, ushort peerPort, TcpFlags flags, int payload = 0)
    {
        var buffer = new byte[2048];
        var b = new PacketBuilder(buffer);
        Head(ref b, family, fromPod);
        b.Tcp(fromPod ? podPort : peerPort, fromPod ? peerPort : podPort, sequenceNumber: 1000,
            acknowledgmentNumber: (flags & TcpFlags.Ack) != 0 ? 2000u : 0u, flags: flags);
        b.Payload(payload, 0x5a);
        return buffer[..b.Finish()];
    }

    public static byte[] Udp(int family, bool fromPod, ushort podPort, ushort peerPort, int payload = 12)
    {
        var buffer = new byte[2048];
        var b = new PacketBuilder(buffer);
        Head(ref b, family, fromPod);
        b.Udp(fromPod ? podPort : peerPort, fromPod ? peerPort : podPort);
        b.Payload(payload, 0x33);
        return buffer[..b.Finish()];
    }

    public static byte[] Echo(int family, bool fromPod, bool request, ushort identifier)
    {
        var buffer = new byte[2048];
        var b = new PacketBuilder(buffer);
        Head(ref b, family, fromPod);
        if (family == 4)
        {
            b.Icmpv4Echo(request, identifier, 1);
        }
        else
        {
            b.Icmpv6Echo(request, identifier, 1);
        }
        b.Payload(16, 0x11);
        return buffer[..b.Finish()];
    }

    /// <summary>A protocol without ports (GRE, 47).</summary>
    public static byte[] Gre(int family, bool fromPod)
    {
        var buffer = new byte[2048];
        var b = new PacketBuilder(buffer);
        Head(ref b, family, fromPod, protocol: 47);
        b.Payload(8, 0);
        return buffer[..b.Finish()];
    }

    /// <summary>
    /// An ICMP error (destination unreachable, port unreachable) quoting a UDP packet of the
    /// other direction. Toward the pod (fromPod false, through to_pod) it comes from a router
    /// and quotes pod -> peer; from the pod it goes to the peer and quotes peer -> pod.
    /// </summary>
    public static byte[] UdpUnreachable(int family, bool fromPod, ushort podPort, ushort peerPort)
    {
        var buffer = new byte[2048];
        var b = new PacketBuilder(buffer);
        b.Ethernet(fromPod ? HostMac : PodMac, fromPod ? PodMac : HostMac);
        if (family == 4)
        {
            b.Ipv4(fromPod ? Pod4 : Router4, fromPod ? Peer4 : Pod4);
            b.Icmpv4(3, 3);
            b.Ipv4(fromPod ? Peer4 : Pod4, fromPod ? Pod4 : Peer4);
        }
        else
        {
            b.Ipv6(fromPod ? Pod6 : Router6, fromPod ? Peer6 : Pod6);
            b.Icmpv6(1, 4);
            b.Ipv6(fromPod ? Peer6 : Pod6, fromPod ? Pod6 : Peer6);
        }
        b.Udp(fromPod ? peerPort : podPort, fromPod ? podPort : peerPort);
        b.Payload(8, 0x33);
        return buffer[..b.Finish()];
    }

    /// <summary>
    /// An ICMP error toward the pod from the router whose quote is not a usable first
    /// fragment of a connection: "error" quotes an ICMP error sent by the pod, "echo" quotes
    /// the pod's echo request (identifier 77), "fragment" (IPv4) a later fragment.
    /// </summary>
    public static byte[] ErrorQuoting(int family, string quote)
    {
        var buffer = new byte[2048];
        var b = new PacketBuilder(buffer);
        b.Ethernet(PodMac, HostMac);
        if (family == 4)
        {
            b.Ipv4(Router4, Pod4);
            b.Icmpv4(11, 0);
            b.Ipv4(Pod4, Peer4, fragmentOffset: quote == "fragment" ? (ushort)185 : (ushort)0, protocol: quote == "fragment" ? IpProtocols.Udp : null);
            switch (quote)
            {
                case "error":
                    b.Icmpv4(3, 1);
                    break;
                case "echo":
                    b.Icmpv4Echo(true, 77, 1);
                    break;
            }
        }
        else
        {
            b.Ipv6(Router6, Pod6);
            b.Icmpv6(3, 0);
            b.Ipv6(Pod6, Peer6);
            switch (quote)
            {
                case "error":
                    b.Icmpv6(1, 3);
                    break;
                case "echo":
                    b.Icmpv6Echo(true, 77, 1);
                    break;
            }
        }
        b.Payload(8, 0x22);
        return buffer[..b.Finish()];
    }

    /// <summary>The other family's ICMP as the payload protocol (ICMPv6 in IPv4, ICMP in IPv6): an ordinary protocol there.</summary>
    public static byte[] ForeignIcmp(int family, bool fromPod)
    {
        var buffer = new byte[512];
        var b = new PacketBuilder(buffer);
        Head(ref b, family, fromPod, protocol: family == 4 ? IpProtocols.Icmpv6 : IpProtocols.Icmp);
        b.Payload(8, 0);
        return buffer[..b.Finish()];
    }

    /// <summary>A TCP segment cut inside its header (after 14 bytes): malformed.</summary>
    public static byte[] TruncatedTcp(int family, bool fromPod)
    {
        var whole = Tcp(family, fromPod, 40000, 80, TcpFlags.Syn);
        return whole[..(whole.Length - 6)];
    }

    /// <summary>
    /// An ICMP error from the pod to the peer about the pod's own UDP packet to the peer: not
    /// addressed to the sender of the packet it quotes (what a pod could use to wrap data in
    /// "errors" about a connection it knows).
    /// </summary>
    public static byte[] MisaddressedUnreachable(int family, ushort podPort, ushort peerPort)
    {
        var buffer = new byte[512];
        var b = new PacketBuilder(buffer);
        b.Ethernet(HostMac, PodMac);
        if (family == 4)
        {
            b.Ipv4(Pod4, Peer4);
            b.Icmpv4(3, 3);
            b.Ipv4(Pod4, Peer4);
        }
        else
        {
            b.Ipv6(Pod6, Peer6);
            b.Icmpv6(1, 4);
            b.Ipv6(Pod6, Peer6);
        }
        b.Udp(podPort, peerPort);
        b.Payload(64, 0x77);
        return buffer[..b.Finish()];
    }

    /// <summary>A non-first IPv4 fragment (no L4 header) of a UDP datagram.</summary>
    public static byte[] LaterFragment4(bool fromPod)
    {
        var buffer = new byte[256];
        var b = new PacketBuilder(buffer);
        b.Ethernet(fromPod ? HostMac : PodMac, fromPod ? PodMac : HostMac);
        b.Ipv4(fromPod ? Pod4 : Peer4, fromPod ? Peer4 : Pod4, fragmentOffset: 185, protocol: IpProtocols.Udp);
        b.Payload(40, 0x44);
        return buffer[..b.Finish()];
    }

    private static void Head(ref PacketBuilder b, int family, bool fromPod, byte? protocol = null)
    {
        b.Ethernet(fromPod ? HostMac : PodMac, fromPod ? PodMac : HostMac);
        if (family == 4)
        {
            b.Ipv4(fromPod ? Pod4 : Peer4, fromPod ? Peer4 : Pod4, protocol: protocol);
        }
        else
        {
            b.Ipv6(fromPod ? Pod6 : Peer6, fromPod ? Peer6 : Pod6, nextHeader: protocol);
        }
    }
}

/// <summary>One conntrack entry in a form both the kernel's table and the model's give: what the differential test compares.</summary>
internal readonly record struct CtRow(CtTuple Key, CtState State, ulong PacketsOriginal, ulong BytesOriginal, byte TcpFlagsOriginal,
    ulong PacketsReply, ulong BytesReply, byte TcpFlagsReply, bool ReplySeen, ulong LifetimeAfterLastPacket)
{
    public static CtRow From(CtTuple key, in CtEntry e) => new(key, e.State, e.PacketsOriginal, e.BytesOriginal, e.TcpFlagsOriginal,
        e.PacketsReply, e.BytesReply, e.TcpFlagsReply, (e.Flags & CtEntryFlags.ReplySeen) != 0, e.Lifetime - e.LastSeen);

    public static CtRow From(in CtConnection c) => new(c.Key, c.State, c.Original.Packets, c.Original.Bytes, c.Original.TcpFlags,
        c.Reply.Packets, c.Reply.Bytes, c.Reply.TcpFlags, c.ReplySeen, c.Lifetime - c.LastSeen);
}
