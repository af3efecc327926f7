using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.CompilerServices;
using Membrane.Agent.Flows;
using Membrane.Linux.Bpf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Membrane.Benchmarks;

/// <summary>
/// Issue 7's target: records per second from the kernel's ring buffer to decoded, enriched
/// flows in the agent's observer (≥ 1M/s), with the CPU and memory it takes. from_pod, loaded
/// as the agent loads it, drops a spoofed packet with a record in PROG_TEST_RUN loops on one
/// thread (the producer: the kernel at full speed); the observer reads the ring buffer through
/// the same reader and ingest path the agent uses on the other. Also the ingest path alone on
/// one prepared record (no kernel), its ceiling.
/// </summary>
internal static class FlowBenchmarks
{
    private const int Records = 3_000_000;
    private const int Batch = 100_000;

    public static IEnumerable<(string, string, string)> Run()
    {
        var options = new Datapath.DatapathOptions { NodeName = "bench-flows", PinRoot = $"/sys/fs/bpf/mbbench-flows{Environment.ProcessId}" };
        Directory.CreateDirectory(options.PinRoot);
        try
        {
            using var datapath = Datapath.Datapath.Open(options);
            datapath.UpsertEndpoint(new Datapath.EndpointEntry(1, IPAddress.Parse("198.18.0.2"), null,
                PhysicalAddress.Parse("02-00-00-00-00-01"), PhysicalAddress.Parse("02-00-00-00-01-01"), 256));
            // A spoofed source address: dropped, one 120-byte record each.
            var frame = DatapathBenchmarks.TcpFrame("198.18.0.3");
            frame[14 + 12 + 3] = 99;
            List<Api.EndpointInfo> endpoints =
            [
                new() { Id = 1, ContainerId = "a", IfName = "eth0", State = "ready", Ipv4 = "198.18.0.2", HostIfIndex = 1, HostInterface = "lxc1", Identity = 256, PodName = "client", PodNamespace = "default", Labels = ["app=client"] },
                new() { Id = 2, ContainerId = "b", IfName = "eth0", State = "ready", Ipv4 = "198.18.0.3", HostIfIndex = 2, HostInterface = "lxc2", Identity = 257, PodName = "server", PodNamespace = "default", Labels = ["app=server"] },
            ];

            // The ingest path alone, on one record captured from the kernel.
            using var reader = datapath.OpenEvents(65_536);
            var source = new Source(reader, datapath);
            using (var observer = new FlowObserver(source, 4096, () => endpoints, TimeProvider.System, NullLogger.Instance))
            {
                datapath.Program.TestRun(frame, new byte[128]);
                var record = Take(source);
                const int n = 5_000_000;
                var started = Stopwatch.GetTimestamp();
                for (var i = 0; i < n; i++)
                {
                    observer.Ingest(record);
                }
                var rate = n / Stopwatch.GetElapsedTime(started).TotalSeconds;
                yield return ("flows: ingest alone (validate, flow key, endpoint lookups, ring append), one thread", $"{rate / 1e6:F2} M records/s", $"{1e9 / rate:F0} ns/record");
            }

            // Kernel to flows, both running.
            using var flowObserver = new FlowObserver(source, 4096, () => endpoints, TimeProvider.System, NullLogger.Instance);
            using var stop = new CancellationTokenSource();
            var process = Process.GetCurrentProcess();
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var cpuBefore = process.TotalProcessorTime;
            var seenBefore = flowObserver.Seen;
            var clock = Stopwatch.StartNew();
            var reading = Task.Run(() => flowObserver.RunAsync(stop.Token));
            for (var sent = 0; sent < Records; sent += Batch)
            {
                datapath.Program.TestRun(frame, new byte[128], Batch);
            }
            var producerDone = clock.Elapsed;
            // Let the reader drain what the ring still holds.
            while (clock.Elapsed - producerDone < TimeSpan.FromSeconds(2) && flowObserver.Seen + (long)flowObserver.LostInKernel + (long)flowObserver.LostInReader < Records)
            {
                Thread.Sleep(10);
            }
            var wall = clock.Elapsed;
            stop.Cancel();
            reading.GetAwaiter().GetResult();
            process.Refresh();
            var seen = flowObserver.Seen - seenBefore;
            var cpu = process.TotalProcessorTime - cpuBefore;
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            yield return ("flows: kernel ring buffer -> enriched flows (from_pod drops at full speed on the other core)", $"{seen / wall.TotalSeconds / 1e6:F2} M records/s",
                $"{seen:N0} of {Records:N0} read, {flowObserver.LostInKernel:N0} lost in the kernel, {flowObserver.LostInReader:N0} in the reader; " +
                $"process CPU {cpu.TotalSeconds / wall.TotalSeconds * 100:F0}% of one core (producer included), {allocated / (double)Math.Max(seen, 1):F1} B allocated/record, peak RSS {process.PeakWorkingSet64 / 1048576} MiB");
        }
        finally
        {
            Datapath.Datapath.RemovePins(options);
            Directory.Delete(options.PinRoot, recursive: true);
        }
    }

    private static byte[] Take(Source source)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var e = source.ReadAllAsync(timeout.Token).GetAsyncEnumerator(timeout.Token);
        try
        {
            if (!e.MoveNextAsync().AsTask().GetAwaiter().GetResult())
            {
                throw new InvalidOperationException("failed to capture a record: from_pod wrote none");
            }
            return e.Current.ToArray();
        }
        finally
        {
            e.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>The agent's event source over the ring buffer (as KernelEndpointDatapath's).</summary>
    private sealed class Source(BpfRingBufferReader reader, Datapath.Datapath datapath) : IEventSource
    {
        public async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadAllAsync([EnumeratorCancellation] CancellationToken ct)
        {
            await foreach (var record in reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                yield return record.Memory;
            }
        }

        public ulong LostInKernel => datapath.ReadEventsLost();

        public ulong LostInReader => (ulong)reader.RecordsLost;

        public void Dispose()
        {
            // The benchmark owns the reader: two observers in turn read through it.
        }
    }
}
