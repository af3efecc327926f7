using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Membrane.Capture;
using Membrane.Cli.Decode;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;
using Membrane.Linux.Sockets;

namespace Membrane.Cli;

/// <summary>
/// <c>membrane capture --netns NAME --interface IF [--count N] [--duration S] [--write FILE.pcapng] [--output text|json]</c>:
/// a live capture (AF_PACKET, every frame the interface sends or receives) inside a named
/// network namespace. The interface name is resolved and the socket bound on one thread
/// inside the namespace, so the capture can never land on a device of another namespace.
/// Frames go to a pcapng file (<c>--write</c>), and/or are printed as <c>pcap decode</c>
/// prints them (<c>--output</c>; text when neither is given). Stops after N packets, S
/// seconds or Ctrl+C, whichever comes first.
/// </summary>
internal static class CaptureCommand
{
    /// <summary>Exit code when the capture cannot start (no such namespace or interface, no permission).</summary>
    public const int ExitFailed = 1;

    /// <summary>Default snap length, tcpdump's: whole frames, including 64 KiB GSO/GRO super-frames.</summary>
    public const int DefaultSnapLength = 262144;

    public static Command Create()
    {
        var netns = new Option<string>("--netns", "-n") { Description = "The network namespace (a name under /run/netns)", Required = true };
        var iface = new Option<string>("--interface", "-i") { Description = "The interface inside that namespace", Required = true };
        var count = new Option<int?>("--count", "-c") { Description = "Stop after this many packets" };
        count.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 1)
            {
                result.AddError("--count must be a positive number of packets");
            }
        });
        var duration = new Option<double?>("--duration", "-d") { Description = "Stop after this many seconds" };
        duration.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<double?>() is <= 0)
            {
                result.AddError("--duration must be a positive number of seconds");
            }
        });
        var write = new Option<FileInfo?>("--write", "-w") { Description = "Write the packets to this pcapng file" };
        var output = new Option<string?>("--output", "-o")
        {
            Description = "Print each packet: text (an indented tree) or json (one object per line, as pcap decode); default text unless --write is given",
        }.AcceptOnlyFromAmong("text", "json");
        var snapLength = new Option<int>("--snaplen", "-s")
        {
            Description = "Keep at most this many bytes of each packet",
            DefaultValueFactory = _ => DefaultSnapLength,
        };
        snapLength.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 64 or > DefaultSnapLength)
            {
                result.AddError($"--snaplen must be between 64 and {DefaultSnapLength}");
            }
        });

        var command = new Command("capture", "Capture packets on an interface inside a network namespace");
        command.Options.Add(netns);
        command.Options.Add(iface);
        command.Options.Add(count);
        command.Options.Add(duration);
        command.Options.Add(write);
        command.Options.Add(output);
        command.Options.Add(snapLength);
        command.SetAction((parseResult, cancellationToken) =>
        {
            var outputValue = parseResult.GetValue(output);
            var writePath = parseResult.GetValue(write)?.FullName;
            var format = outputValue switch
            {
                "json" => DecodeFormat.Json,
                "text" => DecodeFormat.Text,
                _ => writePath is null ? DecodeFormat.Text : (DecodeFormat?)null,
            };
            var options = new CaptureOptions(
                parseResult.GetValue(netns)!,
                parseResult.GetValue(iface)!,
                parseResult.GetValue(count),
                parseResult.GetValue(duration) is { } s ? TimeSpan.FromSeconds(s) : null,
                writePath,
                format,
                parseResult.GetValue(snapLength));
            // Ctrl+C and SIGTERM end the capture cleanly (the file is flushed and the count
            // printed) instead of killing the process mid-write.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            using var stdout = new BufferedStream(Console.OpenStandardOutput(), 1 << 16);
            return Task.FromResult(Run(options, stdout, Console.Error, stop.Token));

            void Stop(PosixSignalContext context)
            {
                context.Cancel = true;
                stop.Cancel();
            }
        });
        return command;
    }

    /// <summary>What to capture and where to put it.</summary>
    internal sealed record CaptureOptions(
        string Namespace,
        string Interface,
        int? Count,
        TimeSpan? Duration,
        string? WritePath,
        DecodeFormat? Format,
        int SnapLength = DefaultSnapLength);

    /// <summary>Runs a capture to completion; returns the exit code. Progress and errors go to <paramref name="stderr"/>.</summary>
    internal static int Run(CaptureOptions options, Stream stdout, TextWriter stderr, CancellationToken cancellationToken)
    {
        PacketSocket socket;
        try
        {
            using var ns = NetNs.Open(options.Namespace);
            socket = PacketSocket.Open(ns, options.Interface);
        }
        catch (Exception e) when (e is NamespaceException or NetlinkException or IOException or ArgumentException)
        {
            stderr.WriteLine($"membrane: failed to capture on {options.Interface} in network namespace {options.Namespace}: {e.Message}");
            return ExitFailed;
        }

        using (socket)
        {
            // Loopback also carries an Ethernet header; devices without one (tun) carry bare IP.
            var linkType = socket.Interface.HasEthernetHeader ? LinkType.Ethernet : LinkType.RawIp;
            PcapNgWriter? file = null;
            DecodeWriter? printer = null;
            try
            {
                if (options.WritePath is { } path)
                {
                    file = new PcapNgWriter(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16));
                    file.AddInterface(new CaptureInterface
                    {
                        LinkType = linkType,
                        SnapLength = options.SnapLength,
                        Name = options.Interface,
                        Description = $"{options.Interface} in network namespace {options.Namespace}",
                        TimestampResolution = TimestampResolution.Nanoseconds,
                        OperatingSystem = Environment.OSVersion.VersionString,
                    });
                }
                if (options.Format is { } format)
                {
                    printer = DecodeWriter.Create(stdout, format);
                }
                var captured = Loop(socket, linkType, options, file, printer, stderr, cancellationToken);
                stderr.WriteLine($"membrane: captured {captured} packet(s) on {options.Interface} in {options.Namespace}" +
                    (options.WritePath is null ? "" : $", written to {options.WritePath}"));
                return 0;
            }
            catch (IOException e)
            {
                stderr.WriteLine($"membrane: failed to capture on {options.Interface} in network namespace {options.Namespace}: {e.Message}");
                return ExitFailed;
            }
            finally
            {
                printer?.Dispose();
                file?.Dispose();
            }
        }
    }

    private static long Loop(PacketSocket socket, LinkType linkType, CaptureOptions options, PcapNgWriter? file,
        DecodeWriter? printer, TextWriter stderr, CancellationToken cancellationToken)
    {
        var buffer = new byte[options.SnapLength];
        var clock = Stopwatch.StartNew();
        var nextProgress = TimeSpan.FromSeconds(2);
        long captured = 0;
        var downs = 0;
        // Poll in short slices so that the duration, Ctrl+C and progress are honoured promptly.
        var slice = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested && (options.Count is not { } max || captured < max))
        {
            var wait = slice;
            if (options.Duration is { } duration)
            {
                var left = duration - clock.Elapsed;
                if (left <= TimeSpan.Zero)
                {
                    break;
                }
                wait = left < slice ? left : slice;
            }
            if (socket.TryReceive(buffer, wait, out var packet))
            {
                captured++;
                var data = buffer.AsSpan(0, packet.Length);
                file?.WritePacket(0, packet.TimestampNanoseconds, data, packet.OriginalLength, null, EnhancedPacketFlags(packet.Type));
                printer?.WritePacket(captured, packet.TimestampNanoseconds, packet.OriginalLength, linkType, data);
            }
            else
            {
                if (socket.DownCount != downs)
                {
                    downs = socket.DownCount;
                    stderr.WriteLine($"membrane: {options.Interface} is down; capturing as soon as it is up");
                }
                // Idle: push out what is buffered so a reader of the pipe or file sees it.
                printer?.Flush();
                file?.Flush();
            }
            if (file is not null && printer is null && clock.Elapsed >= nextProgress)
            {
                stderr.WriteLine($"membrane: {captured} packet(s) captured in {clock.Elapsed.TotalSeconds:F0} s");
                nextProgress += TimeSpan.FromSeconds(2);
            }
        }
        return captured;
    }

    /// <summary>
    /// epb_flags (pcapng §4.3.1): bits 0-1 direction (1 inbound, 2 outbound), bits 2-4 reception
    /// type (1 unicast, 2 multicast, 3 broadcast, 4 promiscuous), from the kernel's sll_pkttype.
    /// </summary>
    internal static uint EnhancedPacketFlags(PacketType type) => type switch
    {
        PacketType.Outgoing => 2,
        PacketType.Host => 1 | (1 << 2),
        PacketType.Multicast => 1 | (2 << 2),
        PacketType.Broadcast => 1 | (3 << 2),
        PacketType.OtherHost => 1 | (4 << 2),
        _ => 0,
    };
}
