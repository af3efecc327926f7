using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>Real traffic between pods: sockets are created on a thread inside the pod's namespace (setns is per thread).</summary>
internal static class PodTraffic
{
    public static IPStatus Ping(TestPod from, string to, int timeoutMs = 2000) =>
        from.Namespace.Run(() =>
        {
            using var ping = new Ping();
            return ping.Send(IPAddress.Parse(to), timeoutMs).Status;
        });

    /// <summary>One TCP connection from <paramref name="client"/> to <paramref name="server"/>; returns what the server echoed.</summary>
    public static async Task<string> TcpEchoAsync(TestPod client, TestPod server, string serverAddress, int port, string message)
    {
        var address = IPAddress.Parse(serverAddress);
        using var listener = server.Namespace.Run(() =>
        {
            var l = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            l.Bind(new IPEndPoint(address, port));
            l.Listen(1);
            return l;
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var serve = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptAsync(timeout.Token);
            var buffer = new byte[256];
            var n = await accepted.ReceiveAsync(buffer, timeout.Token);
            await accepted.SendAsync(buffer.AsMemory(0, n), timeout.Token);
        });
        using var socket = client.Namespace.Run(() => new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(new IPEndPoint(address, port), timeout.Token);
        await socket.SendAsync(Encoding.ASCII.GetBytes(message), timeout.Token);
        var reply = new byte[256];
        var got = await socket.ReceiveAsync(reply, timeout.Token);
        await serve;
        return Encoding.ASCII.GetString(reply, 0, got);
    }

    /// <summary>One UDP datagram each way; returns the reply.</summary>
    public static async Task<string> UdpEchoAsync(TestPod client, TestPod server, string serverAddress, int port, string message)
    {
        var address = IPAddress.Parse(serverAddress);
        using var serverSocket = server.Namespace.Run(() =>
        {
            var s = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(address, port));
            return s;
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var serve = Task.Run(async () =>
        {
            var buffer = new byte[256];
            var from = new IPEndPoint(address.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
            var r = await serverSocket.ReceiveFromAsync(buffer, from, timeout.Token);
            await serverSocket.SendToAsync(buffer.AsMemory(0, r.ReceivedBytes), r.RemoteEndPoint, timeout.Token);
        });
        using var socket = client.Namespace.Run(() => new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp));
        await socket.SendToAsync(Encoding.ASCII.GetBytes(message), new IPEndPoint(address, port), timeout.Token);
        var reply = new byte[256];
        var got = await socket.ReceiveAsync(reply, timeout.Token);
        await serve;
        return Encoding.ASCII.GetString(reply, 0, got);
    }
}
