using System.CommandLine;
using System.Globalization;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary>
/// <c>membrane policy import|get|delete|selectors|trace</c> (CiliumNetworkPolicy and
/// NetworkPolicy YAML, as <c>cilium policy import|get|delete|selectors|trace</c>) and
/// <c>membrane bpf policy get</c> (an endpoint's entries in the kernel's policy maps, as
/// <c>cilium bpf policy get</c>).
/// </summary>
internal static class PolicyCommands
{
    private const string ChangeJson = """
        {revision (the repository's revision after the change), policies (the "namespace/name"s
        imported or deleted), endpointsChanged (how many endpoints' kernel policy changed),
        applied (false: some kernel write failed; the agent retries it and logs why)}
        """;

    private const string PolicyJson = """
        {namespace, name, kind ("CiliumNetworkPolicy"|"NetworkPolicy"), source (the file it was
        imported from), rules (each {path, direction ("ingress"|"egress"), action
        ("allow"|"deny"), ruleNumber (the number its kernel entries and verdict records carry),
        location ("file:line:column")}), endpoints (ids of the local endpoints it selects now),
        yaml (the YAML it was written as)}
        """;

    public static Command Create()
    {
        var policy = new Command("policy", "Network policy: CiliumNetworkPolicy (cilium.io/v2) and NetworkPolicy (networking.k8s.io/v1) enforced in the kernel");
        policy.Subcommands.Add(Import());
        policy.Subcommands.Add(Get());
        policy.Subcommands.Add(Delete());
        policy.Subcommands.Add(Selectors());
        policy.Subcommands.Add(Trace());
        return policy;
    }

    private static Command Import()
    {
        var files = new Argument<string[]>("FILE") { Description = "YAML files with one or more policy documents (or a List of them)", Arity = ArgumentArity.OneOrMore };
        var output = ClientCommand.Output();
        output.Description = "Output format: text or json: " + ChangeJson;
        var command = new Command("import",
            "Import policies, replacing those with the same namespace/name; all or nothing: on any error every error is printed (file, document, line, column, field) and nothing is applied")
        {
            files, output,
        };
        command.SetClientAction(async (client, parse, ct) =>
        {
            var sources = new List<PolicyFile>();
            foreach (var path in parse.GetValue(files) ?? [])
            {
                try
                {
                    sources.Add(new PolicyFile { Name = path, Text = await File.ReadAllTextAsync(path, ct).ConfigureAwait(false) });
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    await Console.Error.WriteLineAsync($"error: failed to read policy file {path}: {e.Message}; nothing was imported").ConfigureAwait(false);
                    return 1;
                }
            }
            PolicyChangeResponse response;
            try
            {
                response = await client.PolicyImportAsync(sources, ct).ConfigureAwait(false);
            }
            catch (MembraneApiException e) when (e.Error.PolicyErrors is { Count: > 0 } errors)
            {
                foreach (var error in errors)
                {
                    var field = error.Field.Length == 0 ? "" : " " + error.Field;
                    await Console.Error.WriteLineAsync($"{error.File}:{error.Line}:{error.Column}: document {error.Document}{field}: {error.Reason}").ConfigureAwait(false);
                }
                await Console.Error.WriteLineAsync($"error: {e.Error.Message} (code {e.Error.Code})").ConfigureAwait(false);
                return 1;
            }
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(response, ApiJsonContext.Default.PolicyChangeResponse);
            }
            else
            {
                Console.WriteLine($"imported {string.Join(", ", response.Policies)} (revision {response.Revision}, {response.EndpointsChanged} endpoint(s) changed)");
            }
            WarnIfNotApplied(response);
            return 0;
        });
        return command;
    }

    private static Command Get()
    {
        var name = new Argument<string?>("NAMESPACE/NAME") { Description = "One policy (a NAME alone is in namespace default); all when omitted", Arity = ArgumentArity.ZeroOrOne };
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output format: text (a table), yaml (the stored YAML documents, as imported) or json: an array sorted by namespace and name, each element " + PolicyJson,
            DefaultValueFactory = _ => "text",
        }.AcceptOnlyFromAmong("text", "json", "yaml");
        var command = new Command("get", "Show the imported policies") { name, output };
        command.SetClientAction(async (client, parse, ct) =>
        {
            List<PolicyInfo> policies;
            if (parse.GetValue(name) is { } text)
            {
                var (ns, n) = Key(text);
                policies = await client.PolicyAsync(ns, n, ct).ConfigureAwait(false);
            }
            else
            {
                policies = await client.PoliciesAsync(ct).ConfigureAwait(false);
            }
            switch (parse.GetValue(output))
            {
                case "json":
                    ClientCommand.WriteJson(policies, ApiJsonContext.Default.ListPolicyInfo);
                    break;
                case "yaml":
                    Console.Write(string.Join("---\n", policies.Select(p => p.Yaml.EndsWith('\n') ? p.Yaml : p.Yaml + "\n")));
                    break;
                default:
                    var table = new TableWriter("NAMESPACE", "NAME", "KIND", "RULES", "ENDPOINTS", "SOURCE");
                    foreach (var p in policies)
                    {
                        table.Add(p.Namespace, p.Name, p.Kind, p.Rules.Count.ToString(CultureInfo.InvariantCulture),
                            string.Join(",", p.Endpoints), p.Source);
                    }
                    table.Write(Console.Out);
                    break;
            }
            return 0;
        });
        return command;
    }

    private static Command Delete()
    {
        var name = new Argument<string?>("NAMESPACE/NAME") { Description = "The policy to delete (a NAME alone is in namespace default)", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = "Delete every policy" };
        var output = ClientCommand.Output();
        output.Description = "Output format: text or json: " + ChangeJson;
        var command = new Command("delete", "Delete one policy or, with --all, every policy; endpoints no policy selects any more are unrestricted again") { name, all, output };
        command.Validators.Add(result =>
        {
            if ((result.GetValue(name) is not null) == result.GetValue(all))
            {
                result.AddError("give either NAMESPACE/NAME or --all");
            }
        });
        command.SetClientAction(async (client, parse, ct) =>
        {
            PolicyChangeResponse response;
            if (parse.GetValue(all))
            {
                response = await client.PolicyDeleteAllAsync(ct).ConfigureAwait(false);
            }
            else
            {
                var (ns, n) = Key(parse.GetValue(name)!);
                response = await client.PolicyDeleteAsync(ns, n, ct).ConfigureAwait(false);
            }
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(response, ApiJsonContext.Default.PolicyChangeResponse);
            }
            else
            {
                Console.WriteLine(response.Policies.Count == 0
                    ? $"no policies to delete (revision {response.Revision})"
                    : $"deleted {string.Join(", ", response.Policies)} (revision {response.Revision}, {response.EndpointsChanged} endpoint(s) changed)");
            }
            WarnIfNotApplied(response);
            return 0;
        });
        return command;
    }

    private static Command Selectors()
    {
        var output = ClientCommand.Output();
        output.Description = """
            Output format: text (a table) or json: an array sorted by selector, each element
            {selector (the peer selector as the resolver holds it, namespace scoping included),
            identities (the identities it selects now), users (the rules using it,
            "namespace/name path")}
            """;
        var command = new Command("selectors", "The selector cache: each peer selector, the identities it selects now and the rules that use it") { output };
        command.SetClientAction(async (client, parse, ct) =>
        {
            var selectors = await client.PolicySelectorsAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(selectors, ApiJsonContext.Default.ListPolicySelectorEntry);
                return 0;
            }
            var table = new TableWriter("SELECTOR", "IDENTITIES", "USERS");
            foreach (var s in selectors)
            {
                table.Add(s.Selector, string.Join(",", s.Identities), string.Join(", ", s.Users));
            }
            table.Write(Console.Out);
            return 0;
        });
        return command;
    }

    private static Command Trace()
    {
        var srcLabels = new Option<string?>("--src-labels") { Description = "The source's labels, k=v,k=v (a key without source is k8s:; without io.kubernetes.pod.namespace the pod is in default; reserved:world etc. for reserved identities)" };
        var dstLabels = new Option<string?>("--dst-labels") { Description = "The destination's labels, as --src-labels" };
        var srcEndpoint = new Option<long?>("--src-endpoint") { Description = "The source is this local endpoint (its labels)" };
        var dstEndpoint = new Option<long?>("--dst-endpoint") { Description = "The destination is this local endpoint" };
        var srcIp = new Option<string?>("--src-ip") { Description = "The source's address: a local endpoint's, the node's (host) or anything else (world, CIDR rules)" };
        var dstIp = new Option<string?>("--dst-ip") { Description = "The destination's address, as --src-ip" };
        var dport = new Option<string>("--dport")
        {
            Description = "Destination port and protocol, PORT[/PROTOCOL] (TCP, UDP, ICMP, ICMPv6, ANY; default TCP); for ICMP the port is the type",
            Required = true,
        };
        var output = ClientCommand.Output();
        output.Description = """
            Output format: text or json: {verdict ("ALLOWED"|"DENIED"), allowed, srcLabels,
            dstLabels (the canonical labels judged), egress and ingress (each {direction,
            outcome ("unrestricted"|"allowed"|"allowed-from-host"|"denied-by-default"|
            "denied-by-rule"), allowed, rules (the deciding rules, "namespace/name path": the
            matching deny rules, else the matching allow rules), selectedBy (the rule sets that
            select the endpoint and enforce the direction)})}
            """;
        var command = new Command("trace",
            "Would a new flow be allowed? The sender's egress and the receiver's ingress, judged by the reference evaluator, with the rules that decided")
        {
            srcLabels, dstLabels, srcEndpoint, dstEndpoint, srcIp, dstIp, dport, output,
        };
        command.Validators.Add(result =>
        {
            foreach (var (side, options) in new[] { ("source", new Option[] { srcLabels, srcEndpoint, srcIp }), ("destination", [dstLabels, dstEndpoint, dstIp]) })
            {
                if (options.Count(o => result.GetResult(o) is not null) != 1)
                {
                    result.AddError($"give the {side} by exactly one of {string.Join(", ", options.Select(o => o.Name))}");
                }
            }
            if (result.GetValue(dport) is { } text && !TryPort(text, out _, out _))
            {
                result.AddError($"--dport '{text}': expected PORT[/PROTOCOL], e.g. 80/TCP");
            }
        });
        command.SetClientAction(async (client, parse, ct) =>
        {
            TryPort(parse.GetValue(dport)!, out var port, out var protocol);
            static IReadOnlyList<string>? Labels(string? text) =>
                text is null ? null : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var verdict = await client.PolicyTraceAsync(new PolicyTraceRequest
            {
                SrcLabels = Labels(parse.GetValue(srcLabels)),
                DstLabels = Labels(parse.GetValue(dstLabels)),
                SrcEndpoint = parse.GetValue(srcEndpoint),
                DstEndpoint = parse.GetValue(dstEndpoint),
                SrcIp = parse.GetValue(srcIp),
                DstIp = parse.GetValue(dstIp),
                Port = port,
                Protocol = protocol,
            }, ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(verdict, ApiJsonContext.Default.PolicyTraceResponse);
                return 0;
            }
            Console.WriteLine($"{verdict.Verdict}: [{string.Join(",", verdict.SrcLabels)}] -> [{string.Join(",", verdict.DstLabels)}] {port}/{protocol}");
            foreach (var d in new[] { verdict.Egress, verdict.Ingress })
            {
                var rules = d.Rules.Count == 0 ? "" : $" by {string.Join(", ", d.Rules)}";
                var selected = d.SelectedBy.Count == 0 ? "" : $" (selected by {string.Join(", ", d.SelectedBy)})";
                Console.WriteLine($"  {d.Direction}: {d.Outcome}{rules}{selected}");
            }
            return 0;
        });
        return command;
    }

    /// <summary><c>membrane bpf policy get ENDPOINT</c>.</summary>
    public static Command Bpf()
    {
        var endpoint = new Argument<long>("ENDPOINT") { Description = "The endpoint's numeric id (see endpoint list)" };
        var output = ClientCommand.Output();
        output.Description = """
            Output format: text (a table) or json: {endpointId, ifindex, ingressEnforced,
            egressEnforced (the endpoint entry's policy flags: default deny in that direction),
            entries (each {direction ("ingress"|"egress"), peerIdentity (0: any peer),
            peerLabels, protocol ("TCP"|"UDP"|"ICMP"|"ICMPv6"|"ANY"|number), fromPort, toPort
            (the ports, or ICMP types, the key covers; 0-65535: any), action ("allow"|"deny"),
            rule (the rule number; 0: the agent's own allow-all of an unenforced direction),
            ruleOrigin ("namespace/name path" of that rule, when a current policy has it)})}
            """;
        var get = new Command("get", "Show an endpoint's entries in the kernel's policy maps (one per trie key: a port range appears as its prefix blocks)") { endpoint, output };
        get.SetClientAction(async (client, parse, ct) =>
        {
            var policy = await client.BpfPolicyAsync(parse.GetValue(endpoint), ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(policy, ApiJsonContext.Default.BpfPolicyResponse);
                return 0;
            }
            Console.WriteLine($"Endpoint {policy.EndpointId} (ifindex {policy.IfIndex}): ingress {(policy.IngressEnforced ? "enforced" : "unrestricted")}, egress {(policy.EgressEnforced ? "enforced" : "unrestricted")}");
            var table = new TableWriter("DIRECTION", "IDENTITY", "LABELS", "PROTOCOL", "PORT", "ACTION", "RULE");
            foreach (var e in policy.Entries)
            {
                var ports = e.FromPort == 0 && e.ToPort == ushort.MaxValue ? "*" : e.FromPort == e.ToPort ? $"{e.FromPort}" : $"{e.FromPort}-{e.ToPort}";
                table.Add(e.Direction, e.PeerIdentity == 0 ? "*" : e.PeerIdentity.ToString(CultureInfo.InvariantCulture),
                    e.PeerIdentity == 0 ? "(any)" : string.Join(",", e.PeerLabels), e.Protocol, ports, e.Action,
                    e.RuleOrigin ?? (e.Rule == 0 ? "-" : e.Rule.ToString(CultureInfo.InvariantCulture)));
            }
            table.Write(Console.Out);
            return 0;
        });
        var policyCommand = new Command("policy", "The datapath's policy maps");
        policyCommand.Subcommands.Add(get);
        return policyCommand;
    }

    private static void WarnIfNotApplied(PolicyChangeResponse response)
    {
        if (!response.Applied)
        {
            Console.Error.WriteLine("warning: some kernel writes failed; the agent retries them (see its log)");
        }
    }

    private static (string Namespace, string Name) Key(string text)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? ("default", text) : (text[..slash], text[(slash + 1)..]);
    }

    private static bool TryPort(string text, out int port, out string protocol)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        protocol = slash < 0 ? "TCP" : text[(slash + 1)..];
        return int.TryParse(slash < 0 ? text : text[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out port)
            && port <= ushort.MaxValue && protocol.Length > 0;
    }
}
