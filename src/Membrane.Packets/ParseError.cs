using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>Why a header could not be parsed (the typed reason code of a <see cref="ParseError"/>).</summary>
public enum ParseErrorReason : byte
{
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>Fewer bytes remain than the header's fixed part needs.</summary>
    Truncated,
    /// <summary>The version field holds a value this header cannot have (IPv4 ≠ 4, IPv6 ≠ 6, Geneve ≠ 0, seed ≠ 1).</summary>
    BadVersion,
    /// <summary>A header-length field is below the header's minimum (IPv4 IHL &lt; 5, TCP data offset &lt; 5).</summary>
    BadHeaderLength,
    /// <summary>A header-length field points beyond the bytes that remain.</summary>
    HeaderLengthBeyondPacket,
    /// <summary>A total/payload length field is smaller than the header it must include.</summary>
    BadTotalLength,
    /// <summary>A total/payload length field claims more bytes than were captured.</summary>
    TotalLengthBeyondCapture,
    /// <summary>An option's length byte is invalid (below its minimum, or past the options area).</summary>
    BadOptionLength,
    /// <summary>An IPv6 extension header repeats where RFC 8200 §4.1 forbids it (or hop-by-hop is not first).</summary>
    ExtensionHeaderLoop,
    /// <summary>The IPv6 extension-header chain is longer than <see cref="DissectorOptions.MaxExtensionHeaders"/>.</summary>
    ExtensionHeaderChainTooLong,
    /// <summary>Address-length fields that do not fit the header (ARP hlen/plen).</summary>
    BadAddressLength,
    /// <summary>Tunnels nest deeper than <see cref="DissectorOptions.MaxTunnelDepth"/>.</summary>
    TunnelTooDeep,
    /// <summary>The link type is not one the dissector starts from.</summary>
    UnsupportedLinkType,
}

/// <summary>
/// A typed parse failure: the reason code, the byte offset (from the start of the packet given to the
/// dissector, or of the span given to a reader) of the header that failed, and which layer was being read.
/// </summary>
public readonly struct ParseError : IEquatable<ParseError>
{
    /// <summary>Creates an error.</summary>
    public ParseError(ParseErrorReason reason, int offset, LayerKind layer)
    {
        Reason = reason;
        Offset = offset;
        Layer = layer;
    }

    /// <summary>The reason code.</summary>
    public ParseErrorReason Reason { get; }

    /// <summary>The byte offset of the header (or field) that failed.</summary>
    public int Offset { get; }

    /// <summary>The layer being read.</summary>
    public LayerKind Layer { get; }

    /// <summary>True unless <see cref="Reason"/> is <see cref="ParseErrorReason.None"/>.</summary>
    public bool IsError => Reason != ParseErrorReason.None;

    /// <summary>
    /// A reason and offset packed into one negative number, for the hot readers' <c>Measure</c> methods, which
    /// return a length or this code: no out parameter and no struct to build on the good path.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Code(ParseErrorReason reason, int offset) => -((offset << 8) | (int)reason);

    /// <summary>Unpacks a <see cref="Code"/> for <paramref name="layer"/>.</summary>
    internal static ParseError FromCode(int code, LayerKind layer) => new((ParseErrorReason)(-code & 0xFF), -code >> 8, layer);

    /// <summary>The same error moved by <paramref name="delta"/> bytes (a reader's relative offset made absolute).</summary>
    public ParseError WithOffset(int delta) => new(Reason, Offset + delta, Layer);

    /// <summary>A message in the form <c>failed to parse &lt;layer&gt; header at byte N: &lt;why&gt;</c>.</summary>
    public string Message => $"failed to parse {LayerNames.Display(Layer)} header at byte {Offset}: {Describe(Reason)}";

    /// <summary>A short human explanation of a reason code.</summary>
    public static string Describe(ParseErrorReason reason) => reason switch
    {
        ParseErrorReason.None => "no error",
        ParseErrorReason.Truncated => "truncated: fewer bytes than the header needs",
        ParseErrorReason.BadVersion => "bad version field",
        ParseErrorReason.BadHeaderLength => "header length field below the minimum",
        ParseErrorReason.HeaderLengthBeyondPacket => "header length field points beyond the packet",
        ParseErrorReason.BadTotalLength => "length field smaller than the header",
        ParseErrorReason.TotalLengthBeyondCapture => "length field exceeds the captured bytes",
        ParseErrorReason.BadOptionLength => "bad option length",
        ParseErrorReason.ExtensionHeaderLoop => "extension header repeated or out of order (RFC 8200 §4.1)",
        ParseErrorReason.ExtensionHeaderChainTooLong => "extension header chain too long",
        ParseErrorReason.BadAddressLength => "address length fields do not fit",
        ParseErrorReason.TunnelTooDeep => "tunnels nested too deep",
        ParseErrorReason.UnsupportedLinkType => "unsupported link type",
        _ => "unknown reason",
    };

    /// <inheritdoc/>
    public override string ToString() => Message;

    public bool Equals(ParseError other) => Reason == other.Reason && Offset == other.Offset && Layer == other.Layer;
    public override bool Equals(object? obj) => obj is ParseError e && Equals(e);
    public override int GetHashCode() => HashCode.Combine(Reason, Offset, Layer);
    public static bool operator ==(ParseError a, ParseError b) => a.Equals(b);
    public static bool operator !=(ParseError a, ParseError b) => !a.Equals(b);
}

/// <summary>Thrown only by the throwing <c>Read</c> conveniences; the <c>TryRead</c> APIs never throw.</summary>
public sealed class PacketParseException : FormatException
{
    /// <summary>Wraps a parse error.</summary>
    public PacketParseException(ParseError error) : base(error.Message) => Error = error;

    /// <summary>The typed error.</summary>
    public ParseError Error { get; }
}

internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowParse(ParseError error) => throw new PacketParseException(error);

    [DoesNotReturn]
    public static void ThrowDestinationTooSmall(string what, int needed, int available) =>
        throw new ArgumentException($"failed to build {what}: needs {needed} bytes but only {available} remain in the destination");

    // Out of line so that the message's interpolation (a large struct) stays out of the inlined readers' frames.
    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowNotExtensionHeader(byte type) =>
        ThrowArgument("IPv6 extension header reader", $"next-header value {type} is not a walkable extension header");

    [DoesNotReturn]
    public static void ThrowArgument(string what, string why) =>
        throw new ArgumentException($"failed to build {what}: {why}");

    [DoesNotReturn]
    public static void ThrowWrongLayer(LayerKind expected, LayerKind actual) =>
        throw new InvalidOperationException($"failed to view layer as {expected}: it is {actual}");
}
