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
    private LayerKind _next;
    private int _offset;
    private int _end;
    private byte _depth;
    private LayerFlags _flags;
    private int _networkOffset;
    private byte _nextHeader;
    private bool _ipInIp;
    private Ipv6ChainState _chain;
    private bool _chainStarts;
    private ParseError _error;
    private Layer _current;
    private bool _done;

    /// <summary>Starts a walk over <paramref name="packet"/>, whose first bytes are of <paramref name="linkType"/>.</summary>
    public PacketDissector(ReadOnlySpan<byte> packet, LinkType linkType = LinkType.Ethernet, DissectorOptions? options = null)
    {
        _packet = packet;
        _options = options ?? DissectorOptions.Default;
        _offset = 0;
        _end = packet.Length;
        _depth = 0;
        _flags = LayerFlags.None;
        _networkOffset = -1;
        _nextHeader = 0;
        _ipInIp = false;
        _chain = default;
        _chainStarts = true;
        _error = default;
        _current = default;
        _done = false;
        _next = linkType switch
        {
            LinkType.Ethernet => LayerKind.Ethernet,
            LinkType.RawIp => packet.Length > 0 && (packet[0] >> 4) == 6 ? LayerKind.IPv6 : LayerKind.IPv4,
            LinkType.Ipv4 => LayerKind.IPv4,
            LinkType.Ipv6 => LayerKind.IPv6,
            LinkType.Seed => LayerKind.Seed,
            _ => LayerKind.None,
        };
        if (_next == LayerKind.None)
        {
            _error = new ParseError(ParseErrorReason.UnsupportedLinkType, 0, LayerKind.None);
            _done = true;
        }
    }

    /// <summary>The error that ended the walk (<see cref="ParseError.IsError"/> is false when the walk ended normally).</summary>
    public readonly ParseError Error => _error;

    /// <summary>True when the walk ended on malformed input.</summary>
    public readonly bool HasError => _error.IsError;

    /// <summary>The layer the last successful <see cref="MoveNext"/> produced.</summary>
    public readonly Layer Current => _current;

    /// <summary>Enables <c>foreach (var layer in dissector)</c>; check <see cref="Error"/> afterwards.</summary>
    public readonly PacketDissector GetEnumerator() => this;

    /// <summary>Advances to the next layer (for <c>foreach</c>).</summary>
    public bool MoveNext() => TryNext(out _current);

    /// <summary>Produces the next layer; false at the end of the packet or on an error (see <see cref="Error"/>).</summary>
    public bool TryNext(out Layer layer)
    {
        if (_done)
        {
            layer = default;
            return false;
        }
        // _offset <= _end <= _packet.Length always holds (every region is clipped to the bytes present).
        ReadOnlySpan<byte> span = _packet.Slice(_offset, _end - _offset);
        // Each branch assigns layer; MoveNext passes _current itself, so Current needs no extra copy here.
        return _next switch
        {
            LayerKind.Ethernet => Ethernet(span, out layer),
            LayerKind.Vlan => Vlan(span, out layer),
            LayerKind.Arp => Arp(span, out layer),
            LayerKind.IPv4 => Ipv4(span, out layer),
            LayerKind.IPv6 => Ipv6(span, out layer),
            LayerKind.Ipv6HopByHop or LayerKind.Ipv6Routing or LayerKind.Ipv6Fragment
                or LayerKind.Ipv6DestinationOptions or LayerKind.Ah => Extension(span, out layer),
            LayerKind.Esp => Esp(span, out layer),
            LayerKind.Tcp => Tcp(span, out layer),
            LayerKind.Udp => Udp(span, out layer),
            LayerKind.Icmpv4 => Icmpv4(span, out layer),
            LayerKind.Icmpv6 => Icmpv6(span, out layer),
            LayerKind.Vxlan => Vxlan(span, out layer),
            LayerKind.Geneve => Geneve(span, out layer),
            LayerKind.Seed => Seed(span, out layer),
            _ => Payload(span, out layer),
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
        if (count == layers.Length && !d._done)
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
