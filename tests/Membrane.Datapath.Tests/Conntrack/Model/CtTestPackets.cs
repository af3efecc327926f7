using Membrane.Datapath.Conntrack;
using Membrane.Packets;

namespace Membrane.Datapath.Tests.Conntrack.Model;

/// <summary>Addresses, ports and packet shorthands of the conntrack model tests (198.18.0.0/15, fd00:198:18::/48).</summary>
internal static class Ct
{
    public const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10, Urg = 0x20;

    /// <summary>The client (originator).</summary>
    public static readonly IpAddress A = V4("198.18.0.1");
    /// <summary>The server (responder).</summary>
    public static readonly IpAddress B = V4("198.18.0.2");
    /// <summary>A router on the way, the source of ICMP errors.</summary>
    public static readonly IpAddress R = V4("198.18.0.254");
    public static readonly IpAddress A6 = V6("fd00:198:18::1");
    public static readonly IpAddress B6 = V6("fd00:198:18::2");
    public static readonly IpAddress R6 = V6("fd00:198:18::fe");

    public const ushort ClientPort = 40000;
    public const ushort ServerPort = 80;

    /// <summary>The key of the A→B TCP connection.</summary>
    public static readonly CtTuple TcpKey = new(A, B, ClientPort, ServerPort, 6);

    public static IpAddress V4(string text) => new(Ipv4Address.Parse(text));
    public static IpAddress V6(string text) => new(Ipv6Address.Parse(text));

    /// <summary>A segment of the A:40000 → B:80 connection in <paramref name="direction"/>.</summary>
    public static CtPacket Tcp(CtDirection direction, byte flags, uint length = 60) => direction == CtDirection.Original
        ? CtPacket.Tcp(A, B, ClientPort, ServerPort, flags, length)
        : CtPacket.Tcp(B, A, ServerPort, ClientPort, flags, length);

    /// <summary>The test's own statement of the spec's timeout classes, in seconds (defaults).</summary>
    public static ulong DefaultTimeout(CtState state) => state switch
    {
        CtState.SynSent or CtState.SynRecv or CtState.SynSent2 => 60,
        CtState.Established or CtState.FinWait or CtState.CloseWait => 6 * 3600,
        CtState.LastAck or CtState.TimeWait or CtState.Close => 10,
        CtState.Unreplied or CtState.Replied => 60,
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    /// <summary>Runs packets through the model, one second apart from <paramref name="start"/>; returns the last verdict.</summary>
    public static CtVerdict Run(ConntrackModel model, ulong start, params (CtDirection Direction, byte Flags)[] segments)
    {
        CtVerdict last = default;
        ulong now = start;
        foreach (var (direction, flags) in segments)
        {
            last = model.Process(Tcp(direction, flags), now++);
        }
        return last;
    }
}
