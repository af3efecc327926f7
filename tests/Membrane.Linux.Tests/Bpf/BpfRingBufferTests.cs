using System.Buffers.Binary;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;

namespace Membrane.Linux.Tests.Bpf;

/// <summary>Drop records written by the datapath (driven by BPF_PROG_TEST_RUN) and read in C#.</summary>
[Collection("kernel")]
public sealed class BpfRingBufferTests
{
    [SkippableFact]
    public async Task DroppedPacketsArriveAsDropRecords()
    {
        using var scope = new BpfTestScope(BpfFeature.RingBuffer);
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.TestFilter));
        using var prog = obj.FindProgram("test_filter_ingress");
        using var verdict = obj.FindMap<VerdictKey, VerdictValue>("verdict");
        await using var reader = new BpfRingBufferReader(obj.FindMap("events"), slots: 64);
        verdict.Update(VerdictKey.For(TestPackets.Udp, 53), new VerdictValue { Action = VerdictAction.Drop });

        var sent = new List<byte[]>();
        for (var i = 0; i < 10; i++)
        {
            var packet = i % 2 == 0
                ? TestPackets.Ipv4(TestPackets.Udp, (ushort)(1000 + i), 53, payloadLength: 100)
                : TestPackets.Ipv6(TestPackets.Udp, (ushort)(1000 + i), 53, payloadLength: 8);
            Assert.Equal(BpfObjects.TcActShot, prog.TestRun(packet, new byte[packet.Length]).ReturnValue);
            sent.Add(packet);
        }
        // An allowed packet writes no record.
        var allowed = TestPackets.Ipv4(TestPackets.Udp, 1, 80);
        Assert.Equal(BpfObjects.TcActOk, prog.TestRun(allowed, new byte[allowed.Length]).ReturnValue);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = 0;
        var ids = new HashSet<uint>();
        await foreach (var record in reader.ReadAllAsync(timeout.Token))
        {
            var expected = sent[received];
            Assert.True(DatapathEventReader.TryCreate(record.Span, out var ev, out var error, out var offset), $"{error} at {offset}");
            Assert.Equal(EventType.Drop, ev.Type);
            Assert.Equal(120, ev.Length);
            Assert.Equal(0x11, record.Span[0]); // version 1, type 1 in one byte
            Assert.Equal(120, BinaryPrimitives.ReadUInt16BigEndian(record.Span[2..]));
            Assert.True(ids.Add(ev.Id), "record ids are unique");
            Assert.True(ev.TryReadCommon(out var drop, out error), error.ToString());
            Assert.Equal((int)DropReason.Policy, drop.Reason);
            Assert.Equal(Direction.Ingress, drop.DropDirection);
            Assert.Equal(TestPackets.Udp, drop.L4Protocol);
            Assert.Equal(expected.Length, drop.PacketLength);
            Assert.Equal(1, drop.Ifindex); // BPF_PROG_TEST_RUN runs tc programs on the loopback device
            var captured = Math.Min(expected.Length, DropEvent.CaptureLength);
            Assert.Equal(expected.AsSpan(0, captured).ToArray(), drop.Packet.ToArray());
            if (++received == sent.Count)
            {
                break;
            }
        }
        Assert.Equal(10, received);
        Assert.Equal(10, reader.RecordsReceived);
        Assert.Equal(0, reader.RecordsLost);
    }

    [SkippableFact]
    public async Task ASlowConsumerLosesRecordsCountedNotBlocking()
    {
        using var scope = new BpfTestScope(BpfFeature.RingBuffer);
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.TestFilter));
        using var prog = obj.FindProgram("test_filter_ingress");
        using var verdict = obj.FindMap<VerdictKey, VerdictValue>("verdict");
        await using var reader = new BpfRingBufferReader(obj.FindMap("events"), slots: 4, slotSize: 64);
        verdict.Update(VerdictKey.For(TestPackets.Udp, 0), new VerdictValue { Action = VerdictAction.Drop });

        var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 2);
        prog.TestRun(packet, new byte[packet.Length], repeat: 20);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (reader.RecordsReceived < 20 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Assert.Equal(20, reader.RecordsReceived);
        Assert.Equal(16, reader.RecordsLost);      // 4 slots waited for us, the rest were lost
        Assert.Equal(4, reader.RecordsTruncated);  // 120-byte records cut to 64-byte slots
        var buffer = new byte[256];
        var read = 0;
        while (reader.TryRead(buffer, out var length))
        {
            Assert.Equal(64, length);
            read++;
        }
        Assert.Equal(4, read);
    }

    [SkippableFact]
    public void OnlyRingBufferMapsCanBeRead()
    {
        using var scope = new BpfTestScope();
        var e = Assert.Throws<ArgumentException>(() => new BpfRingBufferReader(BpfMap.Create(BpfMapType.Hash, 4, 4, 4, "mb_nothing")));
        Assert.StartsWith("failed to read map mb_nothing: it is a Hash map", e.Message, StringComparison.Ordinal);
        // The scope checks that the map's fd, handed over to the reader, was closed.
    }

    [SkippableFact]
    public async Task DisposeEndsTheEnumerationAndStopsThePollThread()
    {
        using var scope = new BpfTestScope(BpfFeature.RingBuffer);
        var reader = new BpfRingBufferReader(BpfMap.Create(BpfMapType.RingBuffer, 0, 0, 4096, "mb_ring"));
        var consumer = Task.Run(async () =>
        {
            var n = 0;
            await foreach (var _ in reader.ReadAllAsync())
            {
                n++;
            }
            return n;
        });
        await Task.Delay(200);
        reader.Dispose();
        Assert.Equal(0, await consumer.WaitAsync(TimeSpan.FromSeconds(5)));
        reader.Dispose(); // idempotent
    }
}

/// <summary>
/// The reader's hot path (poll thread copy, channel hand-off, enumeration) allocates nothing
/// per record. Measures the process's allocations, so it runs alone: xUnit runs collections with
/// parallelisation disabled after all the others, with nothing beside them.
/// </summary>
[CollectionDefinition("allocation", DisableParallelization = true)]
public sealed class AllocationCollection;

[Collection("allocation")]
public sealed class BpfRingBufferAllocationTests
{
    [SkippableFact]
    public async Task ReadingRecordsDoesNotAllocatePerRecord()
    {
        using var scope = new BpfTestScope(BpfFeature.RingBuffer);
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.TestFilter));
        using var prog = obj.FindProgram("test_filter_ingress");
        using var verdict = obj.FindMap<VerdictKey, VerdictValue>("verdict");
        await using var reader = new BpfRingBufferReader(obj.FindMap("events"), slots: 8192, slotSize: 128);
        verdict.Update(VerdictKey.For(TestPackets.Udp, 0), new VerdictValue { Action = VerdictAction.Drop });
        var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 2);

        const int Warmup = 100, Measured = 5000;
        // 5100 records of 128 bytes (120 + the kernel's 8-byte record header) fit the 1 MiB ring.
        prog.TestRun(packet, new byte[packet.Length], repeat: Warmup + Measured);
        // Measure the per-record path only: let the poll thread hand every record over first.
        // A consumer that outruns the poll thread parks on the channel, and each park
        // allocates the channel's waiter (per wait, not per record) — on a slow machine that
        // was hundreds of waits and ~100 KB, which is not what this test is about.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (reader.RecordsReceived < Warmup + Measured && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Assert.Equal(Warmup + Measured, reader.RecordsReceived);

        var count = 0;
        long checksum = 0;
        long before = 0;
        await foreach (var record in reader.ReadAllAsync())
        {
            checksum += record.Span[^1];
            if (++count == Warmup)
            {
                before = GC.GetTotalAllocatedBytes(precise: true);
            }
            else if (count == Warmup + Measured)
            {
                break;
            }
        }
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal(Warmup + Measured, count);
        Assert.Equal(0, reader.RecordsLost);
        // Copying each record into a fresh array would be ≥ 144 B × 5000 = 720 KB. Allow a
        // little for other threads of the test host.
        Assert.True(allocated < 64 * 1024, $"{allocated} bytes allocated for {Measured} records");
        GC.KeepAlive(checksum);
    }
}
