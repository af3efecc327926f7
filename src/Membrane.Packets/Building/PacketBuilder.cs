using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>
/// Composes a packet header by header into a <see cref="Span{T}"/> (or an <see cref="IBufferWriter{T}"/>), then
/// <see cref="Finish"/> fills what depends on what follows: next-protocol fields (EtherType, IP protocol,
/// next header, Geneve protocol type) unless given explicitly, every length field (IPv4 total length, IPv6
/// payload length, UDP length, seed total length) unless overridden, and every checksum (IPv4 header,
/// TCP/UDP/ICMPv6 with their pseudo-header, ICMPv4) from the innermost layer outwards.
/// </summary>
/// <example>
/// <code>
/// var b = new PacketBuilder(buffer);
/// b.Ethernet(dstMac, srcMac);
/// b.Ipv4(src, dst);
/// b.Udp(40000, 4789);
/// b.Vxlan(42);
/// b.Ethernet(innerDst, innerSrc);
/// b.Ipv6(a, c);
/// b.Tcp(1234, 80, flags: TcpFlags.Syn, options: opts);
/// int length = b.Finish();
/// </code>
/// </example>
public ref partial struct PacketBuilder
{
    /// <summary>The most layers one builder records.</summary>
    public const int MaxLayers = 32;

    private readonly Span<byte> _buffer;
    private readonly IBufferWriter<byte>? _writer;
    private int _length;
    private int _count;
    private bool _finished;
    private Records _layers;

    /// <summary>Builds into <paramref name="buffer"/>; throws <see cref="ArgumentException"/> when a header does not fit.</summary>
    public PacketBuilder(Span<byte> buffer)
    {
        _buffer = buffer;
        _writer = null;
        _length = 0;
        _count = 0;
        _finished = false;
        _layers = default;
    }

    private PacketBuilder(IBufferWriter<byte> writer, int maxLength)
    {
        _buffer = writer.GetSpan(maxLength);
        _writer = writer;
        _length = 0;
        _count = 0;
        _finished = false;
        _layers = default;
    }

    /// <summary>Builds into <paramref name="writer"/>: reserves <paramref name="maxLength"/> bytes now; <see cref="Finish"/> advances it.</summary>
    public static PacketBuilder Create(IBufferWriter<byte> writer, int maxLength = ushort.MaxValue + EthernetHeader.Length + 8)
    {
        ArgumentNullException.ThrowIfNull(writer);
        return new PacketBuilder(writer, maxLength);
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Length => _length;

    /// <summary>The bytes written so far (final once <see cref="Finish"/> has run).</summary>
    public readonly ReadOnlySpan<byte> Written => _buffer.Slice(0, _length);

    // ---- finishing ----

    /// <summary>
    /// Fills lengths and checksums, advances the <see cref="IBufferWriter{T}"/> when building into one, and
    /// returns the packet's length. Call once.
    /// </summary>
    public int Finish()
    {
        if (_finished)
        {
            ThrowHelper.ThrowArgument("packet", "Finish was already called");
        }
        _finished = true;
        var packet = _buffer.Slice(0, _length);
        for (int i = 0; i < _count; i++)
        {
            ref var l = ref _layers[i];
            int span = _length - l.Offset;
            var d = packet.Slice(l.Offset);
            switch (l.Kind)
            {
                case LayerKind.IPv4:
                    WriteLength16(d.Slice(2), l.LengthOverride ?? span, "IPv4 total length");
                    break;
                case LayerKind.IPv6:
                    WriteLength16(d.Slice(4), l.LengthOverride ?? (span - Ipv6Header.Length), "IPv6 payload length");
                    break;
                case LayerKind.Udp:
                    WriteLength16(d.Slice(4), l.LengthOverride ?? span, "UDP length");
                    break;
                case LayerKind.Seed:
                    WriteLength16(d.Slice(2), span, "seed total length");
                    break;
            }
        }
        // Innermost first: an outer checksum covers the inner headers' final bytes.
        for (int i = _count - 1; i >= 0; i--)
        {
            ref var l = ref _layers[i];
            var region = packet.Slice(l.Offset);
            switch (l.Kind)
            {
                case LayerKind.IPv4:
                    region[10] = 0;
                    region[11] = 0;
                    BinaryPrimitives.WriteUInt16BigEndian(region.Slice(10), InternetChecksum.Compute(region.Slice(0, l.HeaderLength)));
                    break;
                case LayerKind.Icmpv4:
                    region[2] = 0;
                    region[3] = 0;
                    BinaryPrimitives.WriteUInt16BigEndian(region.Slice(2), InternetChecksum.Compute(region));
                    break;
                case LayerKind.Tcp when l.Checksum:
                    TransportChecksum(packet, i, region, 16, IpProtocols.Tcp, udp: false);
                    break;
                case LayerKind.Udp when l.Checksum:
                    TransportChecksum(packet, i, region, 6, IpProtocols.Udp, udp: true);
                    break;
                case LayerKind.Icmpv6:
                    TransportChecksum(packet, i, region, 2, IpProtocols.Icmpv6, udp: false);
                    break;
            }
        }
        _writer?.Advance(_length);
        return _length;
    }

    private readonly void TransportChecksum(Span<byte> packet, int index, Span<byte> region, int field, byte protocol, bool udp)
    {
        // The pseudo-header comes from the nearest IP header before this layer.
        int ip = index - 1;
        while (ip >= 0 && _layers[ip].Kind is not (LayerKind.IPv4 or LayerKind.IPv6))
        {
            ip--;
        }
        if (ip < 0)
        {
            ThrowHelper.ThrowArgument(LayerNames.Display(_layers[index].Kind) + " checksum", "no IP header precedes it");
        }
        var h = packet.Slice(_layers[ip].Offset);
        // RFC 768: UDP's pseudo-header carries the UDP length field (as the kernel's udp4_csum does), which
        // differs from the bytes present only when a test overrides it (a quoted datagram, a length lie).
        int length = udp ? BinaryPrimitives.ReadUInt16BigEndian(region.Slice(4)) : region.Length;
        uint pseudo;
        if (_layers[ip].Kind == LayerKind.IPv4)
        {
            pseudo = InternetChecksum.PseudoHeaderSum(Ipv4Address.Read(h.Slice(12)), Ipv4Address.Read(h.Slice(16)), protocol, length);
        }
        else
        {
            // RFC 8200 §8.1: the final destination, which a routing header with segments left holds.
            PacketChecksums.TryFinalDestination(packet, _layers[ip].Offset, _layers[index].Offset, out var destination);
            pseudo = InternetChecksum.PseudoHeaderSum(Ipv6Address.Read(h.Slice(8)), destination, protocol, length);
        }
        region[field] = 0;
        region[field + 1] = 0;
        ushort c = InternetChecksum.Finish(InternetChecksum.Sum(region, pseudo));
        if (udp && c == 0)
        {
            // RFC 768: a computed zero is sent as all ones; zero means "no checksum".
            c = 0xFFFF;
        }
        BinaryPrimitives.WriteUInt16BigEndian(region.Slice(field), c);
    }

    private static void WriteLength16(Span<byte> field, int value, string what)
    {
        if ((uint)value > ushort.MaxValue)
        {
            ThrowHelper.ThrowArgument("packet", $"{what} {value} exceeds 65535");
        }
        BinaryPrimitives.WriteUInt16BigEndian(field, (ushort)value);
    }

    // ---- plumbing ----

    private enum Family : byte
    {
        None,
        EtherType,
        IpProtocol,
        GeneveProtocol,
    }

    private struct Record
    {
        public LayerKind Kind;
        public int Offset;
        public int HeaderLength;
        public int NextField;
        public Family Family;
        public bool AutoNext;
        public bool Checksum;
        public int? LengthOverride;
    }

    [InlineArray(MaxLayers)]
    private struct Records
    {
        private Record _element;
    }

    private Span<byte> Append(int length)
    {
        if (_finished)
        {
            ThrowHelper.ThrowArgument("packet", "Finish was already called");
        }
        if (length < 0 || _length + length > _buffer.Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("packet", _length + length, _buffer.Length);
        }
        var s = _buffer.Slice(_length, length);
        _length += length;
        return s;
    }

    // Records a layer, tells the previous layer what follows it, and returns the new header's offset.
    private int Push(LayerKind kind, int headerLength, int nextField, Family family, bool autoNext, bool checksum = false,
        int? lengthOverride = null, ushort? typeCode = null)
    {
        if (_count == MaxLayers)
        {
            ThrowHelper.ThrowArgument("packet", $"more than {MaxLayers} layers");
        }
        int at = _length;
        Append(headerLength);
        if (_count > 0)
        {
            ref var prev = ref _layers[_count - 1];
            if (prev.AutoNext && prev.NextField >= 0)
            {
                var field = _buffer.Slice(prev.Offset + prev.NextField);
                switch (prev.Family)
                {
                    case Family.EtherType or Family.GeneveProtocol:
                        ushort et = typeCode ?? EtherTypeOf(kind, prev.Family);
                        if (et != 0)
                        {
                            BinaryPrimitives.WriteUInt16BigEndian(field, et);
                        }
                        break;
                    case Family.IpProtocol:
                        byte proto = ProtocolOf(kind);
                        if (proto != 0 || kind == LayerKind.Ipv6HopByHop)
                        {
                            field[0] = proto;
                        }
                        break;
                }
            }
            else if (typeCode is { } tpid && prev.NextField >= 0)
            {
                // A VLAN TPID always goes into the previous EtherType field: that is what makes it a tag.
                BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(prev.Offset + prev.NextField), tpid);
            }
        }
        _layers[_count++] = new Record
        {
            Kind = kind,
            Offset = at,
            HeaderLength = headerLength,
            NextField = nextField,
            Family = family,
            AutoNext = autoNext,
            Checksum = checksum,
            LengthOverride = lengthOverride,
        };
        return at;
    }

    private static ushort EtherTypeOf(LayerKind kind, Family family) => kind switch
    {
        LayerKind.IPv4 => EtherTypes.IPv4,
        LayerKind.IPv6 => EtherTypes.IPv6,
        LayerKind.Arp => EtherTypes.Arp,
        LayerKind.Vlan => EtherTypes.Vlan,
        LayerKind.Ethernet when family == Family.GeneveProtocol => EtherTypes.TransparentEthernetBridging,
        _ => 0,
    };

    private static byte ProtocolOf(LayerKind kind) => kind switch
    {
        LayerKind.Tcp => IpProtocols.Tcp,
        LayerKind.Udp => IpProtocols.Udp,
        LayerKind.Icmpv4 => IpProtocols.Icmp,
        LayerKind.Icmpv6 => IpProtocols.Icmpv6,
        LayerKind.IPv4 => IpProtocols.IPv4,
        LayerKind.IPv6 => IpProtocols.IPv6,
        LayerKind.Ipv6HopByHop => IpProtocols.HopByHopOptions,
        LayerKind.Ipv6Routing => IpProtocols.Routing,
        LayerKind.Ipv6Fragment => IpProtocols.Fragment,
        LayerKind.Ipv6DestinationOptions => IpProtocols.DestinationOptions,
        _ => 0,
    };
}
