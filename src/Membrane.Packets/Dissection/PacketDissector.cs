using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>
/// Walks a packet layer by layer — link, network, IPv6 extension headers, transport, tunnels (VXLAN, Geneve,
/// IP-in-IP) into the inner frame, the datagram quoted by an ICMP error — without allocating and without
/// throwing on any input. Malformed input ends the walk with a typed <see cref="Error"/>.
/// </summary>
/// <example>
/// <code>
/// var d = new PacketDissector(frame, LinkType.Ethernet);
/// while (d.TryNext(out var layer)) { if (layer.Kind == LayerKind.Tcp) port = layer.AsTcp(frame).DestinationPort; }
/// if (d.HasError) Console.WriteLine(d.Error.Message);
/// </code>
/// </example>
public ref partial struct PacketDissector
{
    private readonly ReadOnlySpan<byte> _packet;
    private readonly DissectorOptions _options;
    private Walk _walk;
    private Layer _current;

    /// <summary>Starts a walk over <paramref name="packet"/>, whose first bytes are of <paramref name="linkType"/>.</summary>
    public PacketDissector(ReadOnlySpan<byte> packet, LinkType linkType = LinkType.Ethernet, DissectorOptions? options = null)
    {
        _packet = packet;
        _options = options ?? DissectorOptions.Default;
        _current = default;
        _walk = default;
        _walk._end = packet.Length;
        _walk._networkOffset = -1;
        _walk._chainStarts = true;
        _walk._next = linkType switch
        {
            LinkType.Ethernet => LayerKind.Ethernet,
            LinkType.RawIp => packet.Length > 0 && (packet[0] >> 4) == 6 ? LayerKind.IPv6 : LayerKind.IPv4,
            LinkType.Ipv4 => LayerKind.IPv4,
            LinkType.Ipv6 => LayerKind.IPv6,
            LinkType.Seed => LayerKind.Seed,
            _ => LayerKind.None,
        };
        if (_walk._next == LayerKind.None)
        {
            _walk._error = new ParseError(ParseErrorReason.UnsupportedLinkType, 0, LayerKind.None);
        }
    }

    /// <summary>The error that ended the walk (<see cref="ParseError.IsError"/> is false when the walk ended normally).</summary>
    public readonly ParseError Error => _walk._error;

    /// <summary>True when the walk ended on malformed input.</summary>
    public readonly bool HasError => _walk._error.IsError;

    /// <summary>The layer the last successful <see cref="MoveNext"/> produced.</summary>
    public readonly Layer Current => _current;

    /// <summary>Enables <c>foreach (var layer in dissector)</c>; check <see cref="Error"/> afterwards.</summary>
    public readonly PacketDissector GetEnumerator() => this;

    /// <summary>Advances to the next layer (for <c>foreach</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool MoveNext() => TryNext(out _current);

    // TryNext and every handler it reaches are inlined into the consumer's loop (forced, so the JIT's inlining
    // budget, which a small loop spends quickly, does not stop halfway down the chain). Nothing on the way takes
    // the address of the dissector, of the layer or of a header view, so the JIT keeps them in registers and has
    // no stack slots holding references to zero on every call: measured in bench/README.md.

    /// <summary>Produces the next layer; false at the end of the packet or on an error (see <see cref="Error"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryNext(out Layer layer)
    {
        if (_walk._next == LayerKind.None)
        {
            layer = default;
            return false;
        }
        // _offset <= _end <= _packet.Length always holds (every region is clipped to the bytes present).
        ReadOnlySpan<byte> span = _packet.Slice(_walk._offset, _walk._end - _walk._offset);
        var options = _options;
        // Each branch assigns layer; MoveNext passes _current itself, so Current needs no extra copy here.
        return _walk._next switch
        {
            LayerKind.Ethernet => _walk.Ethernet(span, options, out layer),
            LayerKind.Vlan => _walk.Vlan(span, options, out layer),
            LayerKind.Arp => _walk.Arp(span, options, out layer),
            LayerKind.IPv4 => _walk.Ipv4(span, options, out layer),
            LayerKind.IPv6 => _walk.Ipv6(span, options, out layer),
            LayerKind.Ipv6HopByHop or LayerKind.Ipv6Routing or LayerKind.Ipv6Fragment
                or LayerKind.Ipv6DestinationOptions or LayerKind.Ah => _walk.Extension(span, options, out layer),
            LayerKind.Esp => _walk.Esp(span, options, out layer),
            LayerKind.Tcp => _walk.Tcp(span, options, out layer),
            LayerKind.Udp => _walk.Udp(span, options, out layer),
            LayerKind.Icmpv4 => _walk.Icmpv4(span, options, out layer),
            LayerKind.Icmpv6 => _walk.Icmpv6(span, options, out layer),
            LayerKind.Vxlan => _walk.Vxlan(span, options, out layer),
            LayerKind.Geneve => _walk.Geneve(span, options, out layer),
            LayerKind.Seed => _walk.Seed(span, options, out layer),
            _ => _walk.Payload(span, options, out layer),
        };
    }

    /// <summary>
    /// Walks <paramref name="packet"/> into <paramref name="layers"/>; returns false with <paramref name="error"/> on
    /// malformed input (the layers before it are still filled) or when <paramref name="layers"/> is too small
    /// (then <paramref name="error"/> is None and <paramref name="count"/> equals its length).
    /// </summary>
    public static bool TryDissect(ReadOnlySpan<byte> packet, LinkType linkType, Span<Layer> layers, out int count,
        out ParseError error, DissectorOptions? options = null)
    {
        var d = new PacketDissector(packet, linkType, options);
        count = 0;
        while (count < layers.Length && d.TryNext(out var layer))
        {
            layers[count++] = layer;
        }
        error = d.Error;
        if (count == layers.Length && d._walk._next != LayerKind.None)
        {
            return false;
        }
        return !error.IsError;
    }

    /// <summary>
    /// Walks <paramref name="packet"/> calling <paramref name="handler"/> for each layer, generic over a struct
    /// handler so nothing boxes (as Kestrel's <c>HttpParser&lt;TRequestHandler&gt;</c>). Returns false on a parse error
    /// (after <see cref="IPacketHandler.OnError"/>) and true otherwise, also when the handler stopped the walk.
    /// </summary>
    public static bool Dissect<THandler>(ReadOnlySpan<byte> packet, LinkType linkType, ref THandler handler, DissectorOptions? options = null)
        where THandler : struct, IPacketHandler
    {
        var d = new PacketDissector(packet, linkType, options);
        while (d.TryNext(out var layer))
        {
            if (!handler.OnLayer(packet, in layer))
            {
                return true;
            }
        }
        if (d.HasError)
        {
            var e = d.Error;
            handler.OnError(in e);
            return false;
        }
        return true;
    }
}

/// <summary>A callback for <see cref="PacketDissector.Dissect{THandler}"/>; implement it on a struct.</summary>
public interface IPacketHandler
{
    /// <summary>Called for each layer in order; return false to stop the walk.</summary>
    bool OnLayer(ReadOnlySpan<byte> packet, in Layer layer);

    /// <summary>Called once when malformed input ends the walk.</summary>
    void OnError(in ParseError error);
}
