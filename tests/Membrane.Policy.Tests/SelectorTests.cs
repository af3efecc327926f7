using CsCheck;
using Membrane.Policy.Identities;
using Membrane.Policy.Labels;
using Membrane.Policy.Selectors;

namespace Membrane.Policy.Tests;

public class SelectorTests
{
    private static SelectorRequirement Req(string key, SelectorOperator op, params string[] values) =>
        SelectorRequirement.TryCreate(key, op, values, LabelSource.Any, out var r, out var e) ? r : throw new InvalidOperationException(e);

    [Fact]
    public void Empty_selector_selects_everything_including_reserved()
    {
        Assert.True(EndpointSelector.All.Matches(LabelSet.Empty));
        Assert.True(EndpointSelector.All.Matches(LabelSet.ForReserved("world")));
        Assert.Equal("{}", EndpointSelector.All.ToString());
    }

    [Theory]
    // labels, requirement, expected: Kubernetes LabelSelector semantics per operator.
    [InlineData("app=web", "app", SelectorOperator.In, "web,db", true)]
    [InlineData("app=api", "app", SelectorOperator.In, "web,db", false)]
    [InlineData("tier=x", "app", SelectorOperator.In, "web", false)]
    [InlineData("app=api", "app", SelectorOperator.NotIn, "web,db", true)]
    [InlineData("app=web", "app", SelectorOperator.NotIn, "web,db", false)]
    [InlineData("tier=x", "app", SelectorOperator.NotIn, "web", true)] // absent key satisfies NotIn
    [InlineData("app=", "app", SelectorOperator.Exists, "", true)]
    [InlineData("tier=x", "app", SelectorOperator.Exists, "", false)]
    [InlineData("tier=x", "app", SelectorOperator.DoesNotExist, "", true)]
    [InlineData("app=web", "app", SelectorOperator.DoesNotExist, "", false)]
    [InlineData("container:app=web", "k8s:app", SelectorOperator.Exists, "", false)] // source must match
    [InlineData("container:app=web", "app", SelectorOperator.Exists, "", true)]      // any: matches every source
    [InlineData("k8s:app=web", "container:app", SelectorOperator.NotIn, "web", true)]
    public void Operators_follow_kubernetes(string labels, string key, SelectorOperator op, string values, bool expected)
    {
        var set = LabelSet.Parse(labels.Split(';'));
        var req = Req(key, op, values.Length == 0 ? [] : values.Split(','));
        Assert.Equal(expected, new EndpointSelector([req]).Matches(set));
    }

    [Theory]
    [InlineData(SelectorOperator.In, new string[0], "needs at least one value")]
    [InlineData(SelectorOperator.NotIn, new string[0], "needs at least one value")]
    [InlineData(SelectorOperator.Exists, new[] { "a" }, "takes no values")]
    [InlineData(SelectorOperator.DoesNotExist, new[] { "a" }, "takes no values")]
    public void Requirement_arity_is_validated(SelectorOperator op, string[] values, string why)
    {
        Assert.False(SelectorRequirement.TryCreate("app", op, values, LabelSource.Any, out _, out var error));
        Assert.Contains(why, error);
    }

    [Fact]
    public void Selectors_are_canonical_regardless_of_order_and_duplicates()
    {
        var a = new EndpointSelector([Req("b", SelectorOperator.In, "2", "1"), Req("a", SelectorOperator.Exists)]);
        var b = new EndpointSelector([Req("a", SelectorOperator.Exists), Req("b", SelectorOperator.In, "1", "2"), Req("a", SelectorOperator.Exists)]);
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.Equal("any:a,any:b in (1,2)", a.ToString());
    }

    [Fact]
    public void Entities_map_to_reserved_identities_like_cilium()
    {
        var pod = LabelSet.Parse("app=web", "k8s:io.kubernetes.pod.namespace=default");
        bool Selects(string entity, LabelSet labels) =>
            Entities.TryGetSelectors(entity, out var s) && s.Any(x => x.Matches(labels));
        foreach (var reserved in ReservedIdentities.All)
        {
            var name = ReservedIdentities.NameOf(reserved.Id)!;
            Assert.True(Selects(name, reserved.Labels), name);
            Assert.True(Selects("all", reserved.Labels));
            Assert.Equal(name != "world", Selects("cluster", reserved.Labels));
            Assert.False(Selects(name, pod));
        }
        Assert.True(Selects("cluster", pod));
        Assert.True(Selects("all", pod));
        Assert.False(Entities.TryGetSelectors("kube-apiserver", out _));
        Assert.True(Entities.IsKnownButUnsupported("kube-apiserver"));
        Assert.Equal(8, Entities.Names.Count);
    }

    // Property tests against an oracle written from the Kubernetes docs over a plain
    // dictionary (one source, so "any" and "k8s" coincide), not from the implementation.
    private static readonly string[] Keys = ["app", "tier", "env"];
    private static readonly string[] Values = ["a", "b", "c"];

    private static readonly Gen<Dictionary<string, string>> GenLabels =
        Gen.Select(Gen.OneOfConst(Keys).Array[0, 3], Gen.OneOfConst(Values).Array[3])
            .Select((keys, vals) => keys.Distinct().Select((k, i) => (k, vals[i])).ToDictionary(x => x.k, x => x.Item2));

    private static readonly Gen<(string Key, SelectorOperator Op, string[] Values)> GenReq =
        from key in Gen.OneOfConst(Keys)
        from op in Gen.Enum<SelectorOperator>()
        from values in Gen.OneOfConst(Values).Array[1, 3]
        select (key, op, op is SelectorOperator.In or SelectorOperator.NotIn ? values : []);

    private static bool Oracle(Dictionary<string, string> labels, (string Key, SelectorOperator Op, string[] Values)[] reqs) =>
        reqs.All(r => r.Op switch
        {
            SelectorOperator.In => labels.TryGetValue(r.Key, out var v) && r.Values.Contains(v),
            SelectorOperator.NotIn => !labels.TryGetValue(r.Key, out var v) || !r.Values.Contains(v),
            SelectorOperator.Exists => labels.ContainsKey(r.Key),
            _ => !labels.ContainsKey(r.Key),
        });

    [Fact]
    public void Selector_matches_the_kubernetes_oracle()
    {
        Gen.Select(GenLabels, GenReq.Array[0, 4]).Sample((labels, reqs) =>
        {
            var set = LabelSet.Parse([.. labels.Select(kv => $"{kv.Key}={kv.Value}")]);
            var selector = new EndpointSelector(reqs.Select(r => Req(r.Key, r.Op, r.Values)));
            return selector.Matches(set) == Oracle(labels, reqs);
        }, iter: 5000);
    }

    [Fact]
    public void Selector_is_the_conjunction_of_its_requirements_and_in_of_one_value_is_matchlabels()
    {
        Gen.Select(GenLabels, GenReq.Array[0, 4]).Sample((labels, reqs) =>
        {
            var set = LabelSet.Parse([.. labels.Select(kv => $"{kv.Key}={kv.Value}")]);
            var parts = reqs.Select(r => Req(r.Key, r.Op, r.Values)).ToArray();
            var whole = new EndpointSelector(parts).Matches(set);
            var each = parts.All(p => new EndpointSelector([p]).Matches(set));
            // NotIn is the complement of In; DoesNotExist of Exists.
            var complements = parts.All(p => p.Operator switch
            {
                SelectorOperator.In => p.Matches(set) != Req(p.Key, SelectorOperator.NotIn, [.. p.Values]).Matches(set),
                SelectorOperator.Exists => p.Matches(set) != Req(p.Key, SelectorOperator.DoesNotExist).Matches(set),
                _ => true,
            });
            return whole == each && complements;
        }, iter: 3000);
    }
}
