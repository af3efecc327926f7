using System.Diagnostics;
using Membrane.Policy.Model;
using Membrane.Policy.Parsing;
using Membrane.Policy.Repository;

namespace Membrane.Policy.Tests;

public class RepositoryTests
{
    private static string Cnp(string name, string ns = "default", string app = "web") =>
        $"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{endpointSelector: {{matchLabels: {{app: {app}}}}}, ingress: [{{}}]}}\n";

    [Fact]
    public void Apply_adds_and_replaces_by_namespace_and_name()
    {
        var repo = new PolicyRepository();
        Assert.Equal(0, repo.Current.Revision);
        var first = repo.Apply(new PolicyDocumentParser().Parse("a.yaml", Cnp("a") + "---\n" + Cnp("a", "prod") + "---\n" + Cnp("b")));
        Assert.Equal(["default/a", "default/b", "prod/a"], repo.Current.Policies.Keys.Select(k => k.ToString()));
        Assert.Equal((0, 1), (first.Previous.Revision, first.Current.Revision));
        var old = repo.Current;
        var second = repo.Apply(new PolicyDocumentParser().Parse("a.yaml", Cnp("a", app: "api")));
        Assert.Equal(["default/a"], second.Keys.Select(k => k.ToString()));
        Assert.Equal(3, repo.Current.Policies.Count);
        Assert.Contains("any:app=api", repo.Current.Policies[new PolicyKey("default", "a")].Specs[0].Subject.ToString());
        // The earlier snapshot is untouched.
        Assert.Contains("any:app=web", old.Policies[new PolicyKey("default", "a")].Specs[0].Subject.ToString());
        Assert.Same(old.Policies[new PolicyKey("default", "b")], repo.Current.Policies[new PolicyKey("default", "b")]);
    }

    [Fact]
    public void A_failed_import_is_refused_whole()
    {
        var repo = new PolicyRepository();
        var import = new PolicyDocumentParser().Parse("a.yaml", Cnp("a") + "---\n" + Cnp("b").Replace("ingress: [{}]", "ingress: [{fromEntities: [moon]}]"));
        var e = Assert.Throws<ArgumentException>(() => repo.Apply(import));
        Assert.StartsWith("failed to apply policy import: it has 1 error(s)", e.Message);
        Assert.Contains("spec.ingress[0].fromEntities[0]", e.Message);
        Assert.Empty(repo.Current.Policies);
        Assert.Equal(0, repo.Current.Revision);
    }

    [Fact]
    public void Delete_one_and_delete_all()
    {
        var repo = new PolicyRepository();
        repo.Apply(new PolicyDocumentParser().Parse("a.yaml", Cnp("a") + "---\n" + Cnp("b") + "---\n" + Cnp("a", "prod")));
        Assert.True(repo.Delete(new PolicyKey("default", "a"), out var change));
        Assert.Equal(["default/a"], change!.Keys.Select(k => k.ToString()));
        Assert.False(repo.Delete(new PolicyKey("default", "a"), out var none));
        Assert.Null(none);
        Assert.Equal(["default/b", "prod/a"], repo.Current.Policies.Keys.Select(k => k.ToString()));
        var all = repo.DeleteAll();
        Assert.Equal(["default/b", "prod/a"], all.Keys.Select(k => k.ToString()));
        Assert.Empty(repo.Current.Policies);
        Assert.Empty(repo.Current.Specs);
        Assert.Equal(3, repo.Current.Revision); // apply, delete, delete --all; the failed delete changes nothing
    }

    [Fact]
    public void Cidr_prefixes_list_blocks_and_excepts_once()
    {
        var snapshot = EvaluatorTests.Policies("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: c}
            spec:
              endpointSelector: {}
              egress:
              - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16, 10.2.0.0/16]}]
              - toCIDR: [10.1.0.0/16, "2001:db8::/48", 0.0.0.0/0]
            """);
        Assert.Equal(["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "2001:db8::/48"], snapshot.CidrPrefixes.Select(p => p.ToString()));
    }

    [Fact]
    public void Alias_bombs_are_refused_quickly()
    {
        var yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + string.Join("", Enumerable.Range(1, 9).Select(i =>
            $"{(char)('a' + i)}: &{(char)('a' + i)} [{string.Join(", ", Enumerable.Repeat($"*{(char)('a' + i - 1)}", 10))}]\n"));
        var watch = Stopwatch.StartNew();
        var import = new PolicyDocumentParser().Parse("bomb.yaml", yaml);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
        var error = Assert.Single(import.Errors);
        Assert.Contains("aliases expand to more than", error.Reason);
        Assert.Equal(1, error.Document);
        Assert.Equal(5, error.Line); // e: ten aliases of d (11,111 nodes each) cross the limit
        // An aliased complex key is exponential inside YamlDotNet's loader itself; it is refused before loading.
        var keyBomb = "---\nkind: x\n---\n" + yaml.Replace("a: &a", "a0: &a")[..yaml.IndexOf("g:", StringComparison.Ordinal)] + "z: {? *f : 1}\n";
        watch.Restart();
        var keyImport = new PolicyDocumentParser().Parse("key.yaml", keyBomb);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal((2, "key.yaml"), (Assert.Single(keyImport.Errors).Document, keyImport.Errors[0].File));
        // A large document without aliases is no bomb: 12,000 rules are ~200,000 nodes.
        var large = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: large}\nspecs:\n" + string.Concat(Enumerable.Range(0, 12_000).Select(i =>
            $"- endpointSelector: {{matchLabels: {{app: web}}}}\n  ingress: [{{toPorts: [{{ports: [{{port: \"{1000 + i}\", protocol: TCP}}]}}]}}]\n"));
        var largeImport = new PolicyDocumentParser().Parse("large.yaml", large);
        Assert.True(largeImport.Succeeded, largeImport.ErrorText);
        Assert.Equal(12_000, Assert.Single(largeImport.Policies).Specs.Count);
        // Modest anchors are fine.
        var ok = new PolicyDocumentParser().Parse("ok.yaml", """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: anchors}
            spec:
              endpointSelector: &web {matchLabels: {app: web}}
              egress:
              - toEndpoints: [*web]
            """);
        Assert.True(ok.Succeeded, ok.ErrorText);
    }
}
