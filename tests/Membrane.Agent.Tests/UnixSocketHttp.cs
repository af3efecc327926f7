using System.Net;
using System.Net.Sockets;
using System.Text;
using Membrane.Api;

namespace Membrane.Agent.Tests;

/// <summary>
/// Raw HTTP to the agent's unix socket, for what MembraneClient never sends (bad paths,
/// malformed bodies, wrong methods).
/// </summary>
internal static class UnixSocketHttp
{
    /// <summary>An HttpClient whose every connection goes to <paramref name="socketPath"/>.</summary>
    public static HttpClient Client(string socketPath) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    })
    { BaseAddress = new Uri("http://membrane/") };

    /// <summary>Sends one request (a JSON body when given); the status, the agent's error for a failure, and the body.</summary>
    public static async Task<(HttpStatusCode Status, ApiError? Error, string Body)> SendAsync(string socketPath, HttpMethod method, string path, string? body = null)
    {
        using var http = Client(socketPath);
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var error = response.IsSuccessStatusCode ? null : System.Text.Json.JsonSerializer.Deserialize(text, ApiJsonContext.Default.ApiError);
        return (response.StatusCode, error, text);
    }
}
