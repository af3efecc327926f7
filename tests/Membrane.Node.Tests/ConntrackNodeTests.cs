using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json;
using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>
/// Conntrack seen from the operator's side on a whole node: the real agent and datapath, pods
/// made by the CNI plugin, real traffic; entries read with the API and with
/// <c>membrane bpf ct list</c>, a TCP connection followed through its states, expired entries
/// collected on request, and a flush.
/// </summary>
[Collection("node")]
public sealed class ConntrackNodeTests
{
    private static async Task<BpfConntrackEntry?> FindAsync(TestNode node, Func<BpfConntrackEntry, bool> match, Func<BpfConntrackEntry, bool>? until = null)
    {
        // The last ACK of a close may still be in flight when the socket call returns: poll briefly.
        BpfConntrackEntry? found = null;
        for (var i = 0; i < 40; i++)
        {
            found = (await node.Client.BpfConntrackAsync()).FirstOrDefault(match);
            if (found is not null && (until is null || until(found)))
            {
                break;
            }
            await Task.Delay(50);
        }
        return found;
    }

    [SkippableFact]
    public async Task PodTrafficIsListedFollowedCollectedAndFlushed()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var a = node.AddPod("a", ("app", "a"));
        var b = node.AddPod("b", ("app", "b"));

        Assert.Equal(IPStatus.Success, NsTraffic.Ping(a.Namespace, IPAddress.Parse(b.Ipv4)));
        Assert.Equal(IPStatus.Success, NsTraffic.Ping(a.Namespace, IPAddress.Parse(b.Ipv6)));
        Assert.Equal("dns", await NsTraffic.UdpEcho(b.Namespace, a.Namespace, IPAddress.Parse(a.Ipv6), "dns"));

        var echo = await FindAsync(node, e => e.Protocol == "icmp" && e.Source == a.Ipv4);
        Assert.NotNull(echo);
        Assert.Equal((b.Ipv4, "REPLIED", "from-pod", true), (echo.Destination, echo.State, echo.Origin, echo.ReplySeen));
        Assert.NotNull(echo.IcmpId);
        Assert.Null(echo.SourcePort);
        Assert.True(echo.PacketsOriginal >= 1 && echo.PacketsReply >= 1, $"{echo}");
        Assert.InRange(echo.ExpiresInSeconds, 55, 60); // the default non-TCP lifetime, just refreshed
        var echo6 = await FindAsync(node, e => e.Protocol == "icmpv6" && e.Source == a.Ipv6 && e.Destination == b.Ipv6);
        Assert.Equal("REPLIED", echo6?.State);
        var udp = await FindAsync(node, e => e.Protocol == "udp" && e.Source == b.Ipv6);
        Assert.NotNull(udp);
        Assert.Equal((a.Ipv6, "REPLIED", 1ul, 1ul), (udp.Destination, udp.State, udp.PacketsOriginal, udp.PacketsReply));

        // The CLI shows what the API shows, filtered by the agent.
        var (code, stdout, stderr) = Tools.Run(TestNode.MembraneBinary, ["--socket", node.SocketPath, "bpf", "ct", "list", "--family", "ipv4", "--protocol", "icmp", "-o", "json"]);
        Assert.True(code == 0, stderr);
        var cli = JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.ListBpfConntrackEntry)!;
        Assert.Equal((echo.Source, echo.Destination, echo.IcmpId), (cli.Single().Source, cli.Single().Destination, cli.Single().IcmpId));

        // A TCP connection, phase by phase: open with data both ways, then a graceful close.
        using var listener = b.Namespace.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(IPAddress.Parse(b.Ipv4), 0));
        listener.Listen();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        using var client = a.Namespace.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var server = await listener.AcceptAsync();
        await client.SendAsync("hello"u8.ToArray());
        var buffer = new byte[16];
        Assert.Equal(5, await server.ReceiveAsync(buffer));
        await server.SendAsync(buffer.AsMemory(0, 5));
        Assert.Equal(5, await client.ReceiveAsync(buffer));
        bool IsTcp(BpfConntrackEntry e) => e.Protocol == "tcp" && e.Source == a.Ipv4 && e.DestinationPort == port;
        var open = await FindAsync(node, IsTcp, e => e.PacketsReply >= 2);
        Assert.NotNull(open);
        Assert.Equal(("ESTABLISHED", b.Ipv4, "from-pod"), (open.State, open.Destination, open.Origin));
        Assert.Contains("SYN", open.TcpFlagsOriginal!);
        Assert.Contains("ACK", open.TcpFlagsReply!);
        Assert.InRange(open.ExpiresInSeconds, 21_590, 21_600); // established: 6 h

        client.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await server.ReceiveAsync(buffer));
        server.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await client.ReceiveAsync(buffer));
        var closed = await FindAsync(node, IsTcp, e => e.State == "TIME_WAIT");
        Assert.Equal("TIME_WAIT", closed?.State);
        Assert.Contains("FIN", closed!.TcpFlagsOriginal!);
        Assert.Contains("FIN", closed.TcpFlagsReply!);
        Assert.InRange(closed.ExpiresInSeconds, 0, 10); // closing: 10 s

        // Once its 10 s are over the entry is expired (still listed), and a requested GC removes it.
        for (var i = 0; i < 30 && (await FindAsync(node, IsTcp))!.ExpiresInSeconds >= 0; i++)
        {
            await Task.Delay(500);
        }
        Assert.True((await FindAsync(node, IsTcp))!.ExpiresInSeconds < 0, "the closed connection's entry did not expire");
        var run = await node.Client.BpfConntrackGcAsync();
        Assert.Equal("request", run.Trigger);
        Assert.True(run.Deleted >= 1, $"deleted {run.Deleted}");
        Assert.DoesNotContain(await node.Client.BpfConntrackAsync(), IsTcp);
        Assert.Contains(await node.Client.BpfConntrackAsync(), e => e.Protocol == "icmp" && e.Source == a.Ipv4); // alive ones stay

        var stats = await node.Client.BpfConntrackStatsAsync();
        Assert.True(stats.Runs >= 2, $"runs {stats.Runs}"); // the agent's start-up run and ours
        Assert.Equal(new ConntrackTimeoutsInfo { TcpSyn = 60, TcpEstablished = 21_600, TcpClose = 10, Other = 60 }, stats.Timeouts);
        Assert.Equal("adaptive", stats.GcMode);
        Assert.Equal([262_144, 262_144], stats.LastGc!.Tables.Select(t => t.MaxEntries));

        (code, stdout, stderr) = Tools.Run(TestNode.MembraneBinary, ["--socket", node.SocketPath, "bpf", "ct", "flush"]);
        Assert.True(code == 0, stderr);
        Assert.Matches(@"^Flushed \d+ conntrack entr(y|ies)$", stdout.Trim());
        Assert.DoesNotContain(await node.Client.BpfConntrackAsync(), e => e.Source == a.Ipv4 || e.Source == b.Ipv6);

        // Flushed connections carry on: the next ping is tracked afresh.
        Assert.Equal(IPStatus.Success, NsTraffic.Ping(a.Namespace, IPAddress.Parse(b.Ipv4)));
        Assert.NotNull(await FindAsync(node, e => e.Protocol == "icmp" && e.Source == a.Ipv4));
    }
}
