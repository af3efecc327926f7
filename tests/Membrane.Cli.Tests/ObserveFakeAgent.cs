using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Membrane.Testing;

namespace Membrane.Cli.Tests;

/// <summary>
/// A stand-in for the agent's flow routes: an HTTP/1.1 server on a unix socket that records
/// each request (method, path, body) and answers it with <see cref="Respond"/>, which writes
/// an NDJSON stream line by line (flushing each, as the agent does) and may wait between lines.
/// Small and hand-rolled so the CLI's streaming is tested without the agent's ring buffer.
/// </summary>
internal sealed class ObserveFakeAgent : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory($"{RunPrefix.Value}-observe-").FullName;
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public ObserveFakeAgent()
    {
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(8);
        _accepting = AcceptAsync();
    }

    public string SocketPath => Path.Combine(_dir, "agent.sock");

    public string Folder => _dir;

    /// <summary>Requests received, in order.</summary>
    public ConcurrentQueue<Request> Requests { get; } = new();

    /// <summary>How a request is answered: write lines through the <see cref="Response"/>.</summary>
    public Func<Request, Response, CancellationToken, Task> Respond { get; set; } = (_, r, _) => r.NdjsonAsync([]);

    public sealed record Request(string Method, string Path, string Body);

    /// <summary>The answer being written: a status line and headers, then the body.</summary>
    public sealed class Response(Stream stream)
    {
        /// <summary>200 with an NDJSON body of <paramref name="lines"/>, each flushed; the connection closes after the last.</summary>
        public async Task NdjsonAsync(IEnumerable<string> lines, CancellationToken ct = default)
        {
            await StartAsync(ct);
            foreach (var line in lines)
            {
                await LineAsync(line, ct);
            }
        }

        /// <summary>The status line and headers of a 200 NDJSON stream; the body is read to the end of the connection.</summary>
        public async Task StartAsync(CancellationToken ct = default)
        {
            var head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"u8.ToArray();
            await stream.WriteAsync(head, ct);
            await stream.FlushAsync(ct);
        }

        /// <summary>One line of the body, flushed.</summary>
        public async Task LineAsync(string line, CancellationToken ct = default)
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), ct);
            await stream.FlushAsync(ct);
        }

        /// <summary>An error answer with the agent's JSON error body.</summary>
        public async Task ErrorAsync(int status, string json, CancellationToken ct = default)
        {
            var body = Encoding.UTF8.GetBytes(json);
            var head = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
            await stream.WriteAsync(head, ct);
            await stream.WriteAsync(body, ct);
            await stream.FlushAsync(ct);
        }
    }

    private async Task AcceptAsync()
    {
        var connections = new List<Task>();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var socket = await _listener.AcceptAsync(_stop.Token);
                connections.Add(ServeAsync(socket));
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
        await Task.WhenAll(connections);
    }

    private async Task ServeAsync(Socket socket)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            var request = await ReadRequestAsync(stream, _stop.Token);
            Requests.Enqueue(request);
            await Respond(request, new Response(stream), _stop.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            // The CLI went away (Ctrl-C, --count reached) or the test ended.
        }
    }

    // Request line, headers up to the blank line, then Content-Length bytes of body (RFC 9112 6.3).
    private static async Task<Request> ReadRequestAsync(Stream stream, CancellationToken ct)
    {
        var buffer = new List<byte>();
        var one = new byte[1];
        while (buffer.Count < 4 || !(buffer[^4] == '\r' && buffer[^3] == '\n' && buffer[^2] == '\r' && buffer[^1] == '\n'))
        {
            if (await stream.ReadAsync(one, ct) == 0)
            {
                throw new IOException("the client closed the connection before the end of the headers");
            }
            buffer.Add(one[0]);
        }
        var lines = Encoding.ASCII.GetString(buffer.ToArray()).Split("\r\n");
        var requestLine = lines[0].Split(' ');
        var length = 0;
        foreach (var header in lines.Skip(1))
        {
            var colon = header.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && header[..colon].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                length = int.Parse(header[(colon + 1)..].Trim(), CultureInfo.InvariantCulture);
            }
        }
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, ct);
        return new Request(requestLine[0], requestLine[1], Encoding.UTF8.GetString(body));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        _stop.Dispose();
        System.IO.Directory.Delete(_dir, recursive: true);
    }
}
