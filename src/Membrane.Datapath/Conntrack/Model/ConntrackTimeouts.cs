using System.Diagnostics.CodeAnalysis;

namespace Membrane.Datapath.Conntrack;

/// <summary>
/// How long a connection lives without packets, per class of state; the defaults are
/// Cilium's (SYN 60 s, established TCP 6 h, closing 10 s, non-TCP 60 s). The datapath
/// (struct ct_config) and the model (ConntrackModel) use the same classes
/// (conntrack-spec.md "Timeouts"):
/// SYN_SENT/SYN_RECV/SYN_SENT2 → <see cref="TcpSyn"/>; ESTABLISHED and the half-closed
/// FIN_WAIT/CLOSE_WAIT → <see cref="TcpEstablished"/> (a half-closed connection may carry
/// data for a long time, RFC 9293 3.6); LAST_ACK/TIME_WAIT/CLOSE → <see cref="TcpClose"/>;
/// UDP, ICMP and other protocols → <see cref="Other"/>.
/// Each must be a whole number of seconds from 1 s to <see cref="MaxSeconds"/>.
/// </summary>
public sealed record ConntrackTimeouts
{
    /// <summary>
    /// The largest usable lifetime: the datapath stores lifetimes as __u32 seconds and tests liveness with
    /// <c>(__s32)(lifetime - now) &gt;= 0</c> (bpf/lib/conntrack.h ct_alive), so a longer one would look expired at once.
    /// </summary>
    public const uint MaxSeconds = int.MaxValue;

    /// <summary>The defaults.</summary>
    public static ConntrackTimeouts Default { get; } = new();

    /// <summary>SYN_SENT, SYN_RECV, SYN_SENT2.</summary>
    public TimeSpan TcpSyn { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>ESTABLISHED, FIN_WAIT, CLOSE_WAIT.</summary>
    public TimeSpan TcpEstablished { get; init; } = TimeSpan.FromHours(6);

    /// <summary>LAST_ACK, TIME_WAIT, CLOSE.</summary>
    public TimeSpan TcpClose { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>UDP, ICMP and other protocols.</summary>
    public TimeSpan Other { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The lifetime of a connection in <paramref name="state"/> of protocol <paramref name="l4Protocol"/> (IPPROTO_*).
    /// As the datapath's ct_timeout: any non-TCP protocol → <see cref="Other"/>; a TCP state outside the SYN and
    /// established classes (LAST_ACK, TIME_WAIT, CLOSE, and NONE, which is never stored) → <see cref="TcpClose"/>.
    /// </summary>
    public TimeSpan For(CtState state, byte l4Protocol) => l4Protocol != CtTuple.TcpProtocol ? Other : state switch
    {
        CtState.SynSent or CtState.SynRecv or CtState.SynSent2 => TcpSyn,
        CtState.Established or CtState.FinWait or CtState.CloseWait => TcpEstablished,
        _ => TcpClose,
    };

    /// <summary><see cref="For"/> in whole seconds, as the datapath stores it.</summary>
    public uint SecondsFor(CtState state, byte l4Protocol) => (uint)For(state, l4Protocol).TotalSeconds;

    /// <summary>Checks every lifetime; on failure <paramref name="error"/> names the first bad one and why.</summary>
    public bool TryValidate([NotNullWhen(false)] out string? error)
    {
        error = Check(TcpSyn, "tcp-syn") ?? Check(TcpEstablished, "tcp-established") ?? Check(TcpClose, "tcp-close") ?? Check(Other, "other");
        return error is null;
    }

    /// <summary>Returns this when every lifetime is usable; throws <see cref="ArgumentOutOfRangeException"/> naming the first that is not.</summary>
    public ConntrackTimeouts Validate()
    {
        if (!TryValidate(out var error))
        {
            throw new ArgumentOutOfRangeException(nameof(ConntrackTimeouts), error);
        }
        return this;
    }

    /// <summary>
    /// The datapath's form: whole seconds. Throws <see cref="ArgumentOutOfRangeException"/> when a lifetime is
    /// not a whole number of seconds between 1 s and <see cref="MaxSeconds"/>, naming it.
    /// </summary>
    public CtConfig ToConfig()
    {
        Validate();
        return new()
        {
            TcpSyn = (uint)TcpSyn.TotalSeconds,
            TcpEstablished = (uint)TcpEstablished.TotalSeconds,
            TcpClose = (uint)TcpClose.TotalSeconds,
            Other = (uint)Other.TotalSeconds,
        };
    }

    private static string? Check(TimeSpan value, string name)
    {
        if (value < TimeSpan.FromSeconds(1))
        {
            return $"failed to validate conntrack timeout {name}={value}: it must be at least 1 s";
        }
        if (value.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            return $"failed to validate conntrack timeout {name}={value}: the datapath counts whole seconds";
        }
        if (value.TotalSeconds > MaxSeconds)
        {
            return $"failed to validate conntrack timeout {name}={value}: it must be at most {MaxSeconds} s";
        }
        return null;
    }
}
