using System.Diagnostics;
using Membrane.Linux;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;

namespace Membrane.Benchmarks;

/// <summary>
/// The kernel-side figures of issue 3, in one table: BPF_PROG_TEST_RUN ns/packet (the
/// kernel's own per-run duration) for the no-op baseline, parse+lookup and the test filter
/// forwarding and dropping (with a ring-buffer record); map operations per second from C#,
/// one syscall per entry against batches; ring-buffer records per second delivered to C#.
/// Root only. Figures from one run are comparable with each other, not across machines.
/// </summary>
public static class DatapathBenchmarks
{
    private const int Repeat = 1_000_000;
    private const int Rounds = 5;

    public static int Run(string[] args)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "bpf");
        var rows = new List<(string What, string Figure, string Note)>();
        var frame = TcpFrame();
        if (args is ["flows", ..])
        {
            // `datapath flows`: only the ring-buffer-to-flows figures (issue 7).
            Print(FlowBenchmarks.Run().ToList());
            return 0;
        }
        if (args is ["conntrack", ..])
        {
            // `datapath conntrack`: only the conntrack-hit and GC figures (issue 5).
            using var noopOnly = BpfObject.Load(Path.Combine(dir, "noop.o"));
            var noopNs = MedianNs(noopOnly.FindProgram("tc_noop"), frame);
            rows.Add(("PROG_TEST_RUN tc no-op (baseline)", $"{noopNs:F1} ns/pkt", "1.00x"));
            rows.AddRange(ConntrackHit(noopNs));
            Print(rows);
            return 0;
        }
        if (args is ["policy", ..])
        {
            // `datapath policy`: only the new-connection policy figures (issue 6).
            using var noopOnly = BpfObject.Load(Path.Combine(dir, "noop.o"));
            Print(PolicyNewFlow(noopOnly.FindProgram("tc_noop")).ToList());
            return 0;
        }

        using (var noop = BpfObject.Load(Path.Combine(dir, "noop.o")))
        using (var parse = BpfObject.Load(Path.Combine(dir, "parse_lookup.o")))
        using (var filter = BpfObject.Load(Path.Combine(dir, "test_filter.o")))
        {
            var baseline = MedianNs(noop.FindProgram("tc_noop"), frame);
            rows.Add(("PROG_TEST_RUN tc no-op (baseline)", $"{baseline:F1} ns/pkt", "1.00x"));
            var lookup = MedianNs(parse.FindProgram("tc_parse_lookup"), frame);
            rows.Add(("PROG_TEST_RUN parse Eth/IPv4/TCP + hash lookup", $"{lookup:F1} ns/pkt", $"{lookup / baseline:F2}x"));
            var forward = MedianNs(filter.FindProgram("test_filter_ingress"), frame);
            rows.Add(("PROG_TEST_RUN test filter, forward + per-CPU counter", $"{forward:F1} ns/pkt", $"{forward / baseline:F2}x"));

            using var verdict = filter.FindMap<VerdictKey, VerdictValue>("verdict");
            verdict.Update(VerdictKey.For(6, 80), new VerdictValue { Action = VerdictAction.Drop });
            var drop = MedianNs(filter.FindProgram("test_filter_ingress"), frame);
            rows.Add(("PROG_TEST_RUN test filter, drop + ring-buffer record", $"{drop:F1} ns/pkt", $"{drop / baseline:F2}x"));

            rows.Add(RingBufferRate(filter));
            rows.AddRange(FromPod(baseline, noop.FindProgram("tc_noop")));
            rows.AddRange(ConntrackHit(baseline));
            rows.AddRange(PolicyNewFlow(noop.FindProgram("tc_noop")));
            rows.AddRange(FlowBenchmarks.Run());
        }
        rows.AddRange(MapRates());
        Print(rows);
        return 0;
    }

    private static void Print(List<(string What, string Figure, string Note)> rows)
    {
        Console.WriteLine($"| datapath ({Environment.ProcessorCount} CPUs, kernel {Environment.OSVersion.Version}) | figure | note |");
        Console.WriteLine("|---|---|---|");
        foreach (var (what, figure, note) in rows)
        {
            Console.WriteLine($"| {what} | {figure} | {note} |");
        }
    }


    /// <summary>
    /// The endpoint program from_pod, loaded as the agent loads it (pins in a throwaway bpffs
    /// folder): a pod's TCP SYN to another local pod (MAC rewrite, redirect) and to an address
    /// outside the node (to the stack). A test run's packet arrives on loopback (ifindex 1), so
    /// the sending endpoint is registered there.
    /// </summary>
    private static IEnumerable<(string, string, string)> FromPod(double baseline, BpfProgram noop)
    {
        var options = new Datapath.DatapathOptions { NodeName = "bench", PinRoot = $"/sys/fs/bpf/mbbench{Environment.ProcessId}" };
        Directory.CreateDirectory(options.PinRoot);
        try
        {
            using var datapath = Datapath.Datapath.Open(options);
            datapath.UpsertEndpoint(new Datapath.EndpointEntry(1, System.Net.IPAddress.Parse("198.18.0.2"), null,
                System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-00-01"), System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-01-01"), 256));
            datapath.UpsertEndpoint(new Datapath.EndpointEntry(4242, System.Net.IPAddress.Parse("198.18.0.3"), null,
                System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-00-02"), System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-01-02"), 257));
            // Local delivery rewrites the packet, and a repeated test run keeps the rewritten
            // bytes: from the second repetition on the packet would carry the destination's
            // MAC and be dropped as spoofed. So it is timed one run at a time, against the
            // no-op timed the same way.
            var local = MedianSingleRunNs(datapath.Program, TcpFrame(), out var localVerdict);
            var singleBaseline = MedianSingleRunNs(noop, TcpFrame(), out _);
            var outside = MedianNs(datapath.Program, TcpFrame("198.51.100.7"), out var outsideVerdict);
            return
            [
                ("PROG_TEST_RUN from_pod, to a local pod (lookup, MAC rewrite, redirect_peer), single runs", $"{local:F1} ns/pkt", $"{local / singleBaseline:F2}x the no-op's {singleBaseline:F0} ns in single runs, {Verdict(localVerdict)}"),
                ("PROG_TEST_RUN from_pod, to outside the node (to the stack)", $"{outside:F1} ns/pkt", $"{outside / baseline:F2}x, {Verdict(outsideVerdict)}"),
            ];
        }
        finally
        {
            Datapath.Datapath.RemovePins(options);
            Directory.Delete(options.PinRoot, recursive: true);
        }
    }

    /// <summary>
    /// Issue 5's target: from_pod on a packet of an established connection (a conntrack
    /// hit: lookup, counters, lifetime) with 1, 1k, 100k and 1M entries in the IPv4 table,
    /// against the no-op. The other entries are written from C# in batches, each a distinct
    /// established connection; the measured flow's entry is written first.
    /// </summary>
    private static IEnumerable<(string, string, string)> ConntrackHit(double baseline)
    {
        var options = new Datapath.DatapathOptions
        {
            NodeName = "bench-ct",
            PinRoot = $"/sys/fs/bpf/mbbench-ct{Environment.ProcessId}",
            ConntrackMaxEntries = 1_310_720, // 1M live entries without LRU eviction
        };
        Directory.CreateDirectory(options.PinRoot);
        try
        {
            using var datapath = Datapath.Datapath.Open(options);
            datapath.UpsertEndpoint(new Datapath.EndpointEntry(1, System.Net.IPAddress.Parse("198.18.0.2"), null,
                System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-00-01"), System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-01-01"), 256));
            var frame = TcpFrame("198.51.100.7", TcpFlags.Ack);
            var output = new byte[frame.Length + 64];
            var opened = datapath.Program.TestRun(TcpFrame("198.51.100.7", TcpFlags.Syn), output);
            if (opened.ReturnValue != 0 || datapath.Conntrack4.Keys.Count() != 1)
            {
                throw new InvalidOperationException("failed to open the measured connection: from_pod did not track the SYN");
            }
            // Established, so that the measured ACKs are plain hits (not SYN_SENT -> invalid).
            var key = datapath.Conntrack4.Keys.Single();
            var entry = datapath.Conntrack4[key];
            entry.State = Datapath.Conntrack.CtState.Established;
            datapath.Conntrack4.Update(key, entry);

            var rows = new List<(string, string, string)>();
            var filled = 1;
            foreach (var size in new[] { 1, 1_000, 100_000, 1_000_000 })
            {
                filled += Fill(datapath, filled, size - filled, entry);
                var ns = MedianNs(datapath.Program, frame, out var verdict);
                var state = datapath.Conntrack4[key].State;
                rows.Add(($"PROG_TEST_RUN from_pod, conntrack hit (established TCP ACK), {size:N0} entries", $"{ns:F1} ns/pkt",
                    $"{ns / baseline:F2}x the no-op, {Verdict(verdict)}, entry {state}"));
            }

            // Garbage collection of the 1M-entry table: once with every entry alive (a scan),
            // once with every entry but the measured flow's expired (a scan and 1M deletes).
            var alive = datapath.CollectConntrack();
            rows.Add(("conntrack GC, 1,000,000 entries, none expired", $"{alive.Duration.TotalMilliseconds:F0} ms",
                $"{alive.Scanned:N0} scanned, {alive.Deleted:N0} deleted"));
            var expired = entry;
            expired.Lifetime = Datapath.Datapath.ConntrackNow() - 5;
            Fill(datapath, 1, filled - 1, expired);
            var collected = datapath.CollectConntrack();
            rows.Add(("conntrack GC, 1,000,000 entries, all expired", $"{collected.Duration.TotalMilliseconds:F0} ms",
                $"{collected.Scanned:N0} scanned, {collected.Deleted:N0} deleted"));
            return rows;
        }
        finally
        {
            Datapath.Datapath.RemovePins(options);
            Directory.Delete(options.PinRoot, recursive: true);
        }
    }

    /// <summary>
    /// Issue 6's lookup figure: the first packet of a connection (a SYN whose conntrack entry is
    /// removed before every run, so each run is a new connection) from a pod whose egress is
    /// enforced, allowed by an entry for the peer, with 10, 1k and 100k entries in the allow
    /// trie (the others for other peers and ports of the same endpoint). Single runs, against
    /// the no-op timed the same way; the figure includes conntrack's miss and insert and the
    /// policy verdict record.
    /// </summary>
    private static IEnumerable<(string, string, string)> PolicyNewFlow(BpfProgram noop)
    {
        var options = new Datapath.DatapathOptions { NodeName = "bench-policy", PinRoot = $"/sys/fs/bpf/mbbench-pol{Environment.ProcessId}" };
        Directory.CreateDirectory(options.PinRoot);
        try
        {
            using var datapath = Datapath.Datapath.Open(options);
            using var events = datapath.OpenEvents(); // the agent reads the verdict records
            datapath.UpsertEndpoint(new Datapath.EndpointEntry(1, System.Net.IPAddress.Parse("198.18.0.2"), null,
                System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-00-01"), System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-01-01"), 256,
                EgressPolicy: true));
            var frame = TcpFrame("198.51.100.7");
            var singleBaseline = MedianSingleRunNs(noop, frame, out _);
            var rows = new List<(string, string, string)>();
            var entries = new List<Datapath.PolicyMapEntry> { new(1, Datapath.Policy.PolicyDirection.Egress, 2, 6, 80, 80, false, 1) };
            foreach (var size in new[] { 10, 1_000, 100_000 })
            {
                for (var i = entries.Count; i < size; i++)
                {
                    // Other peers (identities from 1000 up), each on its own port.
                    entries.Add(new(1, Datapath.Policy.PolicyDirection.Egress, (uint)(1000 + i), 6, (ushort)(1 + i % 60000), (ushort)(1 + i % 60000), false, (uint)i));
                }
                datapath.ReplacePolicy(1, entries);
                var ns = MedianNewConnectionNs(datapath, frame, out var verdict);
                rows.Add(($"PROG_TEST_RUN from_pod, new connection allowed by egress policy, {size:N0} policy entries, single runs", $"{ns:F1} ns/pkt",
                    $"{ns / singleBaseline:F2}x the no-op's {singleBaseline:F0} ns in single runs, {Verdict(verdict)}"));
            }
            return rows;
        }
        finally
        {
            Datapath.Datapath.RemovePins(options);
            Directory.Delete(options.PinRoot, recursive: true);
        }
    }

    /// <summary>The median of 20,000 single test runs of <paramref name="frame"/>, each after its connection's conntrack entry was removed.</summary>
    private static double MedianNewConnectionNs(Datapath.Datapath datapath, byte[] frame, out uint verdict)
    {
        const int runs = 20_000;
        var output = new byte[frame.Length + 64];
        var samples = new double[runs];
        verdict = 0;
        for (var i = 0; i < runs; i++)
        {
            foreach (var key in datapath.Conntrack4.Keys.ToArray())
            {
                datapath.Conntrack4.Delete(key);
            }
            var result = datapath.Program.TestRun(frame, output);
            samples[i] = result.DurationNanoseconds;
            verdict = result.ReturnValue;
        }
        Array.Sort(samples);
        return samples[runs / 2];
    }

    /// <summary>Writes <paramref name="count"/> distinct established connections (numbered from <paramref name="first"/>) in batches.</summary>
    private static int Fill(Datapath.Datapath datapath, int first, int count, Datapath.Conntrack.CtEntry template)
    {
        const int batch = 8192;
        var keys = new Datapath.Conntrack.CtKey4[batch];
        var values = new Datapath.Conntrack.CtEntry[batch];
        Array.Fill(values, template);
        for (var done = 0; done < count;)
        {
            var n = Math.Min(batch, count - done);
            for (var i = 0; i < n; i++)
            {
                var id = (uint)(first + done + i);
                keys[i] = new Datapath.Conntrack.CtKey4
                {
                    // 198.19.x.y:port -> 198.51.100.8:80, distinct for each id
                    SourceAddress = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(0xC6130000u | (id >> 8)),
                    DestinationAddress = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(0xC6336408u),
                    SourcePortBe = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((ushort)(10000 + (id & 0xff))),
                    DestinationPortBe = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness((ushort)80),
                    Protocol = 6,
                };
            }
            datapath.Conntrack4.UpdateBatch(keys.AsSpan(0, n), values.AsSpan(0, n));
            done += n;
        }
        return count;
    }

    /// <summary>An Ethernet/IPv4/TCP SYN to port 80 (74 bytes with options, like a real SYN).</summary>
    internal static byte[] TcpFrame(string destination = "198.18.0.3", TcpFlags flags = TcpFlags.Syn)
    {
        var buffer = new byte[128];
        var b = new PacketBuilder(buffer);
        b.Ethernet(MacAddress.Parse("02:00:00:00:01:01"), MacAddress.Parse("02:00:00:00:00:01"));
        b.Ipv4(Ipv4Address.Parse("198.18.0.2"), Ipv4Address.Parse(destination));
        b.Tcp(40000, 80, sequenceNumber: 1, acknowledgmentNumber: flags.HasFlag(TcpFlags.Ack) ? 1u : 0u, flags: flags);
        return buffer[..b.Finish()];
    }

    /// <summary>The median, over <see cref="Rounds"/> runs of <see cref="Repeat"/> repetitions, of the kernel-reported ns per run.</summary>
    private static double MedianNs(BpfProgram program, byte[] frame) => MedianNs(program, frame, out _);

    private static double MedianNs(BpfProgram program, byte[] frame, out uint verdict)
    {
        var output = new byte[frame.Length + 64];
        var samples = new List<double>();
        verdict = 0;
        for (var i = 0; i < Rounds; i++)
        {
            var result = program.TestRun(frame, output, Repeat);
            samples.Add(result.DurationNanoseconds);
            verdict = result.ReturnValue;
        }
        samples.Sort();
        return samples[Rounds / 2];
    }

    /// <summary>The median kernel-reported duration of 20,000 test runs of one repetition each, each on a fresh copy of <paramref name="frame"/>.</summary>
    private static double MedianSingleRunNs(BpfProgram program, byte[] frame, out uint verdict)
    {
        const int runs = 20_000;
        var output = new byte[frame.Length + 64];
        var samples = new double[runs];
        verdict = 0;
        for (var i = 0; i < runs; i++)
        {
            var result = program.TestRun(frame, output);
            samples[i] = result.DurationNanoseconds;
            verdict = result.ReturnValue;
        }
        Array.Sort(samples);
        return samples[runs / 2];
    }

    // TC_ACT_* (include/uapi/linux/pkt_cls.h) as the table shows them.
    private static string Verdict(uint value) => value switch
    {
        0 => "TC_ACT_OK",
        2 => "TC_ACT_SHOT",
        7 => "TC_ACT_REDIRECT",
        _ => $"verdict {value}",
    };

    /// <summary>Drives the dropping filter with PROG_TEST_RUN on one thread while the reader drains the ring into C# on another.</summary>
    private static (string, string, string) RingBufferRate(BpfObject filter)
    {
        const int records = 2_000_000;
        using var reader = new BpfRingBufferReader(filter.FindMap("events"), slots: 65536, slotSize: 256);
        var consumed = 0L;
        using var stop = new CancellationTokenSource();
        var consumer = Task.Run(async () =>
        {
            try
            {
                await foreach (var record in reader.ReadAllAsync(stop.Token))
                {
                    if (record.Length >= DatapathEventReader.HeaderLength)
                    {
                        consumed++;
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        var frame = TcpFrame();
        var output = new byte[frame.Length + 64];
        var program = filter.FindProgram("test_filter_ingress");
        var sw = Stopwatch.StartNew();
        for (var sent = 0; sent < records; sent += 10_000)
        {
            program.TestRun(frame, output, 10_000);
        }
        // Let the reader drain what the kernel wrote: stop when nothing new arrived for 200 ms,
        // and time up to the last record seen.
        var last = reader.RecordsReceived;
        var lastAt = sw.Elapsed;
        while (sw.Elapsed - lastAt < TimeSpan.FromMilliseconds(200))
        {
            Thread.Sleep(5);
            if (reader.RecordsReceived != last)
            {
                last = reader.RecordsReceived;
                lastAt = sw.Elapsed;
            }
        }
        var seconds = lastAt.TotalSeconds;
        stop.Cancel();
        consumer.Wait();
        var kernelDrops = records - reader.RecordsReceived - reader.RecordsLost;
        return ("ring buffer → C# (records delivered)", $"{reader.RecordsReceived / seconds / 1e6:F2} M records/s",
            $"{records:N0} written; {reader.RecordsLost:N0} lost in C#, {Math.Max(0, kernelDrops):N0} not reserved by the kernel (ring full)");
    }

    private static IEnumerable<(string, string, string)> MapRates()
    {
        const int n = 100_000;
        using var map = BpfMap<uint, ulong>.Create(BpfMapType.Hash, n, "mb_bench");
        var keys = new uint[n];
        var values = new ulong[n];
        for (var i = 0; i < n; i++)
        {
            keys[i] = (uint)i;
            values[i] = (ulong)i * 3;
        }

        var sw = Stopwatch.StartNew();
        for (var i = 0; i < n; i++)
        {
            map.Update(keys[i], values[i]);
        }
        var single = n / sw.Elapsed.TotalSeconds;
        yield return ("map update, one syscall each (hash, 100k)", $"{single / 1e6:F2} M ops/s", "1.00x");

        sw.Restart();
        ulong sum = 0;
        for (var i = 0; i < n; i++)
        {
            if (map.TryLookup(keys[i], out var v))
            {
                sum += v;
            }
        }
        var lookups = n / sw.Elapsed.TotalSeconds;
        yield return ("map lookup, one syscall each", $"{lookups / 1e6:F2} M ops/s", $"checksum {sum}");

        sw.Restart();
        const int batch = 4096;
        for (var i = 0; i < n; i += batch)
        {
            var count = Math.Min(batch, n - i);
            map.UpdateBatch(keys.AsSpan(i, count), values.AsSpan(i, count));
        }
        var batched = n / sw.Elapsed.TotalSeconds;
        yield return ($"map update, batches of {batch}", $"{batched / 1e6:F2} M ops/s", $"{batched / single:F1}x single");

        sw.Restart();
        var cursor = map.CreateBatchCursor();
        var outKeys = new uint[batch];
        var outValues = new ulong[batch];
        var read = 0;
        while (!cursor.IsDone)
        {
            read += map.LookupBatch(cursor, outKeys, outValues);
        }
        var batchLookups = read / sw.Elapsed.TotalSeconds;
        yield return ($"map lookup, batches of {batch} ({read:N0} read)", $"{batchLookups / 1e6:F2} M ops/s", $"{batchLookups / lookups:F1}x single");
    }
}
