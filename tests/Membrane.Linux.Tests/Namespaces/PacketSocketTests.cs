using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Membrane.Capture;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Sockets;
using Membrane.Linux.Tests.Netlink;
using Membrane.Packets;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Namespaces;

/// <summary>Live capture (AF_PACKET) inside a namespace of real traffic between two namespaces.</summary>
[Collection("kernel")]
public sealed class PacketSocketTests
{
    [SkippableFact]
    public void CapturesARealMixOfTrafficThatAllDecodes()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        var (_, nameInB) = TrafficTests.Connect(a, b, completeChecksums: true);

        using var capture = PacketSocket.Open(b.Namespace, nameInB);
        Assert.Equal(nameInB, capture.Interface.Name);
        Assert.True(capture.Interface.HasEthernetHeader);
        var packets = new List<(byte[] Data, ReceivedPacket Info)>();
        using var stop = new ManualResetEventSlim();
        var reader = new Thread(() =>
        {
            var buffer = new byte[65536];
            while (!stop.IsSet)
            {
                if (capture.TryReceive(buffer, TimeSpan.FromMilliseconds(100), out var p))
                {
                    lock (packets)
                    {
                        packets.Add((buffer.AsSpan(0, p.Length).ToArray(), p));
                    }
                }
            }
        }) { IsBackground = true };
        reader.Start();

        var started = DateTimeOffset.UtcNow;
        GenerateTraffic(a, b);
        // Let the last frames arrive, then stop.
        Thread.Sleep(300);
        stop.Set();
        reader.Join();

        Assert.NotEmpty(packets);
        var kinds = new HashSet<LayerKind>();
        var layers = new Layer[16];
        foreach (var (data, info) in packets)
        {
            Assert.Equal(data.Length, info.OriginalLength);
            Assert.InRange(info.TimestampNanoseconds, started.ToUnixTimeMilliseconds() * 1_000_000 - 1_000_000_000, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000 + 1_000_000_000);
            var ok = PacketDissector.TryDissect(data, Membrane.Packets.LinkType.Ethernet, layers, out var count, out var error);
            Assert.True(ok, $"{error.Message} in {Convert.ToHexString(data)}");
            for (var i = 0; i < count; i++)
            {
                kinds.Add(layers[i].Kind);
            }
        }
        foreach (var expected in new[] { LayerKind.Arp, LayerKind.Icmpv4, LayerKind.Icmpv6, LayerKind.Tcp, LayerKind.Udp, LayerKind.IPv4, LayerKind.IPv6 })
        {
            Assert.Contains(expected, kinds);
        }
        // Both directions are seen: frames b sent and frames it received.
        Assert.Contains(packets, p => p.Info.Type == PacketType.Outgoing);
        Assert.Contains(packets, p => p.Info.Type == PacketType.Host);

        // The same frames written as pcapng read cleanly in tshark, the reference dissector.
        var tshark = Tools.Find("tshark");
        if (tshark is not null)
        {
            var file = Path.Combine(Path.GetTempPath(), $"{RunPrefix.Next("cap")}.pcapng");
            try
            {
                using (var writer = new PcapNgWriter(File.Create(file)))
                {
                    var id = writer.AddInterface(Membrane.Capture.LinkType.Ethernet, 65536, nameInB, TimestampResolution.Nanoseconds);
                    foreach (var (data, info) in packets)
                    {
                        writer.WritePacket(id, info.TimestampNanoseconds, data, info.OriginalLength);
                    }
                }
                var count = Tools.Run(tshark, ["-r", file, "-T", "fields", "-e", "frame.number"]);
                Assert.Equal(packets.Count, count.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
                var malformed = Tools.Run(tshark, ["-r", file, "-Y", "_ws.malformed", "-T", "fields", "-e", "frame.number"]);
                Assert.Equal("", malformed.Stdout.Trim());
            }
            finally
            {
                File.Delete(file);
            }
        }
    }

    [SkippableFact]
    public void ACaptureOpenedOnADownInterfaceWaitsForItToComeUp()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        var (_, nameInB) = TrafficTests.Connect(a, b);
        var link = b.Netlink.GetLink(nameInB);
        b.Netlink.SetDown(link.Index);

        using var capture = PacketSocket.Open(b.Namespace, nameInB);
        var buffer = new byte[2048];
        Assert.False(capture.TryReceive(buffer, TimeSpan.FromMilliseconds(200), out _));
        Assert.Equal(1, capture.DownCount);

        b.Netlink.SetUp(link.Index);
        var got = false;
        for (var attempt = 0; attempt < 20 && !got; attempt++)
        {
            a.Run(() =>
            {
                using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                udp.SendTo("up again"u8, new IPEndPoint(IPAddress.Parse("198.18.0.2"), 9));
            });
            got = capture.TryReceive(buffer, TimeSpan.FromMilliseconds(250), out _);
        }
        Assert.True(got, "no frame after the interface came up");
        Assert.Equal(1, capture.DownCount);
    }

    [SkippableFact]
    public void OpeningAMissingInterfaceFailsInsideTheNamespace()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture();
        // eth0 exists in the root namespace but not in a fresh one: the name is resolved inside.
        var e = Assert.Throws<Membrane.Linux.Netlink.NetlinkException>(() => PacketSocket.Open(a.Namespace, "eth0"));
        Assert.Equal(Errno.ENODEV, e.Errno);
    }

    /// <summary>ping, ping6, UDP and TCP both ways; the first packets also trigger ARP and neighbour discovery.</summary>
    internal static void GenerateTraffic(NetNsFixture a, NetNsFixture b)
    {
        var b4 = IPAddress.Parse("198.18.0.2");
        var b6 = IPAddress.Parse("fd00:198:18::2");
        a.Run(() =>
        {
            using var ping = new Ping();
            Assert.Equal(IPStatus.Success, ping.Send(b4, 5000).Status);
            Assert.Equal(IPStatus.Success, ping.Send(b6, 5000).Status);
        });
        foreach (var address in new[] { b4, b6 })
        {
            using var udpServer = b.Run(() =>
            {
                var s = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new IPEndPoint(address, 0));
                return s;
            });
            using var udpClient = a.Run(() => new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp));
            udpServer.ReceiveTimeout = 5000;
            udpClient.SendTo("membrane"u8, udpServer.LocalEndPoint!);
            Assert.Equal(8, udpServer.Receive(new byte[16]));

            using var listener = b.Run(() =>
            {
                var l = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                l.Bind(new IPEndPoint(address, 0));
                l.Listen();
                return l;
            });
            using var client = a.Run(() =>
            {
                var c = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                c.Connect(listener.LocalEndPoint!);
                return c;
            });
            using var accepted = listener.Accept();
            client.Send(new byte[3000]);
            var received = 0;
            var buffer = new byte[4096];
            accepted.ReceiveTimeout = 5000;
            while (received < 3000)
            {
                received += accepted.Receive(buffer);
            }
            client.Shutdown(SocketShutdown.Both);
        }
    }
}
