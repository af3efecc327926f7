using System.Buffers.Binary;

namespace Membrane.Linux.Bpf.Datapath;

/// <summary>Why a ring-buffer record could not be read.</summary>
public enum EventReadError
{
    None = 0,
    /// <summary>Fewer bytes than the header, or than the header's length says.</summary>
    Truncated,
    /// <summary>The frame version is not 1.</summary>
    UnsupportedVersion,
    /// <summary>The record is valid but of another type than asked for.</summary>
    WrongType,
    /// <summary>The length field is smaller than the header or the type's body.</summary>
    BadLength,
}

/// <summary>
/// Reads ring-buffer records (seed frame header + body) from bytes without copying or
/// throwing (CONVENTIONS: Try-APIs with a reason and byte offset).
/// </summary>
public readonly ref struct DatapathEventReader
{
    private readonly ReadOnlySpan<byte> _record;

    private DatapathEventReader(ReadOnlySpan<byte> record) => _record = record;

    /// <summary>Size of the seed frame header.</summary>
    public const int HeaderLength = 8;

    /// <summary>Validates the header of <paramref name="record"/>; on failure <paramref name="offset"/> is where the problem is.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> record, out DatapathEventReader reader, out EventReadError error, out int offset)
    {
        reader = default;
        offset = 0;
        if (record.Length < HeaderLength)
        {
            error = EventReadError.Truncated;
            offset = record.Length;
            return false;
        }
        if (record[0] >> 4 != 1)
        {
            error = EventReadError.UnsupportedVersion;
            return false;
        }
        var length = BinaryPrimitives.ReadUInt16BigEndian(record[2..]);
        if (length < HeaderLength)
        {
            error = EventReadError.BadLength;
            offset = 2;
            return false;
        }
        if (length > record.Length)
        {
            error = EventReadError.Truncated;
            offset = record.Length;
            return false;
        }
        reader = new DatapathEventReader(record[..length]);
        error = EventReadError.None;
        return true;
    }

    /// <summary>The record type.</summary>
    public EventType Type => (EventType)(_record[0] & 0x0f);

    /// <summary>The record's subtype flags.</summary>
    public byte Flags => _record[1];

    /// <summary>Total length (header included).</summary>
    public int Length => _record.Length;

    /// <summary>The record id.</summary>
    public uint Id => BinaryPrimitives.ReadUInt32BigEndian(_record[4..]);

    /// <summary>The body after the header.</summary>
    public ReadOnlySpan<byte> Body => _record[HeaderLength..];

    /// <summary>
    /// The fields every record type shares (offsets 8..19: reason, captured, ifindex, packet
    /// length) and its captured bytes. False for an unknown type or a record too short for its type.
    /// </summary>
    public bool TryReadCommon(out EventCommonView common, out EventReadError error)
    {
        common = default;
        var dataOffset = Type switch
        {
            EventType.Drop => DropEvent.DataOffset,
            EventType.Trace or EventType.PolicyVerdict => TraceEvent.DataOffset,
            _ => -1,
        };
        if (dataOffset < 0)
        {
            error = EventReadError.WrongType;
            return false;
        }
        if (_record.Length < dataOffset)
        {
            error = EventReadError.BadLength;
            return false;
        }
        common = new EventCommonView(_record, dataOffset);
        error = EventReadError.None;
        return true;
    }
}

/// <summary>
/// The part every record type shares, read in place: reason (0 for a trace or an allowed
/// verdict), ifindex, packet length, the captured bytes, and the type-specific fields at
/// their offsets (struct drop_event, trace_event, policy_verdict_event).
/// </summary>
public readonly ref struct EventCommonView
{
    private readonly ReadOnlySpan<byte> _r;
    private readonly int _dataOffset;

    internal EventCommonView(ReadOnlySpan<byte> record, int dataOffset)
    {
        _r = record;
        _dataOffset = dataOffset;
    }

    /// <summary>The record type.</summary>
    public EventType Type => (EventType)(_r[0] & 0x0f);

    /// <summary>The header's subtype byte: a trace's <see cref="TracePoint"/>, a verdict's policy direction.</summary>
    public byte Flags => _r[1];

    /// <summary>The drop reason (0: not dropped).</summary>
    public int Reason => BinaryPrimitives.ReadUInt16BigEndian(_r[8..]);

    /// <summary>The device the record is about.</summary>
    public int Ifindex => (int)BinaryPrimitives.ReadUInt32BigEndian(_r[12..]);

    /// <summary>The whole packet's length.</summary>
    public int PacketLength => (int)BinaryPrimitives.ReadUInt32BigEndian(_r[16..]);

    /// <summary>IPPROTO_*, or 0 when the packet was not parsed that far.</summary>
    public byte L4Protocol => _r[Type switch { EventType.Drop => 21, EventType.Trace => 29, _ => 30 }];

    /// <summary>A drop's hook direction.</summary>
    public Direction DropDirection => Type == EventType.Drop ? (Direction)_r[20] : Direction.Unknown;

    /// <summary>A trace's source identity, a verdict's peer identity (0 for a drop).</summary>
    public uint Identity1 => Type == EventType.Drop ? 0 : BinaryPrimitives.ReadUInt32BigEndian(_r[20..]);

    /// <summary>A trace's destination identity, a verdict's rule (0 for a drop).</summary>
    public uint Identity2OrRule => Type == EventType.Drop ? 0 : BinaryPrimitives.ReadUInt32BigEndian(_r[24..]);

    /// <summary>A trace's conntrack result (enum ct_result), 0 otherwise.</summary>
    public byte ConntrackResult => Type == EventType.Trace ? _r[28] : (byte)0;

    /// <summary>A trace's TCP flags, 0 otherwise.</summary>
    public byte TcpFlags => Type == EventType.Trace ? _r[30] : (byte)0;

    /// <summary>A verdict's enum policy_match, 0 otherwise.</summary>
    public byte PolicyMatch => Type == EventType.PolicyVerdict ? _r[31] : (byte)0;

    /// <summary>The packet's first bytes (as many as were captured and fit in the record).</summary>
    public ReadOnlySpan<byte> Packet
    {
        get
        {
            var captured = BinaryPrimitives.ReadUInt16BigEndian(_r[10..]);
            return _r.Slice(_dataOffset, Math.Min(captured, _r.Length - _dataOffset));
        }
    }
}
