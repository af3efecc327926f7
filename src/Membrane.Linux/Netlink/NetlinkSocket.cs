using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Membrane.Linux.Interop;
using static Membrane.Linux.Interop.Netlink;

namespace Membrane.Linux.Netlink;

/// <summary>Turns one reply message of a dump or a get into a value; false skips the message.</summary>
internal delegate bool NetlinkParser<T>(NetlinkMessage message, out T value);

/// <summary>
/// A netlink socket (AF_NETLINK, SOCK_RAW) with request/acknowledge and dump semantics:
/// sequence numbers, multipart replies, dumps restarted when the kernel flags them
/// NLM_F_DUMP_INTR, and extended acks (NETLINK_EXT_ACK) so that a refusal carries the
/// kernel's message. A socket belongs to the network namespace of the thread that created
/// it, for its whole life, whichever thread later uses it. Calls are serialised by a lock.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    /// <summary>How often a dump interrupted by a concurrent change is restarted before giving up.</summary>
    private const int MaxDumpAttempts = 10;

    /// <summary>A reply that takes longer than this means something is wrong; better an error than a hang.</summary>
    private const int ReplyTimeoutMs = 30_000;

    private readonly SafeFileDescriptor _fd;
    private readonly Lock _lock = new();
    private byte[] _receiveBuffer = new byte[32 * 1024];
    private uint _sequence;

    private NetlinkSocket(SafeFileDescriptor fd, uint portId)
    {
        _fd = fd;
        PortId = portId;
        // Start from a time-derived value as iproute2 does, so that a stale reply to an earlier
        // socket with the same port id cannot be mistaken for ours.
        _sequence = (uint)Environment.TickCount;
    }

    /// <summary>The port id the kernel assigned at bind time (nl_pid).</summary>
    public uint PortId { get; }

    /// <summary>How many dumps were restarted because the kernel flagged them NLM_F_DUMP_INTR (for tests and diagnostics).</summary>
    public int InterruptedDumps => Volatile.Read(ref _interruptedDumps);

    private int _interruptedDumps;

    /// <summary>Opens a netlink socket of <paramref name="protocol"/> in the calling thread's network namespace.</summary>
    public static NetlinkSocket Open(int protocol)
    {
        var raw = Libc.Socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, protocol);
        if (raw < 0)
        {
            throw new NetlinkException("open netlink socket", Libc.LastErrno);
        }
        var fd = new SafeFileDescriptor(raw);
        try
        {
            // Extended acks: the kernel adds NLMSGERR_ATTR_MSG/OFFS to errors (Linux 4.12+).
            // Capped acks: errors do not echo our whole request back. Strict checking makes
            // the kernel honour (and validate) the filters we put in dump requests (4.20+).
            SetOption(fd, NETLINK_EXT_ACK, 1, required: false);
            SetOption(fd, NETLINK_CAP_ACK, 1, required: false);
            SetOption(fd, NETLINK_GET_STRICT_CHK, 1, required: false);
            var bufferSize = 1 << 20;
            Libc.SetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_RCVBUF, &bufferSize, sizeof(int));

            var addr = new Libc.SockaddrNl { nl_family = Libc.AF_NETLINK };
            if (Libc.Bind(fd, &addr, sizeof(Libc.SockaddrNl)) != 0)
            {
                throw new NetlinkException("bind netlink socket", Libc.LastErrno);
            }
            var len = sizeof(Libc.SockaddrNl);
            if (Libc.GetSockName(fd, &addr, ref len) != 0)
            {
                throw new NetlinkException("read netlink socket address", Libc.LastErrno);
            }
            return new NetlinkSocket(fd, addr.nl_pid);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>Sends a request with NLM_F_ACK and waits for the kernel's acknowledgement.</summary>
    public void Execute(string operation, Span<byte> request)
    {
        lock (_lock)
        {
            var seq = Send(operation, request, NLM_F_ACK);
            while (true)
            {
                var datagram = Receive(operation);
                var reader = new NetlinkMessageReader(datagram);
                while (reader.TryRead(out var message))
                {
                    if (message.Sequence != seq || message.PortId != PortId)
                    {
                        continue;
                    }
                    if (message.Type == NLMSG_ERROR)
                    {
                        ThrowIfError(operation, message);
                        return;
                    }
                }
                ThrowIfMalformed(operation, reader);
            }
        }
    }

    /// <summary>Sends a non-dump get request and parses its single reply.</summary>
    public T Get<T>(string operation, Span<byte> request, NetlinkParser<T> parser)
    {
        lock (_lock)
        {
            var seq = Send(operation, request, 0);
            while (true)
            {
                var datagram = Receive(operation);
                var reader = new NetlinkMessageReader(datagram);
                while (reader.TryRead(out var message))
                {
                    if (message.Sequence != seq || message.PortId != PortId)
                    {
                        continue;
                    }
                    if (message.Type == NLMSG_ERROR)
                    {
                        ThrowIfError(operation, message);
                        throw new NetlinkException(operation, Errno.ENOMSG, "acknowledged without a reply");
                    }
                    if (parser(message, out var value))
                    {
                        return value;
                    }
                    throw new NetlinkException(operation, Errno.EBADMSG, $"unparsable reply of type {message.Type}");
                }
                ThrowIfMalformed(operation, reader);
            }
        }
    }

    /// <summary>
    /// Sends a dump request (NLM_F_DUMP) and parses every part of the multipart reply until
    /// NLMSG_DONE. If the kernel flags any part NLM_F_DUMP_INTR (the table changed while it
    /// was being dumped, so the result may be inconsistent) the whole dump is restarted.
    /// </summary>
    public List<T> Dump<T>(string operation, Span<byte> request, NetlinkParser<T> parser)
    {
        lock (_lock)
        {
            var results = new List<T>();
            for (var attempt = 1; ; attempt++)
            {
                results.Clear();
                var seq = Send(operation, request, NLM_F_DUMP);
                var interrupted = false;
                var done = false;
                while (!done)
                {
                    var datagram = Receive(operation);
                    var reader = new NetlinkMessageReader(datagram);
                    while (reader.TryRead(out var message))
                    {
                        if (message.Sequence != seq || message.PortId != PortId)
                        {
                            continue;
                        }
                        if ((message.Flags & NLM_F_DUMP_INTR) != 0)
                        {
                            interrupted = true;
                        }
                        if (message.Type == NLMSG_DONE)
                        {
                            // Since Linux 4.x NLMSG_DONE carries an int: 0, or -errno if the dump failed midway.
                            if (message.Payload.Length >= 4 && BinaryPrimitives.ReadInt32LittleEndian(message.Payload) is < 0 and var err)
                            {
                                throw new NetlinkException(operation, (Errno)(-err), ReadExtAckMessage(message.Payload.Slice(4), message.Flags, out _));
                            }
                            done = true;
                            break;
                        }
                        if (message.Type == NLMSG_ERROR)
                        {
                            ThrowIfError(operation, message);
                            done = true;
                            break;
                        }
                        if (!interrupted && parser(message, out var value))
                        {
                            results.Add(value);
                        }
                    }
                    if (!done)
                    {
                        ThrowIfMalformed(operation, reader);
                    }
                }
                if (!interrupted)
                {
                    return results;
                }
                Interlocked.Increment(ref _interruptedDumps);
                if (attempt == MaxDumpAttempts)
                {
                    throw new NetlinkException(operation, Errno.EINTR, $"dump interrupted by concurrent changes {MaxDumpAttempts} times");
                }
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _fd.Dispose();

    private uint Send(string operation, Span<byte> request, ushort extraFlags)
    {
        var seq = ++_sequence;
        var flags = BinaryPrimitives.ReadUInt16LittleEndian(request.Slice(6));
        BinaryPrimitives.WriteUInt16LittleEndian(request.Slice(6), (ushort)(flags | NLM_F_REQUEST | extraFlags));
        BinaryPrimitives.WriteUInt32LittleEndian(request.Slice(8), seq);
        BinaryPrimitives.WriteUInt32LittleEndian(request.Slice(12), PortId);
        var kernel = new Libc.SockaddrNl { nl_family = Libc.AF_NETLINK };
        fixed (byte* p = request)
        {
            while (true)
            {
                var sent = Libc.SendTo(_fd, p, (nuint)request.Length, 0, &kernel, sizeof(Libc.SockaddrNl));
                if (sent >= 0)
                {
                    return seq;
                }
                var errno = Libc.LastErrno;
                if (errno != Errno.EINTR)
                {
                    throw new NetlinkException(operation, errno, "sending the request failed");
                }
            }
        }
    }

    /// <summary>Receives one datagram, growing the buffer first if the datagram is larger (MSG_PEEK|MSG_TRUNC).</summary>
    private ReadOnlySpan<byte> Receive(string operation)
    {
        var pfd = new Libc.PollFd { fd = _fd.Fd, events = Libc.POLLIN };
        while (true)
        {
            var ready = Libc.Poll(&pfd, 1, ReplyTimeoutMs);
            if (ready > 0)
            {
                break;
            }
            if (ready == 0)
            {
                throw new NetlinkException(operation, Errno.ETIMEDOUT, $"no reply from the kernel within {ReplyTimeoutMs / 1000} s");
            }
            if (Libc.LastErrno != Errno.EINTR)
            {
                throw new NetlinkException(operation, Libc.LastErrno, "waiting for the reply failed");
            }
        }
        var peeked = Recv(operation, MSG_PEEK_TRUNC);
        if (peeked > _receiveBuffer.Length)
        {
            _receiveBuffer = new byte[Math.Max(peeked, _receiveBuffer.Length * 2)];
        }
        var length = Recv(operation, 0);
        return _receiveBuffer.AsSpan(0, Math.Min(length, _receiveBuffer.Length));
    }

    private const int MSG_PEEK_TRUNC = Libc.MSG_PEEK | Libc.MSG_TRUNC;

    private int Recv(string operation, int flags)
    {
        fixed (byte* p = _receiveBuffer)
        {
            while (true)
            {
                var n = Libc.RecvFrom(_fd, p, (nuint)_receiveBuffer.Length, flags | Libc.MSG_TRUNC, null, null);
                if (n >= 0)
                {
                    return (int)n;
                }
                var errno = Libc.LastErrno;
                if (errno != Errno.EINTR)
                {
                    // ENOBUFS: the socket's receive queue overflowed and replies were lost.
                    throw new NetlinkException(operation, errno, "receiving the reply failed");
                }
            }
        }
    }

    private static void ThrowIfMalformed(string operation, NetlinkMessageReader reader)
    {
        if (reader.Status != NetlinkReadStatus.End)
        {
            throw new NetlinkException(operation, Errno.EBADMSG, $"malformed reply ({reader.Status} at byte {reader.Offset})");
        }
    }

    private static void ThrowIfError(string operation, NetlinkMessage message)
    {
        var errno = ReadError(message, out var text, out var offset);
        if (errno != Errno.None)
        {
            throw new NetlinkException(operation, errno, text, offset);
        }
    }

    /// <summary>
    /// Reads an NLMSG_ERROR payload (struct nlmsgerr): int error; struct nlmsghdr msg; then,
    /// unless NLM_F_CAPPED, the rest of our request; then, with NLM_F_ACK_TLVS, the
    /// extended-ack attributes (net/netlink/af_netlink.c netlink_ack). Returns
    /// <see cref="Errno.None"/> for a plain acknowledgement; never throws.
    /// </summary>
    internal static Errno ReadError(NetlinkMessage message, out string? kernelMessage, out int? offset)
    {
        kernelMessage = null;
        offset = null;
        var payload = message.Payload;
        if (payload.Length < 4)
        {
            kernelMessage = "truncated error message";
            return Errno.EBADMSG;
        }
        var error = BinaryPrimitives.ReadInt32LittleEndian(payload);
        if (error == 0)
        {
            return Errno.None;
        }
        var tlvOffset = 4 + NLMSG_HDRLEN;
        if ((message.Flags & NLM_F_CAPPED) == 0 && payload.Length >= 4 + NLMSG_HDRLEN)
        {
            // Not capped: the whole request is echoed; its own nlmsg_len says how long it is.
            tlvOffset = 4 + (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(payload.Slice(4)), (uint)payload.Length);
        }
        // The TLVs start at the next 4-byte boundary after the echoed request.
        var aligned = (tlvOffset + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
        if (aligned <= payload.Length)
        {
            kernelMessage = ReadExtAckMessage(payload.Slice(aligned), message.Flags, out offset);
        }
        return error < 0 ? (Errno)(-error) : Errno.EPROTO;
    }

    private static string? ReadExtAckMessage(ReadOnlySpan<byte> tlvs, ushort flags, out int? offset)
    {
        offset = null;
        if ((flags & NLM_F_ACK_TLVS) == 0)
        {
            return null;
        }
        string? text = null;
        var attrs = new NetlinkAttributeReader(tlvs);
        while (attrs.TryRead(out var type, out var value))
        {
            if (type == NLMSGERR_ATTR_MSG)
            {
                var end = value.IndexOf((byte)0);
                text = Encoding.UTF8.GetString(end >= 0 ? value.Slice(0, end) : value);
            }
            else if (type == NLMSGERR_ATTR_OFFS && value.Length >= 4)
            {
                offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(value);
            }
        }
        return text;
    }

    private static void SetOption(SafeFileDescriptor fd, int option, int value, bool required)
    {
        if (Libc.SetSockOpt(fd, SOL_NETLINK, option, &value, sizeof(int)) != 0 && required)
        {
            throw new NetlinkException($"set netlink socket option {option}", Libc.LastErrno);
        }
    }
}
