using System.Diagnostics;
using System.Globalization;
using System.Text;
using Membrane.Policy.Model;
using Xunit.Abstractions;

namespace Membrane.Datapath.Tests.Policy;

/// <summary>
/// Issue 6's agreement test: for generated policy sets and identities
/// (<see cref="PolicyDifferentialScenario"/>: pods in two namespaces, CiliumNetworkPolicy and
/// NetworkPolicy YAML read by the real parser, resolved by the real resolver, written into the
/// kernel maps through the Datapath API as the agent writes them), every cell of a matrix of
/// (source, destination, protocol, port) first packets is run through the kernel program with
/// BPF_PROG_TEST_RUN and judged by the C# reference evaluator, and the two must agree on the
/// verdict and, for a drop, on its reason (POLICY_DENIED: nothing allowed it, POLICY_DENY: a
/// deny rule matched).
/// </summary>
/// <remarks>
/// <para>Each seed runs two steps: the policies as first imported, then an update (one policy
/// rewritten, one added, one deleted) resolved incrementally and written as the agent writes
/// it, only to the pods whose maps changed. Both directions of a cell, both IP families, TCP
/// and UDP on every range edge the rules use, and ICMP/ICMPv6 echo; pods, addresses outside
/// the cluster on both sides of every CIDR and except, the node (host) and another node
/// (remote-node); allow-localhost on in odd seeds.</para>
/// <para>Besides the evaluator, the kernel is held to the lookup of the very entries it was
/// given (EndpointPolicyMap.Lookup), without exception; and the same matrix is checked
/// without the kernel (resolver vs evaluator), so that a disagreement can be placed: in the
/// resolver (both fail) or in the datapath (only the kernel test fails).</para>
/// <para>It found one: a zero-length CIDR selected the world identity, which stands for
/// addresses of both families, so 0.0.0.0/0 also allowed IPv6 (and ::/0 IPv4). A /0 block now
/// selects only the CIDR identities within it (its own included), as the evaluator matches.</para>
/// </remarks>
[Collection("kernel")]
public sealed class PolicyDifferentialTests(ITestOutputHelper output)
{
    /// <summary>Fixed seeds: the same scenarios every run. Odd seeds run with allow-localhost.</summary>
    private static readonly int[] s_seeds = [.. Enumerable.Range(1, 16)];

    public static TheoryData<int> Seeds() => [.. s_seeds];

    [SkippableTheory]
    [MemberData(nameof(Seeds))]
    public void TheKernelAndTheEvaluatorAgreeOnEveryCell(int seed)
    {
        var scenario = PolicyDifferentialScenario.Generate(seed);
        using var lab = new PolicyDifferentialLab(scenario);
        var clock = Stopwatch.StartNew();
        lab.WriteScenario();
        var disagreements = new List<string>();
        var unlikeMaps = new List<string>();
        var verdicts = new List<CellVerdict>();
        var description = "";
        // Two steps: the policies as first imported, then after a rewrite, an addition and a
        // deletion written incrementally, as the agent writes them.
        foreach (var step in new[] { "import", "update" })
        {
            if (step == "update")
            {
                lab.ApplyUpdate(scenario.Update());
            }
            description += $"\n--- after the {step}:\n{scenario.Describe()}";
            // The pod already on the test-run device first: after the update its entries there
            // are the incrementally updated ones.
            foreach (var pod in scenario.Pods.OrderBy(p => p == lab.Mounted ? 0 : 1))
            {
                // The cells this pod sends (from_pod) or receives through to_pod.
                lab.Mount(pod);
                foreach (var cell in scenario.Cells().Where(c => c.UnderTest == pod))
                {
                    var (kernel, detail) = lab.Run(cell);
                    verdicts.Add(kernel);
                    var verdict = scenario.Evaluate(cell);
                    var expected = PolicyDifferentialScenario.Expected(verdict);
                    if (kernel != expected)
                    {
                        var text = DescribeCell(scenario, cell, $"{step}: kernel {kernel} ({detail}), evaluator {expected}", verdict);
                        disagreements.Add(text);
                    }
                    // Whatever the evaluator says, the kernel must do what the entries it was given say.
                    if (kernel != scenario.Resolved(cell))
                    {
                        unlikeMaps.Add(DescribeCell(scenario, cell, $"{step}: kernel {kernel} ({detail}), resolved maps {scenario.Resolved(cell)}", verdict));
                    }
                }
            }
        }
        output.WriteLine($"seed {seed}: {verdicts.Count} cells in {clock.ElapsedMilliseconds} ms; " + Tally(verdicts));
        Assert.True(unlikeMaps.Count == 0,
            $"{unlikeMaps.Count} of {verdicts.Count} cells: the kernel did not do what its policy entries say:\n{string.Join("\n", unlikeMaps)}\n{description}");
        Assert.True(disagreements.Count == 0,
            $"{disagreements.Count} of {verdicts.Count} cells disagree (kernel vs evaluator):\n{string.Join("\n", disagreements)}\n{description}");
        AssertNonTrivial(seed, verdicts);
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void TheResolvedMapsAndTheEvaluatorAgreeOnEveryCell(int seed)
    {
        var scenario = PolicyDifferentialScenario.Generate(seed);
        var disagreements = new List<string>();
        var verdicts = new List<CellVerdict>();
        var description = "";
        foreach (var step in new[] { "import", "update" })
        {
            if (step == "update")
            {
                scenario.Update();
            }
            description += $"\n--- after the {step}:\n{scenario.Describe()}";
            foreach (var cell in scenario.Cells())
            {
                var resolved = scenario.Resolved(cell);
                var verdict = scenario.Evaluate(cell);
                var expected = PolicyDifferentialScenario.Expected(verdict);
                verdicts.Add(resolved);
                if (resolved != expected)
                {
                    var text = DescribeCell(scenario, cell, $"{step}: resolved maps {resolved}, evaluator {expected}", verdict);
                    disagreements.Add(text);
                }
            }
        }
        output.WriteLine($"seed {seed}: {verdicts.Count} cells; {Tally(verdicts)}");
        Assert.True(disagreements.Count == 0,
            $"{disagreements.Count} of {verdicts.Count} cells disagree (resolver vs evaluator):\n{string.Join("\n", disagreements)}\n{description}");
        AssertNonTrivial(seed, verdicts);
    }

    [Fact]
    public void TheGeneratedYamlIsWhatTheParserReadsAndCoversTheFeatures()
    {
        // Over all seeds the generator must write every construct the test is meant to cover,
        // or the agreement above says nothing about it.
        var yaml = string.Join("\n", s_seeds.Select(seed =>
        {
            var scenario = PolicyDifferentialScenario.Generate(seed);
            var first = scenario.Yaml;
            scenario.Update();
            return first + "\n" + scenario.Yaml;
        }));
        string[] features =
        [
            "kind: \"CiliumNetworkPolicy\"", "kind: \"NetworkPolicy\"", "matchLabels:", "operator: \"In\"", "operator: \"NotIn\"",
            "operator: \"Exists\"", "operator: \"DoesNotExist\"", "fromEndpoints:", "toEndpoints:", "fromEntities:", "toEntities:",
            "- \"world\"", "- \"host\"", "- \"all\"", "- \"cluster\"", "fromCIDR:", "toCIDR:", "fromCIDRSet:", "toCIDRSet:", "except:",
            "endPort:", "protocol: \"TCP\"", "protocol: \"UDP\"", "protocol: \"ANY\"", "protocol: \"ICMP\"", "protocol: \"ICMPv6\"",
            "icmps:", "family: \"IPv6\"", "\"fd00:198:18:", "\"::/0\"", "\"0.0.0.0/0\"",
            "ingressDeny:", "egressDeny:", "namespaceSelector:", "ipBlock:", "policyTypes:", "\"k8s:io.kubernetes.pod.namespace\":",
        ];
        var missing = features.Where(f => !yaml.Contains(f, StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "the generator never wrote: " + string.Join(", ", missing));
        // And some pod is selected by no rule set in some seed (it is unrestricted).
        Assert.Contains(s_seeds.Select(PolicyDifferentialScenario.Generate),
            s => s.Pods.Any(p => !s.Policies.Specs.Any(spec => spec.Subject.Matches(p.Labels))));
    }

    /// <summary>Every seed's matrix has allowed cells and drops of both kinds: the agreement cannot hold vacuously.</summary>
    private static void AssertNonTrivial(int seed, IReadOnlyCollection<CellVerdict> verdicts)
    {
        foreach (var kind in new[] { CellVerdict.Allowed, CellVerdict.PolicyDenied, CellVerdict.PolicyDeny })
        {
            Assert.True(verdicts.Contains(kind), $"seed {seed}: no cell is {kind} ({Tally(verdicts)}): the matrix is trivial");
        }
    }

    private static string Tally(IEnumerable<CellVerdict> verdicts) =>
        string.Join(", ", verdicts.GroupBy(v => v).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"));

    private static string DescribeCell(PolicyDifferentialScenario scenario, DiffCell cell, string what, Membrane.Policy.Evaluation.PolicyVerdict verdict)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"- {cell}: {what}\n");
        sb.Append(CultureInfo.InvariantCulture, $"    source {cell.Source} (datapath identity {scenario.IdentityOf(cell.Source, cell.Family)})\n");
        sb.Append(CultureInfo.InvariantCulture, $"    destination {cell.Destination} (datapath identity {scenario.IdentityOf(cell.Destination, cell.Family)})\n");
        sb.Append("    evaluator: ").Append(verdict.ToString().Replace("\n", "\n    ", StringComparison.Ordinal)).Append('\n');
        if (cell.Source.Pod is { } source)
        {
            sb.Append("    resolved: ").Append(scenario.DescribeMatchingEntries(source, TrafficDirection.Egress, cell)).Append('\n');
        }
        if (cell.Destination.Pod is { } destination)
        {
            sb.Append("    resolved: ").Append(scenario.DescribeMatchingEntries(destination, TrafficDirection.Ingress, cell)).Append('\n');
        }
        return sb.ToString();
    }
}
