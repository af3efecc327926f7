using System.Runtime.InteropServices;
using Membrane.Linux.Bpf;

namespace Membrane.Linux.Tests.Bpf;

[StructLayout(LayoutKind.Sequential)]
internal struct Ipv4LpmKey
{
    public uint PrefixLength;  // host order, first as the LPM trie requires (struct bpf_lpm_trie_key)
    public uint Address;       // network byte order

    public static Ipv4LpmKey Of(string cidr)
    {
        var parts = cidr.Split('/');
        var bytes = System.Net.IPAddress.Parse(parts[0]).GetAddressBytes();
        return new Ipv4LpmKey { PrefixLength = uint.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), Address = MemoryMarshal.Read<uint>(bytes) };
    }
}

[Collection("kernel")]
public sealed class BpfMapTests
{
    [SkippableFact]
    public void HashMapHonoursUpdateFlags()
    {
        using var scope = new BpfTestScope();
        using var map = BpfMap<uint, ulong>.Create(BpfMapType.Hash, 8, "mb_hash");
        Assert.Equal(BpfMapType.Hash, map.Map.Type);
        Assert.Equal("mb_hash", map.Map.Name);

        Assert.False(map.TryLookup(1, out _));
        Assert.Equal(Errno.ENOENT, map.TryUpdate(1, 10, BpfUpdateFlags.Exist));
        map.Update(1, 10, BpfUpdateFlags.NoExist);
        Assert.Equal(Errno.EEXIST, map.TryUpdate(1, 11, BpfUpdateFlags.NoExist));
        var e = Assert.Throws<BpfException>(() => map.Update(1, 11, BpfUpdateFlags.NoExist));
        Assert.Equal("failed to update an element of map mb_hash (NoExist): File exists", e.Message);
        map.Update(1, 12, BpfUpdateFlags.Exist);
        Assert.Equal(12ul, map[1]);
        map[2] = 20;
        Assert.Equal([1u, 2u], map.Keys.Order().ToArray());
        Assert.True(map.Delete(1));
        Assert.False(map.Delete(1));
        Assert.Throws<KeyNotFoundException>(() => map[1]);
        Assert.Equal([2u], map.Keys.ToArray());
    }

    [SkippableFact]
    public void HashMapRefusesMoreThanMaxEntries()
    {
        using var scope = new BpfTestScope();
        using var map = BpfMap<uint, uint>.Create(BpfMapType.Hash, 2);
        map[1] = 1;
        map[2] = 2;
        Assert.Equal(Errno.E2BIG, map.TryUpdate(3, 3));
    }

    [SkippableFact]
    public void LruHashEvictsInsteadOfRefusing()
    {
        using var scope = new BpfTestScope();
        // The LRU's free list is per CPU; a size well above the CPU count keeps the test deterministic enough.
        const int capacity = 256;
        using var map = BpfMap<uint, uint>.Create(BpfMapType.LruHash, capacity);
        for (uint i = 0; i < capacity * 4; i++)
        {
            Assert.Equal(Errno.None, map.TryUpdate(i, i));
        }
        var count = map.Keys.Count();
        Assert.InRange(count, 1, capacity);
        Assert.True(map.TryLookup(capacity * 4 - 1, out var last));
        Assert.Equal((uint)(capacity * 4 - 1), last);
    }

    [SkippableFact]
    public void LpmTrieReturnsTheLongestMatchingPrefix()
    {
        using var scope = new BpfTestScope(BpfFeature.LpmTrie);
        using var map = BpfMap<Ipv4LpmKey, uint>.Create(BpfMapType.LpmTrie, 16, "mb_lpm");
        map[Ipv4LpmKey.Of("198.18.0.0/15")] = 15;
        map[Ipv4LpmKey.Of("198.18.0.0/16")] = 16;
        map[Ipv4LpmKey.Of("198.18.7.0/24")] = 24;

        Assert.Equal(24u, map[Ipv4LpmKey.Of("198.18.7.9/32")]);
        Assert.Equal(16u, map[Ipv4LpmKey.Of("198.18.8.1/32")]);
        Assert.Equal(15u, map[Ipv4LpmKey.Of("198.19.0.1/32")]);
        Assert.False(map.TryLookup(Ipv4LpmKey.Of("10.0.0.1/32"), out _));
        Assert.True(map.Delete(Ipv4LpmKey.Of("198.18.7.0/24")));
        Assert.Equal(16u, map[Ipv4LpmKey.Of("198.18.7.9/32")]);
        Assert.Equal(2, map.Keys.Count());
    }

    [SkippableFact]
    public void ArrayHasEveryIndexAndCannotDelete()
    {
        using var scope = new BpfTestScope();
        using var map = BpfMap<uint, ulong>.Create(BpfMapType.Array, 4);
        Assert.Equal(0ul, map[3]);
        map[3] = 33;
        Assert.Equal(33ul, map[3]);
        Assert.False(map.TryLookup(4, out _));
        Assert.Equal(Errno.EEXIST, map.TryUpdate(0, 1, BpfUpdateFlags.NoExist));
        var e = Assert.Throws<BpfException>(() => map.Delete(0));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal([0u, 1u, 2u, 3u], map.Keys.ToArray());
    }

    [SkippableTheory]
    [InlineData(BpfMapType.PerCpuArray)]
    [InlineData(BpfMapType.PerCpuHash)]
    [InlineData(BpfMapType.LruPerCpuHash)]
    public void PerCpuMapsHoldOneValuePerPossibleCpu(BpfMapType type)
    {
        using var scope = new BpfTestScope();
        // A 4-byte value: each CPU's slot is padded to 8 bytes in the syscall buffer.
        using var map = BpfPerCpuMap<uint, uint>.Create(type, 4);
        Assert.Equal(PossibleCpusFromSysfs(), map.CpuCount);
        Assert.Equal(8 * map.CpuCount, map.Map.LookupSize);
        var values = Enumerable.Range(0, map.CpuCount).Select(i => (uint)(i * 10 + 1)).ToArray();
        map.Update(2, values);
        var read = new uint[map.CpuCount];
        Assert.True(map.TryLookup(2, read));
        Assert.Equal(values, read);
        Assert.Throws<ArgumentException>(() => map.TryLookup(2, new uint[map.CpuCount + 1]));
        Assert.Contains(2u, map.Keys);
    }

    // "0-1" or "0,2-3" (Documentation/ABI/testing/sysfs-devices-system-cpu).
    private static int PossibleCpusFromSysfs() =>
        File.ReadAllText("/sys/devices/system/cpu/possible").Trim().Split(',')
            .Sum(r => r.Split('-') is [var a, var b] ? int.Parse(b, System.Globalization.CultureInfo.InvariantCulture) - int.Parse(a, System.Globalization.CultureInfo.InvariantCulture) + 1 : 1);

    [SkippableFact]
    public void WrongSizedTypesAreRejected()
    {
        using var scope = new BpfTestScope();
        var raw = BpfMap.Create(BpfMapType.Hash, 4, 8, 4);
        var e = Assert.Throws<ArgumentException>(() => new BpfMap<uint, uint>(raw));
        Assert.StartsWith("failed to wrap map", e.Message, StringComparison.Ordinal);
        var perCpu = BpfMap.Create(BpfMapType.PerCpuArray, 4, 8, 4);
        Assert.Throws<ArgumentException>(() => new BpfMap<uint, ulong>(perCpu));
    }

    [SkippableFact]
    public void BatchOperationsWalkUpdateAndDelete()
    {
        using var scope = new BpfTestScope();
        using var map = BpfMap<uint, ulong>.Create(BpfMapType.Hash, 1024);
        var keys = Enumerable.Range(0, 500).Select(i => (uint)i).ToArray();
        var values = keys.Select(k => (ulong)k * 3).ToArray();
        Assert.Equal(500, map.UpdateBatch(keys, values));

        var seen = new Dictionary<uint, ulong>();
        var cursor = map.CreateBatchCursor();
        var kb = new uint[64];
        var vb = new ulong[64];
        var calls = 0;
        while (!cursor.IsDone)
        {
            var n = map.LookupBatch(cursor, kb, vb);
            for (var i = 0; i < n; i++)
            {
                seen.Add(kb[i], vb[i]);
            }
            Assert.True(++calls < 100);
        }
        Assert.Equal(500, seen.Count);
        Assert.All(seen, kv => Assert.Equal(kv.Key * 3ul, kv.Value));

        Assert.Equal(250, map.DeleteBatch(keys.AsSpan(0, 250)));
        Assert.Equal(250, map.Keys.Count());
        Assert.Throws<BpfException>(() => map.DeleteBatch(keys.AsSpan(0, 1)));
    }

    [SkippableFact]
    public void PerCpuBatchLookupSpreadsValuesPerCpu()
    {
        using var scope = new BpfTestScope();
        using var map = BpfPerCpuMap<uint, ulong>.Create(BpfMapType.PerCpuHash, 16);
        var cpus = map.CpuCount;
        for (uint k = 0; k < 5; k++)
        {
            map.Update(k, Enumerable.Range(0, cpus).Select(c => k * 100 + (ulong)c).ToArray());
        }
        var keys = new uint[16];
        var values = new ulong[16 * cpus];
        var cursor = map.CreateBatchCursor();
        var total = 0;
        while (!cursor.IsDone)
        {
            var n = map.LookupBatch(cursor, keys.AsSpan(total), values.AsSpan(total * cpus));
            total += n;
        }
        Assert.Equal(5, total);
        for (var i = 0; i < total; i++)
        {
            for (var c = 0; c < cpus; c++)
            {
                Assert.Equal(keys[i] * 100 + (ulong)c, values[i * cpus + c]);
            }
        }
    }

    [SkippableFact]
    public void PinnedMapsAreSharedAndOutliveTheirFd()
    {
        using var scope = new BpfTestScope();
        var pin = Path.Combine(scope.PinDir, "shared");
        using (var map = BpfMap<uint, uint>.Create(BpfMapType.Hash, 4, "mb_pinned"))
        {
            map[7] = 70;
            map.Pin(pin);
        }
        using (var again = BpfMap<uint, uint>.OpenPinned(pin))
        {
            Assert.Equal("mb_pinned", again.Map.Name);
            Assert.Equal(70u, again[7]);
            var twice = Assert.Throws<BpfException>(() => again.Pin(pin));
            Assert.Equal(Errno.EEXIST, twice.Errno);
        }
        BpfFs.Unpin(pin);
        var gone = Assert.Throws<BpfException>(() => BpfMap.OpenPinned(pin));
        Assert.Equal(Errno.ENOENT, gone.Errno);
        Assert.StartsWith($"failed to open pinned map {pin}: ", gone.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void ProgramArrayDrivesTailCalls()
    {
        using var scope = new BpfTestScope();
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.Noop));
        using var tail = obj.FindProgram("tc_tail");
        using var noop = obj.FindProgram("tc_noop");
        using var table = obj.FindMap("jump_table");
        Assert.Equal(BpfMapType.ProgramArray, table.Type);
        var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 2);

        Assert.Null(table.GetProgramId(0));
        Assert.Equal(BpfObjects.TcActShot, tail.TestRun(packet, new byte[packet.Length]).ReturnValue);
        table.SetProgram(0, noop);
        Assert.Equal(noop.Id, table.GetProgramId(0));
        Assert.Equal(BpfObjects.TcActOk, tail.TestRun(packet, new byte[packet.Length]).ReturnValue);
        Assert.True(table.ClearProgram(0));
        Assert.Equal(BpfObjects.TcActShot, tail.TestRun(packet, new byte[packet.Length]).ReturnValue);
    }

    [SkippableFact]
    public void RingBufferMapsNeedTheReader()
    {
        using var scope = new BpfTestScope(BpfFeature.RingBuffer);
        var ring = BpfMap.Create(BpfMapType.RingBuffer, 0, 0, 4096, "mb_ring");
        Assert.Equal(BpfMapType.RingBuffer, ring.Type);
        Assert.Throws<ArgumentException>(() => new BpfMap<uint, uint>(ring));
    }
}
