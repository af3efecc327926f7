using System.Net;
using System.Net.Sockets;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Bpf;

/// <summary>
/// Two fresh network namespaces joined by a veth (made with our rtnetlink), addressed from
/// 198.18.0.0/24 with iproute2, and a way to send real UDP datagrams between them from C#
/// sockets opened inside the namespaces. Programs are only ever attached here, never in
/// the root namespace. Dispose deletes both namespaces (and with them the veth).
/// </summary>
internal sealed class TwoNamespaceLab : IDisposable
{
    public static readonly IPAddress AddressA = IPAddress.Parse("198.18.0.1");
    public static readonly IPAddress AddressB = IPAddress.Parse("198.18.0.2");

    public TwoNamespaceLab()
    {
        var ip = Requires.Tool("ip");
        A = new NetNsFixture("bpa");
        try
        {
            B = new NetNsFixture("bpb");
            var (local, peer) = A.CreateVethTo(B, RunPrefix.Next("va"), RunPrefix.Next("vb"));
            IfA = local.Name;
            IfB = peer.Name;
            IfindexA = local.Index;
            IfindexB = peer.Index;
            Check(Tools.Run(ip, ["-n", A.Name, "addr", "add", AddressA + "/24", "dev", IfA]));
            Check(Tools.Run(ip, ["-n", B.Name, "addr", "add", AddressB + "/24", "dev", IfB]));
        }
        catch
        {
            B?.Dispose();
            A.Dispose();
            throw;
        }
    }

    public NetNsFixture A { get; }
    public NetNsFixture B { get; }
    public string IfA { get; }
    public string IfB { get; }

    /// <summary>The veth end's ifindex inside A (meaningless elsewhere).</summary>
    public int IfindexA { get; }

    /// <summary>The veth end's ifindex inside B (meaningless elsewhere).</summary>
    public int IfindexB { get; }

    /// <summary>Sends <paramref name="count"/> datagrams from A to B:<paramref name="port"/> and returns how many B received.</summary>
    public int SendUdpAToB(int port, int count)
    {
        using var receiver = B.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Any, port));
            return s;
        });
        using var sender = A.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        var payload = new byte[64];
        for (var i = 0; i < count; i++)
        {
            payload[0] = (byte)i;
            sender.SendTo(payload, new IPEndPoint(AddressB, port));
        }
        var received = 0;
        var buffer = new byte[256];
        // Generous for the first datagram (ARP resolves first), short once the rest should be there.
        receiver.ReceiveTimeout = 2000;
        try
        {
            while (received < count)
            {
                receiver.Receive(buffer);
                received++;
                receiver.ReceiveTimeout = 500;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
        {
        }
        return received;
    }

    private static void Check((int ExitCode, string Stdout, string Stderr) result)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
    }

    public void Dispose()
    {
        B.Dispose();
        A.Dispose();
    }
}
