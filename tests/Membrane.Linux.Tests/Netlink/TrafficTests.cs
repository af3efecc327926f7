using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;
using Membrane.Linux.Sockets;
using Membrane.Linux.Tests.Namespaces;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Netlink;

/// <summary>
/// Real packets between two namespaces joined by a veth made with our rtnetlink. Sockets
/// are created on each namespace's thread (so they belong to it) and then used from the
/// test thread: a socket keeps its namespace for life.
/// </summary>
[Collection("kernel")]
public sealed class TrafficTests
{
    private static readonly IPAddress A4 = IPAddress.Parse("198.18.0.1");
    private static readonly IPAddress B4 = IPAddress.Parse("198.18.0.2");
    private static readonly IPAddress A6 = IPAddress.Parse("fd00:198:18::1");
    private static readonly IPAddress B6 = IPAddress.Parse("fd00:198:18::2");

    [SkippableTheory]
    [InlineData("198.18.0.2")]
    [InlineData("fd00:198:18::2")]
    public void UdpAndTcpCrossTheVeth(string target)
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        Connect(a, b);
        var address = IPAddress.Parse(target);
        var family = address.AddressFamily;

        // UDP: a server socket bound inside b, a client socket created inside a.
        using var server = b.Run(() =>
        {
            var s = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(address, 0));
            return s;
        });
        using var client = a.Run(() => new Socket(family, SocketType.Dgram, ProtocolType.Udp));
        server.ReceiveTimeout = client.ReceiveTimeout = 5000;
        client.SendTo("hello from a"u8, server.LocalEndPoint!);
        var buffer = new byte[64];
        EndPoint from = new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        var n = server.ReceiveFrom(buffer, ref from);
        Assert.Equal("hello from a", Encoding.ASCII.GetString(buffer, 0, n));
        Assert.Equal(family == AddressFamily.InterNetwork ? A4 : A6, ((IPEndPoint)from).Address);
        server.SendTo("hello from b"u8, from);
        n = client.Receive(buffer);
        Assert.Equal("hello from b", Encoding.ASCII.GetString(buffer, 0, n));

        // TCP: listener inside b, connection made from a's thread.
        using var listener = b.Run(() =>
        {
            var l = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(address, 0));
            l.Listen();
            return l;
        });
        using var tcp = a.Run(() =>
        {
            var c = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
            c.Connect(listener.LocalEndPoint!);
            return c;
        });
        using var accepted = listener.Accept();
        accepted.ReceiveTimeout = tcp.ReceiveTimeout = 5000;
        var payload = new byte[100_000];
        Random.Shared.NextBytes(payload);
        var sender = Task.Run(() => tcp.Send(payload));
        var received = new byte[payload.Length];
        var total = 0;
        while (total < received.Length)
        {
            var r = accepted.Receive(received.AsSpan(total));
            Assert.True(r > 0, "connection closed early");
            total += r;
        }
        sender.Wait();
        Assert.Equal(payload, received);
    }

    [SkippableFact]
    public void PingAndPing6()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        Connect(a, b);
        var replies = a.Run(() =>
        {
            // DANGER guard (KERNEL-NOTES): these addresses must never be pinged from the root namespace.
            Assert.Equal(a.Namespace.Inode, NetNs.CurrentInode());
            using var ping = new Ping();
            return new[] { ping.Send(B4, 5000).Status, ping.Send(B6, 5000).Status };
        });
        Assert.Equal([IPStatus.Success, IPStatus.Success], replies);
        // And back, from b. (As root, Ping uses a raw ICMP socket created on the calling thread.)
        var back = b.Run(() =>
        {
            Assert.Equal(b.Namespace.Inode, NetNs.CurrentInode());
            using var ping = new Ping();
            return new[] { ping.Send(A4, 5000).Status, ping.Send(A6, 5000).Status };
        });
        Assert.Equal([IPStatus.Success, IPStatus.Success], back);
        // An address nobody has is not answered (the namespace has no default route).
        var none = a.Run(() =>
        {
            using var ping = new Ping();
            try
            {
                return ping.Send(IPAddress.Parse("198.18.1.1"), 500).Status;
            }
            catch (PingException e) when (e.InnerException is SocketException)
            {
                return IPStatus.DestinationNetworkUnreachable;
            }
        });
        Assert.NotEqual(IPStatus.Success, none);
    }

    [SkippableFact]
    public void DeletingTheNamespaceRemovesTheVethFromThePeer()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        string peerName;
        using (var b = new NetNsFixture("b"))
        {
            peerName = Connect(a, b).NameInA;
        }
        // b's end went with b; a's end follows once the kernel tears b down, which is
        // asynchronous (net/core/net_namespace.c cleanup_net).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (a.Netlink.FindLink(peerName) is not null && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(50);
        }
        Assert.Null(a.Netlink.FindLink(peerName));
    }

    /// <summary>
    /// veth a↔b, 198.18.0.1/24 + fd00:198:18::1/64 in a, .2 / ::2 in b, both up. With
    /// <paramref name="completeChecksums"/> transmit checksum offload is turned off on both
    /// ends, so captured TCP/UDP frames carry real checksums instead of partial ones.
    /// </summary>
    internal static (string NameInA, string NameInB) Connect(NetNsFixture a, NetNsFixture b, bool completeChecksums = false)
    {
        var nameA = RunPrefix.Next("a");
        var nameB = RunPrefix.Next("b");
        var (la, lb) = a.CreateVethTo(b, nameA, nameB);
        if (completeChecksums)
        {
            a.Run(() => Ethtool.SetTransmitChecksumOffload(nameA, false));
            b.Run(() => Ethtool.SetTransmitChecksumOffload(nameB, false));
            Assert.False(a.Run(() => Ethtool.GetTransmitChecksumOffload(nameA)));
        }
        a.Netlink.AddAddress(la.Index, A4, 24);
        a.Netlink.AddAddress(la.Index, A6, 64, AddressFlags.NoDad);
        b.Netlink.AddAddress(lb.Index, B4, 24);
        b.Netlink.AddAddress(lb.Index, B6, 64, AddressFlags.NoDad);
        return (nameA, nameB);
    }
}
