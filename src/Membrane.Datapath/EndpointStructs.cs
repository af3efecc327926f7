using System.Buffers.Binary;
using System.Numerics;
using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Membrane.Linux.Bpf.Datapath;

// The C# mirrors of the endpoint datapath's structs and enums (bpf/lib/endpoint.h), in one
// place. Each carries [CTwin] naming its C twin; EndpointLayoutTests reads from_pod.o's BTF
// and fails when a size, an offset or an enum value differs. Fields keep the C byte order:
// "__be" fields hold the bytes as on the wire; the rest are host order (little-endian on
// every machine Membrane runs on). The shared structs of bpf/lib/maps.h and events.h
// (metrics, drop records) are mirrored once, in Membrane.Linux.Bpf.Datapath.
namespace Membrane.Datapath;

/// <summary>Drop reasons of the endpoint programs (64..95; drop_reasons.h owns 0..63). C twin: enum endpoint_drop_reason (bpf/lib/endpoint.h).</summary>
[CTwin("endpoint_drop_reason")]
public enum EndpointDropReason : byte
{
    /// <summary>The source IP (or ARP sender IP) is not the endpoint's own.</summary>
    [CTwin("DROP_SPOOFED_IP")] SpoofedIp = 64,
    /// <summary>The source MAC (or ARP sender MAC) is not the endpoint's own.</summary>
    [CTwin("DROP_SPOOFED_MAC")] SpoofedMac = 65,
    /// <summary>The program ran on a device that has no endpoint entry.</summary>
    [CTwin("DROP_UNKNOWN_ENDPOINT")] UnknownEndpoint = 66,
}

/// <summary>Which addresses of an <see cref="EndpointInfo"/> are valid. C twin: enum endpoint_flags (bpf/lib/endpoint.h).</summary>
[CTwin("endpoint_flags")]
[Flags]
public enum EndpointFlags : uint
{
    /// <summary>No address.</summary>
    None = 0,
    /// <summary><see cref="EndpointInfo.Ipv4"/> is valid.</summary>
    [CTwin("ENDPOINT_F_IPV4")] HasIpv4 = 1,
    /// <summary><see cref="EndpointInfo.Ipv6"/> is valid.</summary>
    [CTwin("ENDPOINT_F_IPV6")] HasIpv6 = 2,
    /// <summary>A policy rule selects the endpoint for ingress: what no entry allows is denied.</summary>
    [CTwin("ENDPOINT_F_INGRESS_POLICY")] IngressPolicy = 4,
    /// <summary>Likewise for egress.</summary>
    [CTwin("ENDPOINT_F_EGRESS_POLICY")] EgressPolicy = 8,
}

/// <summary>Sixteen bytes (C: __u8[16] or __be32[4]).</summary>
[InlineArray(16)]
public struct Bytes16
{
    private byte _element;
}

/// <summary>Six bytes: a MAC address (C: __u8[ETH_ALEN]).</summary>
[InlineArray(6)]
public struct Bytes6
{
    private byte _element;
}

/// <summary>Four bytes: an IPv4 address or mask as on the wire (C: __be32).</summary>
[InlineArray(4)]
public struct Bytes4
{
    private byte _element;
}

/// <summary>Three bytes of padding (C: __u8 pad[3]).</summary>
[InlineArray(3)]
public struct Bytes3
{
    private byte _element;
}

/// <summary>
/// One local endpoint as the datapath sees it: the value of the "endpoints" map (key: the
/// host-side veth's ifindex, a host-order __u32) and of "endpoints_by_ip". C twin: struct
/// endpoint_info (bpf/lib/endpoint.h), 44 bytes.
/// </summary>
[CTwin("endpoint_info")]
[StructLayout(LayoutKind.Explicit, Size = 44)]
public struct EndpointInfo
{
    /// <summary>The pod's IPv4 address as on the wire (__be32; network byte order in memory).</summary>
    [CTwin("ipv4")][FieldOffset(0)] public uint Ipv4;
    /// <summary>The pod's IPv6 address as on the wire (__be32[4]).</summary>
    [CTwin("ipv6")][FieldOffset(4)] public Bytes16 Ipv6;
    /// <summary>The pod-side interface's MAC (bytes in wire order).</summary>
    [CTwin("mac")][FieldOffset(20)] public Bytes6 Mac;
    /// <summary>The host-side veth's MAC: the pod's gateway MAC (bytes in wire order).</summary>
    [CTwin("host_mac")][FieldOffset(26)] public Bytes6 HostMac;
    /// <summary>The host-side veth's ifindex in the node's namespace (host order).</summary>
    [CTwin("ifindex")][FieldOffset(32)] public uint Ifindex;
    /// <summary>The security identity (host order; 24 bits used).</summary>
    [CTwin("identity")][FieldOffset(36)] public uint Identity;
    /// <summary>Which addresses are valid (host order).</summary>
    [CTwin("flags")][FieldOffset(40)] public EndpointFlags Flags;
}

/// <summary>
/// Key of the "endpoints_by_ip" map: an address and its family. C twin: struct
/// endpoint_ip_key (bpf/lib/endpoint.h), 20 bytes. An IPv4 address fills the first four
/// bytes of <see cref="Address"/>, the rest stays zero.
/// </summary>
[CTwin("endpoint_ip_key")]
[StructLayout(LayoutKind.Explicit, Size = 20)]
public struct EndpointIpKey
{
    /// <summary>The address as on the wire (__be32[4]).</summary>
    [CTwin("addr")][FieldOffset(0)] public Bytes16 Address;
    /// <summary>4 or 6.</summary>
    [CTwin("family")][FieldOffset(16)] public byte Family;
    /// <summary>Always zero (hash keys compare every byte).</summary>
    [CTwin("pad")][FieldOffset(17)] public Bytes3 Pad;

    /// <summary>The key of <paramref name="address"/> (IPv4 or IPv6; an IPv4-mapped IPv6 address stays IPv6).</summary>
    public static EndpointIpKey For(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var key = new EndpointIpKey();
        Span<byte> bytes = key.Address;
        if (!address.TryWriteBytes(bytes, out var written))
        {
            throw new ArgumentException($"failed to build an endpoint key for {address}: not an IPv4 or IPv6 address", nameof(address));
        }
        key.Family = written == 4 ? (byte)4 : (byte)6;
        return key;
    }

    /// <summary>The address this key stands for.</summary>
    public readonly IPAddress ToAddress()
    {
        ReadOnlySpan<byte> bytes = Address;
        return new IPAddress(Family == 4 ? bytes[..4] : bytes);
    }
}

/// <summary>
/// The value of the "endpoint_prefix" array: per family the longest prefix that holds every
/// local endpoint's address (the program skips the endpoints_by_ip lookup for an address
/// outside it). C twin: struct endpoint_prefix (bpf/lib/endpoint.h), 40 bytes, network order.
/// A family without endpoints has net 0 and every mask bit set (only the unspecified address,
/// which no endpoint has, passes); all zero covers every address.
/// </summary>
[CTwin("endpoint_prefix")]
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct EndpointPrefix
{
    /// <summary>The IPv4 network as on the wire.</summary>
    [CTwin("v4_net")][FieldOffset(0)] public Bytes4 V4Net;
    /// <summary>The IPv4 mask as on the wire.</summary>
    [CTwin("v4_mask")][FieldOffset(4)] public Bytes4 V4Mask;
    /// <summary>The IPv6 network.</summary>
    [CTwin("v6_net")][FieldOffset(8)] public Bytes16 V6Net;
    /// <summary>The IPv6 mask.</summary>
    [CTwin("v6_mask")][FieldOffset(24)] public Bytes16 V6Mask;

    /// <summary>The value that covers no endpoint of either family.</summary>
    public static EndpointPrefix Empty
    {
        get
        {
            var prefix = new EndpointPrefix();
            ((Span<byte>)prefix.V4Mask).Fill(0xff);
            ((Span<byte>)prefix.V6Mask).Fill(0xff);
            return prefix;
        }
    }

    /// <summary>True when <paramref name="address"/> lies inside the prefix of its family: it differs from the network only outside the mask (as the program tests it).</summary>
    public readonly bool Covers(IPAddress address)
    {
        if (Is4(address))
        {
            var x = BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());
            return ((x ^ BinaryPrimitives.ReadUInt32BigEndian(V4Net)) & BinaryPrimitives.ReadUInt32BigEndian(V4Mask)) == 0;
        }
        var y = BinaryPrimitives.ReadUInt128BigEndian(address.GetAddressBytes());
        return ((y ^ BinaryPrimitives.ReadUInt128BigEndian(V6Net)) & BinaryPrimitives.ReadUInt128BigEndian(V6Mask)) == 0;
    }

    /// <summary>This prefix's masks with the networks of <paramref name="other"/>.</summary>
    public readonly EndpointPrefix WithNetworksOf(EndpointPrefix other)
    {
        var result = this;
        result.V4Net = other.V4Net;
        result.V6Net = other.V6Net;
        return result;
    }

    /// <summary>This prefix, widened where needed so that it holds <paramref name="address"/> too.</summary>
    public readonly EndpointPrefix Widen(IPAddress address)
    {
        var result = this;
        if (Is4(address))
        {
            var (net, mask) = Widen(BinaryPrimitives.ReadUInt32BigEndian(V4Net), BinaryPrimitives.ReadUInt32BigEndian(V4Mask),
                BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes()));
            BinaryPrimitives.WriteUInt32BigEndian(result.V4Net, net);
            BinaryPrimitives.WriteUInt32BigEndian(result.V4Mask, mask);
        }
        else
        {
            var (net, mask) = Widen(BinaryPrimitives.ReadUInt128BigEndian(V6Net), BinaryPrimitives.ReadUInt128BigEndian(V6Mask),
                BinaryPrimitives.ReadUInt128BigEndian(address.GetAddressBytes()));
            BinaryPrimitives.WriteUInt128BigEndian(result.V6Net, net);
            BinaryPrimitives.WriteUInt128BigEndian(result.V6Mask, mask);
        }
        return result;
    }

    private static bool Is4(IPAddress address) => address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;

    /// <summary>The longest prefix that holds both (net, mask) and x; an empty family (0, all ones) becomes x alone.</summary>
    private static (T Net, T Mask) Widen<T>(T net, T mask, T x) where T : IBinaryInteger<T>, IUnsignedNumber<T>
    {
        if (net == T.Zero && mask == T.AllBitsSet)
        {
            return (x, T.AllBitsSet);
        }
        var width = T.AllBitsSet.GetByteCount() * 8;
        var bits = Math.Min(int.CreateTruncating(T.LeadingZeroCount(~mask)), int.CreateTruncating(T.LeadingZeroCount(net ^ x)));
        var widened = bits == 0 ? T.Zero : T.AllBitsSet << (width - bits);
        return (net & widened, widened);
    }
}

/// <summary>An endpoint's datapath entry in .NET terms (what <see cref="Datapath"/> writes to and reads from the endpoint maps).</summary>
/// <param name="Ifindex">The host-side veth's ifindex in the node's namespace.</param>
/// <param name="Ipv4">The pod's IPv4 address, or null.</param>
/// <param name="Ipv6">The pod's IPv6 address, or null.</param>
/// <param name="PodMac">The MAC of the pod's interface.</param>
/// <param name="HostMac">The MAC of the host-side veth (the pod's gateway MAC).</param>
/// <param name="Identity">The security identity.</param>
/// <param name="IngressPolicy">A policy rule selects the endpoint for ingress (default deny there).</param>
/// <param name="EgressPolicy">A policy rule selects the endpoint for egress.</param>
public sealed record EndpointEntry(int Ifindex, IPAddress? Ipv4, IPAddress? Ipv6, PhysicalAddress PodMac, PhysicalAddress HostMac, uint Identity,
    bool IngressPolicy = false, bool EgressPolicy = false)
{
    /// <summary>The endpoint's addresses (IPv4 first).</summary>
    public IEnumerable<IPAddress> Addresses
    {
        get
        {
            if (Ipv4 is not null)
            {
                yield return Ipv4;
            }
            if (Ipv6 is not null)
            {
                yield return Ipv6;
            }
        }
    }

    /// <summary>Which addresses the entry has, as the map value's flags say it.</summary>
    public EndpointFlags Flags => (Ipv4 is null ? EndpointFlags.None : EndpointFlags.HasIpv4) | (Ipv6 is null ? EndpointFlags.None : EndpointFlags.HasIpv6)
        | (IngressPolicy ? EndpointFlags.IngressPolicy : EndpointFlags.None) | (EgressPolicy ? EndpointFlags.EgressPolicy : EndpointFlags.None);

    /// <summary>The map value for this entry.</summary>
    public EndpointInfo ToInfo()
    {
        var info = new EndpointInfo { Ifindex = checked((uint)Ifindex), Identity = Identity, Flags = Flags & (EndpointFlags.IngressPolicy | EndpointFlags.EgressPolicy) };
        if (Ipv4 is not null)
        {
            if (Ipv4.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                throw new ArgumentException($"failed to encode endpoint {Ifindex}: {Ipv4} is not an IPv4 address");
            }
            Span<byte> v4 = stackalloc byte[4];
            Ipv4.TryWriteBytes(v4, out _);
            info.Ipv4 = MemoryMarshal.Read<uint>(v4); // keeps wire order in memory
            info.Flags |= EndpointFlags.HasIpv4;
        }
        if (Ipv6 is not null)
        {
            if (Ipv6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                throw new ArgumentException($"failed to encode endpoint {Ifindex}: {Ipv6} is not an IPv6 address");
            }
            Ipv6.TryWriteBytes(info.Ipv6, out _);
            info.Flags |= EndpointFlags.HasIpv6;
        }
        WriteMac(PodMac, info.Mac, "pod");
        WriteMac(HostMac, info.HostMac, "host");
        return info;
    }

    /// <summary>The entry a map value stands for.</summary>
    public static EndpointEntry FromInfo(in EndpointInfo info)
    {
        IPAddress? v4 = null, v6 = null;
        if ((info.Flags & EndpointFlags.HasIpv4) != 0)
        {
            Span<byte> bytes = stackalloc byte[4];
            MemoryMarshal.Write(bytes, in info.Ipv4);
            v4 = new IPAddress(bytes);
        }
        if ((info.Flags & EndpointFlags.HasIpv6) != 0)
        {
            v6 = new IPAddress((ReadOnlySpan<byte>)info.Ipv6);
        }
        return new EndpointEntry((int)info.Ifindex, v4, v6,
            new PhysicalAddress(((ReadOnlySpan<byte>)info.Mac).ToArray()),
            new PhysicalAddress(((ReadOnlySpan<byte>)info.HostMac).ToArray()),
            info.Identity,
            (info.Flags & EndpointFlags.IngressPolicy) != 0,
            (info.Flags & EndpointFlags.EgressPolicy) != 0);
    }

    private void WriteMac(PhysicalAddress mac, Span<byte> destination, string which)
    {
        ArgumentNullException.ThrowIfNull(mac);
        var bytes = mac.GetAddressBytes();
        if (bytes.Length != 6)
        {
            throw new ArgumentException($"failed to encode endpoint {Ifindex}: the {which} MAC {mac} is not 6 bytes");
        }
        bytes.CopyTo(destination);
    }
}
