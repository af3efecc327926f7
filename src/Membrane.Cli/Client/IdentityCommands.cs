using System.CommandLine;
using System.Globalization;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary>
/// <c>membrane identity list|get</c> (the node's security identities, as <c>cilium identity
/// list|get</c>) and <c>membrane endpoint labels</c> (an endpoint's labels changed at run time,
/// as <c>cilium endpoint labels</c>).
/// </summary>
internal static class IdentityCommands
{
    private const string IdentityJson = """
        {id, labels (sorted "key=value" strings; ["reserved:NAME"] for a reserved identity),
        reserved (the reserved identity's name: unknown, host, world, unmanaged, health, init,
        remote-node; absent for an allocated one), endpoints (how many endpoints use it; absent
        for reserved ones), unusedSince (when its last endpoint let go; absent while in use),
        expiresAt (when its grace period ends and the number may be freed; absent with
        unusedSince)}
        """;

    public static Command Identity()
    {
        var identity = new Command("identity", "The node's security identities: reserved ones and one per distinct endpoint label set");

        var listOutput = ClientCommand.Output();
        listOutput.Description = "Output format: text (a table) or json: an array, reserved identities first, then by number, each element " + IdentityJson;
        var list = new Command("list", "List every identity with its labels, the endpoints using it, and since when unused ones are unused") { listOutput };
        list.SetClientAction(async (client, parse, ct) =>
        {
            var identities = await client.IdentitiesAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(listOutput) == "json")
            {
                ClientCommand.WriteJson(identities, ApiJsonContext.Default.ListIdentityEntry);
                return 0;
            }
            var table = new TableWriter("ID", "ENDPOINTS", "UNUSED SINCE", "LABELS");
            foreach (var i in identities)
            {
                table.Add(i.Id.ToString(CultureInfo.InvariantCulture), i.Endpoints?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    Time(i.UnusedSince), string.Join(",", i.Labels));
            }
            table.Write(Console.Out);
            return 0;
        });

        var id = new Argument<uint>("ID") { Description = "The identity's number (see identity list)" };
        var getOutput = ClientCommand.Output();
        getOutput.Description = "Output format: text or json: " + IdentityJson;
        var get = new Command("get", "Show one identity") { id, getOutput };
        get.SetClientAction(async (client, parse, ct) =>
        {
            var i = await client.IdentityAsync(parse.GetValue(id), ct).ConfigureAwait(false);
            if (parse.GetValue(getOutput) == "json")
            {
                ClientCommand.WriteJson(i, ApiJsonContext.Default.IdentityEntry);
                return 0;
            }
            Console.WriteLine($"ID:            {i.Id}");
            if (i.Reserved is { } name)
            {
                Console.WriteLine($"Reserved:      {name}");
            }
            Console.WriteLine($"Labels:        {string.Join(", ", i.Labels)}");
            if (i.Endpoints is { } endpoints)
            {
                Console.WriteLine($"Endpoints:     {endpoints}");
            }
            if (i.UnusedSince is { } since)
            {
                Console.WriteLine($"Unused since:  {Time(since)} (the number may be freed after {Time(i.ExpiresAt)})");
            }
            return 0;
        });

        identity.Subcommands.Add(list);
        identity.Subcommands.Add(get);
        return identity;
    }

    /// <summary><c>membrane endpoint labels ID [--add k=v]… [--remove k]… [-o json]</c>.</summary>
    public static Command EndpointLabels()
    {
        var id = new Argument<long>("ID") { Description = "The endpoint's numeric id (see endpoint list)" };
        var add = new Option<string[]>("--add")
        {
            Description = "A label to set, key=value (repeatable); a key the endpoint has keeps its value unless --remove names it too",
        };
        add.Validators.Add(result =>
        {
            foreach (var text in result.GetValueOrDefault<string[]>() ?? [])
            {
                if (text.IndexOf('=', StringComparison.Ordinal) <= 0)
                {
                    result.AddError($"--add '{text}': expected key=value");
                }
            }
        });
        var remove = new Option<string[]>("--remove")
        {
            Description = "A label key to remove, with its source prefix as endpoint get shows it (repeatable); removals come before additions",
        };
        var output = ClientCommand.Output();
        output.Description = """
            Output format: text or json: {endpointId, labels, identity, previousLabels,
            previousIdentity, identityAllocated (true when the new label set had no identity yet)}
            """;
        var labels = new Command("labels",
            "Change an endpoint's labels (its identity follows); without --add or --remove, show them")
        {
            id, add, remove, output,
        };
        labels.SetClientAction(async (client, parse, ct) =>
        {
            var adds = (parse.GetValue(add) ?? []).Select(ParseLabel).ToList();
            var removes = parse.GetValue(remove) ?? [];
            var json = parse.GetValue(output) == "json";
            if (adds.Count == 0 && removes.Length == 0)
            {
                var e = await client.EndpointAsync(parse.GetValue(id), ct).ConfigureAwait(false);
                var unchanged = new EndpointLabelsResponse
                {
                    EndpointId = e.Id,
                    Labels = e.Labels,
                    Identity = e.Identity,
                    PreviousLabels = e.Labels,
                    PreviousIdentity = e.Identity,
                };
                Write(unchanged, json);
                return 0;
            }
            var changed = await client.EndpointLabelsAsync(parse.GetValue(id), adds, removes, ct).ConfigureAwait(false);
            Write(changed, json);
            return 0;
        });
        return labels;
    }

    private static Label ParseLabel(string text)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        return new Label(text[..eq], text[(eq + 1)..]);
    }

    private static void Write(EndpointLabelsResponse r, bool json)
    {
        if (json)
        {
            ClientCommand.WriteJson(r, ApiJsonContext.Default.EndpointLabelsResponse);
            return;
        }
        Console.WriteLine($"Endpoint:      {r.EndpointId}");
        Console.WriteLine($"Labels:        {string.Join(", ", r.Labels)}");
        Console.WriteLine(r.Identity == r.PreviousIdentity
            ? $"Identity:      {r.Identity}"
            : $"Identity:      {r.Identity} (was {r.PreviousIdentity}{(r.IdentityAllocated ? "; newly allocated" : "")})");
    }

    private static string Time(DateTimeOffset? t) =>
        t is { } v ? v.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "";
}
