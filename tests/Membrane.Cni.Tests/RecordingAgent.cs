using System.Net.Sockets;
using System.Text;

namespace Membrane.Cni.Tests;

/// <summary>
/// A minimal HTTP/1.1 responder on a unix socket that records each request and answers from
/// a table. It stands in for the agent so that the plugin's own work (validation, request
/// building, result formatting per version) is tested alone; the real agent is exercised by
/// the end-to-end tests.
/// </summary>
internal sealed class RecordingAgent : IDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public string SocketPath { get; }
    public List<(string Method, string Path, string Body)> Requests { get; } = [];
    public Dictionary<string, (int Status, string Body)> Answers { get; } = new(StringComparer.Ordinal);

    public RecordingAgent()
    {
        SocketPath = Path.Combine(Path.GetTempPath(), $"{Membrane.Testing.RunPrefix.Next("cni")}.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(16);
        _loop = Task.Run(AcceptLoop);
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(Socket client)
    {
        using var stream = new NetworkStream(client, ownsSocket: true);
        using var reader = new StreamReader(stream, Encoding.ASCII, leaveOpen: true);
        while (true)
        {
            var requestLine = await reader.ReadLineAsync();
            if (string.IsNullOrEmpty(requestLine))
            {
                return;
            }
            var length = 0;
            string? header;
            while (!string.IsNullOrEmpty(header = await reader.ReadLineAsync()))
            {
                if (header.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                {
                    length = int.Parse(header["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                }
            }
            var body = new char[length];
            var read = 0;
            while (read < length)
            {
                read += await reader.ReadAsync(body.AsMemory(read));
            }
            var parts = requestLine.Split(' ');
            var path = parts[1];
            lock (Requests)
            {
                Requests.Add((parts[0], path, new string(body)));
            }
            var (status, answer) = Answers.TryGetValue(path, out var a) ? a : (404, """{"code":999,"msg":"no such route"}""");
            var bytes = Encoding.UTF8.GetBytes(answer);
            var head = $"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {bytes.Length}\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            await stream.WriteAsync(bytes);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        File.Delete(SocketPath);
        _stop.Dispose();
    }
}
