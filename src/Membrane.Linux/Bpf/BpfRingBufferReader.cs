using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>
/// One record read from a BPF ring buffer. Its bytes are valid until the enumeration moves
/// to the next record (the buffer then goes back to the reader's pool), like a
/// <c>PipeReader</c> segment: copy what you keep.
/// </summary>
public readonly struct BpfRingBufferRecord
{
    private readonly byte[] _buffer;
    private readonly int _length;

    internal BpfRingBufferRecord(byte[] buffer, int length)
    {
        _buffer = buffer;
        _length = length;
    }

    /// <summary>The record's bytes, as the BPF program wrote them.</summary>
    public ReadOnlySpan<byte> Span => new(_buffer, 0, _length);

    /// <summary>The record's bytes as memory (same lifetime rule).</summary>
    public ReadOnlyMemory<byte> Memory => new(_buffer, 0, _length);

    /// <summary>How long the record is (it may exceed what was kept when longer than the reader's slot size: see <see cref="BpfRingBufferReader.RecordsTruncated"/>).</summary>
    public int Length => _length;
}

/// <summary>
/// Reads a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) on a dedicated thread with libbpf's
/// ring_buffer__poll and hands the records to C# through a bounded channel. The poll
/// thread copies each record into a slot taken from a fixed pool of buffers, so the hot
/// path allocates nothing; when the consumer falls behind and no slot is free the record is
/// counted in <see cref="RecordsLost"/> rather than blocking the kernel's producer side.
/// </summary>
public sealed unsafe class BpfRingBufferReader : IDisposable, IAsyncDisposable
{
    private readonly BpfMap _map;
    private readonly Channel<byte[]> _free;
    private readonly Channel<(byte[] Buffer, int Length)> _records;
    private readonly int _slotSize;
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private GCHandle _self;
    private nint _ringBuffer;
    private volatile bool _stopping;
    private long _received;
    private long _lost;
    private long _truncated;
    private BpfException? _pollError; // set by the poll thread before it completes the channel

    /// <summary>
    /// Starts reading <paramref name="map"/> (a ring buffer; this reader takes ownership).
    /// <paramref name="slots"/> records may wait for the consumer at a time, each up to
    /// <paramref name="slotSize"/> bytes (longer records are cut and counted).
    /// </summary>
    public BpfRingBufferReader(BpfMap map, int slots = 4096, int slotSize = 512)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slots);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(slotSize);
        if (map.Type != BpfMapType.RingBuffer)
        {
            map.Dispose(); // ownership was passed in, as with BpfMap<TKey, TValue>
            throw new ArgumentException($"failed to read map {map.Name}: it is a {map.Type} map, not a ring buffer", nameof(map));
        }
        _map = map;
        _slotSize = slotSize;
        _free = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(slots) { SingleReader = true, SingleWriter = false });
        _records = Channel.CreateBounded<(byte[], int)>(new BoundedChannelOptions(slots) { SingleReader = true, SingleWriter = true });
        for (var i = 0; i < slots; i++)
        {
            _free.Writer.TryWrite(GC.AllocateUninitializedArray<byte>(slotSize));
        }

        LibbpfLog.EnsureInstalled();
        _self = GCHandle.Alloc(this);
        _ringBuffer = Libbpf.RingBufferNew(map.Handle.Fd, &OnSample, GCHandle.ToIntPtr(_self), 0);
        if (_ringBuffer == 0)
        {
            var errno = (Errno)Marshal.GetLastPInvokeError();
            _self.Free();
            map.Dispose();
            throw new BpfException($"open ring buffer {map.Name}", errno == Errno.None ? Errno.EINVAL : errno);
        }
        _thread = new Thread(PollLoop) { IsBackground = true, Name = $"bpf-ringbuf-{map.Name}" };
        _thread.Start();
    }

    /// <summary>Records copied out of the kernel's ring so far.</summary>
    public long RecordsReceived => Interlocked.Read(ref _received);

    /// <summary>Records dropped because every slot was waiting for the consumer.</summary>
    public long RecordsLost => Interlocked.Read(ref _lost);

    /// <summary>Records longer than the slot size, delivered cut to the slot size.</summary>
    public long RecordsTruncated => Interlocked.Read(ref _truncated);

    /// <summary>
    /// The records in arrival order until the reader is disposed or
    /// <paramref name="cancellationToken"/> fires. One consumer at a time.
    /// </summary>
    public async IAsyncEnumerable<BpfRingBufferRecord> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var reader = _records.Reader;
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (reader.TryRead(out var item))
            {
                try
                {
                    yield return new BpfRingBufferRecord(item.Buffer, item.Length);
                }
                finally
                {
                    _free.Writer.TryWrite(item.Buffer);
                }
            }
        }
        if (_pollError is { } error)
        {
            throw error;
        }
    }

    /// <summary>Takes one waiting record without blocking; copies it into <paramref name="destination"/> (cut to its length) and returns its slot to the pool.</summary>
    public bool TryRead(Span<byte> destination, out int length)
    {
        if (_records.Reader.TryRead(out var item))
        {
            length = item.Length;
            item.Buffer.AsSpan(0, Math.Min(item.Length, destination.Length)).CopyTo(destination);
            _free.Writer.TryWrite(item.Buffer);
            return true;
        }
        length = 0;
        return false;
    }

    private void PollLoop()
    {
        try
        {
            while (!_stopping)
            {
                // A short timeout bounds how long Dispose waits for this thread. The datapath
                // wakes readers only once a batch has built up (bpf/lib/events.h
                // event_submit_flags), and ring_buffer__poll reads nothing when it times out,
                // so whatever arrived without a wakeup is consumed here.
                var ret = Libbpf.RingBufferPoll(_ringBuffer, 100);
                if (ret == 0)
                {
                    ret = Libbpf.RingBufferConsume(_ringBuffer);
                }
                if (ret < 0 && ret != -(int)Errno.EINTR)
                {
                    _pollError = new BpfException($"poll ring buffer {_map.Name}", ErrnoExtensions.FromNegative(ret));
                    break;
                }
            }
        }
        finally
        {
            _records.Writer.TryComplete();
            _stopped.TrySetResult();
        }
    }

    // int (*)(void *ctx, void *data, size_t size), called by ring_buffer__poll on the poll
    // thread. It must not throw into native code, and returns 0 to keep consuming.
    [UnmanagedCallersOnly]
    private static int OnSample(nint context, byte* data, nuint size)
    {
        try
        {
            var self = (BpfRingBufferReader)GCHandle.FromIntPtr(context).Target!;
            self.Deliver(new ReadOnlySpan<byte>(data, (int)Math.Min(size, int.MaxValue)));
        }
        catch (Exception)
        {
            // Nothing may escape; the record is lost.
        }
        return 0;
    }

    private void Deliver(ReadOnlySpan<byte> record)
    {
        Interlocked.Increment(ref _received);
        if (!_free.Reader.TryRead(out var buffer))
        {
            Interlocked.Increment(ref _lost);
            return;
        }
        var length = record.Length;
        if (length > _slotSize)
        {
            Interlocked.Increment(ref _truncated);
            length = _slotSize;
        }
        record[..length].CopyTo(buffer);
        if (!_records.Writer.TryWrite((buffer, length)))
        {
            _free.Writer.TryWrite(buffer);
            Interlocked.Increment(ref _lost);
        }
    }

    /// <summary>Stops the poll thread, frees libbpf's reader and closes the map fd; pending records are discarded.</summary>
    public void Dispose()
    {
        if (_ringBuffer == 0)
        {
            return;
        }
        _stopping = true;
        _thread.Join();
        Libbpf.RingBufferFree(_ringBuffer);
        _ringBuffer = 0;
        _self.Free();
        _map.Dispose();
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
