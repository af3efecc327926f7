namespace Membrane.Agent.Flows;

/// <summary>What the agent knows about a local endpoint when a record names it (immutable; shared by the flows that name it).</summary>
public sealed record EndpointFacts(long Id, uint Identity, string? Namespace, string? PodName, IReadOnlyList<string> Labels,
    string? HostInterface, int HostIfIndex);

/// <summary>
/// One entry of the <see cref="FlowRing"/>, copied out: a datapath record as it arrived, with
/// the endpoints it names, or a notice of lost records (<see cref="Record"/> empty).
/// </summary>
public readonly record struct FlowEntry(long Sequence, DateTimeOffset Time, ReadOnlyMemory<byte> Record, int RecordLength,
    EndpointFacts? Local, EndpointFacts? Source, EndpointFacts? Destination, ulong Lost, string? LostSource)
{
    /// <summary>True for a notice of lost records.</summary>
    public bool IsLostNotice => Lost > 0;
}

/// <summary>
/// The observer's bounded buffer: the last <see cref="Capacity"/> records with sequence numbers,
/// written by one thread without allocating (each slot owns a fixed byte array for the record)
/// and read by any number of API streams, which copy entries out. A reader that falls more than
/// the capacity behind learns how many entries it missed (<see cref="Read"/>), as Hubble's ring
/// reader does.
/// </summary>
public sealed class FlowRing
{
    /// <summary>Bytes kept of a record: the largest record type (struct trace_event, 128 bytes).</summary>
    public const int SlotBytes = 128;

    private readonly Slot[] _slots;
    private readonly Lock _lock = new();
    private long _next; // sequence of the next entry written
    private TaskCompletionSource? _waiter;

    private struct Slot
    {
        public long TimeTicks;
        public int Length;
        public int RecordLength;
        public byte[] Bytes;
        public EndpointFacts? Local, Source, Destination;
        public ulong Lost;
        public string? LostSource;
    }

    /// <summary>Creates a ring of <paramref name="capacity"/> entries.</summary>
    public FlowRing(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _slots = new Slot[capacity];
        for (var i = 0; i < capacity; i++)
        {
            _slots[i].Bytes = new byte[SlotBytes];
        }
    }

    /// <summary>How many entries the ring keeps.</summary>
    public int Capacity => _slots.Length;

    /// <summary>The sequence number the next entry gets (= entries written so far).</summary>
    public long Next
    {
        get
        {
            lock (_lock)
            {
                return _next;
            }
        }
    }

    /// <summary>Entries held now.</summary>
    public int Count => (int)Math.Min(Next, Capacity);

    /// <summary>Appends a record (cut to <see cref="SlotBytes"/>) with the endpoints it names.</summary>
    public void Append(DateTimeOffset time, ReadOnlySpan<byte> record, EndpointFacts? local, EndpointFacts? source, EndpointFacts? destination)
    {
        lock (_lock)
        {
            ref var slot = ref _slots[_next % _slots.Length];
            slot.TimeTicks = time.UtcTicks;
            slot.Length = Math.Min(record.Length, SlotBytes);
            slot.RecordLength = record.Length;
            record[..slot.Length].CopyTo(slot.Bytes);
            slot.Local = local;
            slot.Source = source;
            slot.Destination = destination;
            slot.Lost = 0;
            slot.LostSource = null;
            Published();
        }
    }

    /// <summary>Appends a notice that <paramref name="lost"/> records never arrived, and where they were lost.</summary>
    public void AppendLost(DateTimeOffset time, ulong lost, string source)
    {
        lock (_lock)
        {
            ref var slot = ref _slots[_next % _slots.Length];
            slot.TimeTicks = time.UtcTicks;
            slot.Length = 0;
            slot.RecordLength = 0;
            slot.Local = slot.Source = slot.Destination = null;
            slot.Lost = lost;
            slot.LostSource = source;
            Published();
        }
    }

    // Under the lock: the entry is complete; wake the streams waiting for one.
    private void Published()
    {
        _next++;
        if (_waiter is { } waiter)
        {
            _waiter = null;
            waiter.TrySetResult();
        }
    }

    /// <summary>
    /// Copies the entries from sequence <paramref name="from"/> on (at most <paramref name="max"/>)
    /// into <paramref name="into"/>; returns how many entries before them were already overwritten.
    /// </summary>
    public long Read(long from, int max, List<FlowEntry> into)
    {
        lock (_lock)
        {
            var oldest = Math.Max(0, _next - _slots.Length);
            var missed = from < oldest ? oldest - from : 0;
            for (var seq = Math.Max(from, oldest); seq < _next && max > 0; seq++, max--)
            {
                ref var slot = ref _slots[seq % _slots.Length];
                into.Add(new FlowEntry(seq, new DateTimeOffset(slot.TimeTicks, TimeSpan.Zero), slot.Bytes.AsSpan(0, slot.Length).ToArray(),
                    slot.RecordLength, slot.Local, slot.Source, slot.Destination, slot.Lost, slot.LostSource));
            }
            return missed;
        }
    }

    /// <summary>Completes once an entry with sequence ≥ <paramref name="sequence"/> exists, or <paramref name="ct"/> fires.</summary>
    public Task WaitForAsync(long sequence, CancellationToken ct)
    {
        Task task;
        lock (_lock)
        {
            if (_next > sequence)
            {
                return Task.CompletedTask;
            }
            _waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            task = _waiter.Task;
        }
        return task.WaitAsync(ct);
    }
}
