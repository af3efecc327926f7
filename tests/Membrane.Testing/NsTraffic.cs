using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Membrane.Testing;

/// <summary>
/// Real traffic between network namespaces. Sockets keep the namespace they were created in,
/// so only their creation runs on the namespace's thread (setns is per thread); the rest runs
/// anywhere.
/// </summary>
public static class NsTraffic
{
    /// <summary>One ICMP echo from <paramref name="from"/> (a raw ICMP socket as root, created inside it).</summary>
    public static IPStatus Ping(NetNsFixture from, IPAddress to, int timeoutMs = 2000) =>
        from.Run(() =>
        {
            using var ping = new Ping();
            return ping.Send(to, timeoutMs).Status;
        });

    /// <summary>
    /// One TCP connection and an echo within <paramref name="timeout"/>: true when it worked,
    /// false when the connection could not be made in time (its SYN was dropped).
    /// </summary>
    public static async Task<bool> TcpConnects(NetNsFixture client, NetNsFixture server, IPAddress serverAddress, int port, TimeSpan timeout)
    {
        using var listener = server.Run(() => new Socket(serverAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(new IPEndPoint(serverAddress, port));
        listener.Listen();
        using var socket = client.Run(() => new Socket(serverAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            var accept = listener.AcceptAsync(cts.Token).AsTask();
            await socket.ConnectAsync(listener.LocalEndPoint!, cts.Token);
            using var accepted = await accept;
            await socket.SendAsync(Encoding.ASCII.GetBytes("hello"), cts.Token);
            var buffer = new byte[16];
            var n = await accepted.ReceiveAsync(buffer, cts.Token);
            await accepted.SendAsync(buffer.AsMemory(0, n), cts.Token);
            return await socket.ReceiveAsync(buffer, cts.Token) == n;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>One TCP connection: the client sends <paramref name="message"/>, the server echoes it; returns the echo.</summary>
    public static async Task<string> TcpExchange(NetNsFixture client, NetNsFixture server, IPAddress serverAddress,
        string message = "ping over tcp", int port = 0)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var connection = await TcpConnection.OpenAsync(client, server, serverAddress, port, timeout.Token);
        var (socket, accepted) = (connection.Client, connection.Accepted);
        await socket.SendAsync(Encoding.ASCII.GetBytes(message), timeout.Token);
        var buffer = new byte[256];
        var n = await accepted.ReceiveAsync(buffer, timeout.Token);
        await accepted.SendAsync(buffer.AsMemory(0, n), timeout.Token);
        var m = await socket.ReceiveAsync(buffer, timeout.Token);
        return Encoding.ASCII.GetString(buffer, 0, m);
    }

    /// <summary>
    /// Streams <paramref name="bytes"/> bytes of pseudo-random data from client to server over one
    /// TCP connection; true when the server read exactly those bytes before the client's FIN.
    /// </summary>
    public static async Task<bool> TcpBulk(NetNsFixture client, NetNsFixture server, IPAddress serverAddress, int bytes)
    {
        var data = new byte[bytes];
        new Random(bytes).NextBytes(data);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var connection = await TcpConnection.OpenAsync(client, server, serverAddress, 0, timeout.Token);
        var (socket, accepted) = (connection.Client, connection.Accepted);
        var receive = Task.Run(async () =>
        {
            var received = new byte[bytes + 1];
            var n = 0;
            int r;
            while ((r = await accepted.ReceiveAsync(received.AsMemory(n), timeout.Token)) > 0 && n + r <= bytes)
            {
                n += r;
            }
            return n == bytes && r == 0 && received.AsSpan(0, n).SequenceEqual(data);
        });
        await socket.SendAsync(data, timeout.Token);
        socket.Shutdown(SocketShutdown.Send);
        return await receive;
    }

    /// <summary>
    /// One UDP datagram from client to server (optionally from <paramref name="clientAddress"/>);
    /// returns what arrived, or null when nothing did within <paramref name="waitMs"/>.
    /// </summary>
    public static async Task<string?> UdpExchange(NetNsFixture client, NetNsFixture server, IPAddress serverAddress,
        IPAddress? clientAddress = null, int waitMs = 5000, string message = "ping over udp")
    {
        using var receiver = server.Run(() => new Socket(serverAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp));
        receiver.Bind(new IPEndPoint(serverAddress, 0));
        using var sender = client.Run(() => new Socket(serverAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp));
        if (clientAddress is not null)
        {
            sender.Bind(new IPEndPoint(clientAddress, 0));
        }
        using var timeout = new CancellationTokenSource(waitMs);
        var buffer = new byte[256];
        var receive = receiver.ReceiveAsync(buffer, timeout.Token).AsTask();
        await sender.SendToAsync(Encoding.ASCII.GetBytes(message), receiver.LocalEndPoint!);
        try
        {
            return Encoding.ASCII.GetString(buffer, 0, await receive);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>One UDP datagram each way: the server echoes what it got; returns the echo.</summary>
    public static async Task<string> UdpEcho(NetNsFixture client, NetNsFixture server, IPAddress serverAddress, string message)
    {
        using var serverSocket = server.Run(() => new Socket(serverAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp));
        serverSocket.Bind(new IPEndPoint(serverAddress, 0));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var serve = Task.Run(async () =>
        {
            var buffer = new byte[256];
            var any = new IPEndPoint(serverAddress.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
            var r = await serverSocket.ReceiveFromAsync(buffer, any, timeout.Token);
            await serverSocket.SendToAsync(buffer.AsMemory(0, r.ReceivedBytes), r.RemoteEndPoint, timeout.Token);
        });
        using var socket = client.Run(() => new Socket(serverAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp));
        await socket.SendToAsync(Encoding.ASCII.GetBytes(message), serverSocket.LocalEndPoint!, timeout.Token);
        var reply = new byte[256];
        var got = await socket.ReceiveAsync(reply, timeout.Token);
        await serve;
        return Encoding.ASCII.GetString(reply, 0, got);
    }
}

/// <summary>One TCP connection between two namespaces: the server's listener, the client's socket and the accepted one.</summary>
internal sealed class TcpConnection : IDisposable
{
    private TcpConnection(Socket listener, Socket client, Socket accepted)
    {
        Listener = listener;
        Client = client;
        Accepted = accepted;
    }

    public Socket Listener { get; }

    public Socket Client { get; }

    public Socket Accepted { get; }

    /// <summary>Listens in <paramref name="server"/> on <paramref name="serverAddress"/>:<paramref name="port"/> (0: any) and connects from <paramref name="client"/>.</summary>
    public static async Task<TcpConnection> OpenAsync(NetNsFixture client, NetNsFixture server, IPAddress serverAddress, int port, CancellationToken ct)
    {
        var listener = server.Run(() => new Socket(serverAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        Socket? socket = null;
        try
        {
            listener.Bind(new IPEndPoint(serverAddress, port));
            listener.Listen();
            socket = client.Run(() => new Socket(serverAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
            var accept = listener.AcceptAsync(ct).AsTask();
            await socket.ConnectAsync(listener.LocalEndPoint!, ct);
            return new TcpConnection(listener, socket, await accept);
        }
        catch
        {
            socket?.Dispose();
            listener.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Accepted.Dispose();
        Client.Dispose();
        Listener.Dispose();
    }
}
