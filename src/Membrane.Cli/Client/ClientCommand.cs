using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary>
/// What every command that talks to the agent shares: the <c>--socket</c> option (default
/// $MEMBRANE_SOCKET, else /var/run/membrane/membrane.sock), <c>--output text|json</c>, and
/// one way of reporting an unreachable agent or an API error.
/// </summary>
internal static class ClientCommand
{
    public static readonly Option<string> Socket = new("--socket")
    {
        Description = "The agent's unix socket (default: $MEMBRANE_SOCKET or " + MembraneClient.DefaultSocketPath + ")",
        Recursive = true,
        DefaultValueFactory = _ => MembraneClient.DefaultSocket,
    };

    public static Option<string> Output() =>
        new Option<string>("--output", "-o")
        {
            Description = "Output format: text (a table) or json",
            DefaultValueFactory = _ => "text",
        }.AcceptOnlyFromAmong("text", "json");

    /// <summary>Sets <paramref name="command"/>'s action: connect, run <paramref name="body"/>, map failures to exit code 1 with a message on stderr.</summary>
    public static void SetClientAction(this Command command, Func<MembraneClient, ParseResult, CancellationToken, Task<int>> body)
    {
        command.SetAction(async (parseResult, ct) =>
        {
            using var client = new MembraneClient(parseResult.GetValue(Socket)!);
            try
            {
                return await body(client, parseResult, ct).ConfigureAwait(false);
            }
            catch (AgentUnreachableException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            }
            catch (MembraneApiException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message} (code {e.Error.Code})").ConfigureAwait(false);
            }
            return 1;
        });
    }

    /// <summary>Writes <paramref name="value"/> as indented JSON to stdout.</summary>
    public static void WriteJson<T>(T value, JsonTypeInfo<T> type)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var writer = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
        {
            JsonSerializer.Serialize(writer, value, type);
        }
        stdout.WriteByte((byte)'\n');
    }
}
