using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>
/// Issue 5's live test: real TCP connections between pods (and from the node into a pod)
/// through the datapath, with `membrane bpf ct list --output json` read at each phase of
/// the connection: open, data, half-close, close. (ConntrackNodeTests covers GC, stats and
/// flush on a live node.)
/// </summary>
[Collection("node")]
public sealed class ConntrackLiveTests
{
    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public async Task ATcpConnectionBetweenPodsShowsItsStateInBpfCtListAtEachPhase(int family)
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var web = node.AddPod("web", ("app", "web"));
        var db = node.AddPod("db", ("app", "db"));
        var server = IPAddress.Parse(family == 4 ? db.Ipv4 : db.Ipv6);
        var client = family == 4 ? web.Ipv4 : web.Ipv6;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        using var listener = db.Namespace.Run(() => new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(server, 5432));
        listener.Listen();
        using var socket = web.Namespace.Run(() => new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        var accept = listener.AcceptAsync(timeout.Token).AsTask();
        await socket.ConnectAsync(listener.LocalEndPoint!, timeout.Token);
        using var accepted = await accept;
        var clientPort = ((IPEndPoint)socket.LocalEndPoint!).Port;

        // Open: the handshake went through from_pod of both pods.
        var entry = await WaitForState(node, client, clientPort, "ESTABLISHED");
        Assert.Equal(family == 4 ? "ipv4" : "ipv6", entry.GetProperty("family").GetString());
        Assert.Equal("tcp", entry.GetProperty("protocol").GetString());
        Assert.Equal(server.ToString(), entry.GetProperty("destination").GetString());
        Assert.Equal(5432, entry.GetProperty("destinationPort").GetInt32());
        Assert.Equal("from-pod", entry.GetProperty("origin").GetString());
        Assert.True(entry.GetProperty("replySeen").GetBoolean());
        Assert.Contains("SYN", Flags(entry, "tcpFlagsOriginal"));
        Assert.Contains("SYN", Flags(entry, "tcpFlagsReply"));
        var bytesBefore = entry.GetProperty("bytesOriginal").GetUInt64();

        // Data: 4,000 bytes each way, counted on both sides of the entry.
        var data = new byte[4000];
        await socket.SendAsync(data, timeout.Token);
        var buffer = new byte[8192];
        for (var got = 0; got < data.Length;)
        {
            got += await accepted.ReceiveAsync(buffer, timeout.Token);
        }
        await accepted.SendAsync(data, timeout.Token);
        for (var got = 0; got < data.Length;)
        {
            got += await socket.ReceiveAsync(buffer, timeout.Token);
        }
        entry = await WaitFor(node, client, clientPort, e => e.GetProperty("bytesReply").GetUInt64() > 4000, "the echoed data counted");
        Assert.Equal("ESTABLISHED", entry.GetProperty("state").GetString());
        Assert.True(entry.GetProperty("bytesOriginal").GetUInt64() >= bytesBefore + 4000);
        Assert.Contains("PSH", Flags(entry, "tcpFlagsOriginal"));
        Assert.True(entry.GetProperty("expiresInSeconds").GetInt64() > 3600, "established connections live for hours");

        // Half-close: the client's FIN, acknowledged by the server's stack.
        socket.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await accepted.ReceiveAsync(buffer, timeout.Token));
        await WaitForState(node, client, clientPort, "CLOSE_WAIT");

        // Close: the server's FIN and the client's last ACK.
        accepted.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await socket.ReceiveAsync(buffer, timeout.Token));
        entry = await WaitForState(node, client, clientPort, "TIME_WAIT");
        Assert.Contains("FIN", Flags(entry, "tcpFlagsOriginal"));
        Assert.Contains("FIN", Flags(entry, "tcpFlagsReply"));
        Assert.True(entry.GetProperty("expiresInSeconds").GetInt64() <= 10, "closing connections go within the close timeout");
    }

    [SkippableFact]
    public async Task PingsAndConnectionsFromTheNodeAreTracked()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var web = node.AddPod("web", ("app", "web"));
        var db = node.AddPod("db", ("app", "db"));

        Assert.Equal(IPStatus.Success, NsTraffic.Ping(web.Namespace, IPAddress.Parse(db.Ipv4)));
        var ping = List(node).Single(e => e.GetProperty("protocol").GetString() == "icmp");
        Assert.Equal("REPLIED", ping.GetProperty("state").GetString());
        Assert.True(ping.TryGetProperty("icmpId", out _));

        // The node's stack opens a connection into a pod: to_pod sees its first packet. A
        // real node talks from its own address; the test node gets one on its loopback.
        Assert.Equal(0, Tools.Run("ip", ["-n", node.Name, "addr", "add", "198.19.255.1/32", "dev", "lo"]).ExitCode);
        Assert.Equal("from the node", await NsTraffic.TcpExchange(node.Node, db.Namespace, IPAddress.Parse(db.Ipv4), "from the node", 9000));
        var inbound = List(node).Single(e => e.GetProperty("protocol").GetString() == "tcp");
        Assert.Equal("to-pod", inbound.GetProperty("origin").GetString());
        Assert.Equal(9000, inbound.GetProperty("destinationPort").GetInt32());
        Assert.True(inbound.GetProperty("replySeen").GetBoolean());
    }

    private static (int ExitCode, string Stdout, string Stderr) Cli(TestNode node, params string[] args) =>
        Tools.Run(TestNode.MembraneBinary, [.. args, "--socket", node.SocketPath]);

    private static JsonElement[] List(TestNode node)
    {
        var (code, stdout, stderr) = Cli(node, "bpf", "ct", "list", "--output", "json");
        Assert.True(code == 0, $"membrane bpf ct list failed: {stderr}");
        using var doc = JsonDocument.Parse(stdout);
        return doc.RootElement.EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    private static string[] Flags(JsonElement entry, string name) =>
        entry.GetProperty(name).EnumerateArray().Select(f => f.GetString()!).ToArray();

    private static Task<JsonElement> WaitForState(TestNode node, string client, int clientPort, string state) =>
        WaitFor(node, client, clientPort, e => e.GetProperty("state").GetString() == state, state);

    /// <summary>Polls `bpf ct list` (the stacks' ACKs may trail the sockets by a moment) for the connection's entry until it satisfies <paramref name="condition"/>.</summary>
    private static async Task<JsonElement> WaitFor(TestNode node, string client, int clientPort, Func<JsonElement, bool> condition, string what)
    {
        JsonElement? last = null;
        for (var attempt = 0; attempt < 50; attempt++)
        {
            last = List(node).SingleOrDefault(e =>
                e.GetProperty("protocol").GetString() == "tcp" && e.GetProperty("source").GetString() == client &&
                e.GetProperty("sourcePort").GetInt32() == clientPort);
            if (last is { } entry && condition(entry))
            {
                return entry;
            }
            await Task.Delay(100);
        }
        Assert.Fail($"the connection from {client}:{clientPort} never showed {what}; last entry: {last}");
        throw new InvalidOperationException();
    }
}
