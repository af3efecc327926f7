using Membrane.Policy.Identities;
using Membrane.Policy.Labels;

namespace Membrane.Policy.Tests;

public class LabelSetTests
{
    [Fact]
    public void Labels_without_source_get_k8s_and_equal_their_prefixed_form()
    {
        var a = LabelSet.Parse("app=web", "k8s:io.kubernetes.pod.namespace=prod");
        var b = LabelSet.Parse("k8s:io.kubernetes.pod.namespace=prod", "k8s:app=web");
        Assert.Equal(a, b);
        Assert.Equal("k8s:app=web;k8s:io.kubernetes.pod.namespace=prod", a.ToString());
        Assert.Equal("prod", a.Namespace);
    }

    [Fact]
    public void Canonical_string_is_sorted_by_source_then_key()
    {
        var set = LabelSet.Parse("zeta=1", "container:alpha=2", "k8s:beta=3");
        Assert.Equal("container:alpha=2;k8s:beta=3;k8s:zeta=1", set.ToString());
        Assert.True(LabelSet.TryParse(set.ToString(), out var back, out _));
        Assert.Equal(set, back);
    }

    [Theory]
    [InlineData("app=web,app=db", "given twice")]
    [InlineData("-bad=1", "must be 1–63 characters")]
    [InlineData("app=va lue", "label value")]
    [InlineData("any:app=web", "only meaningful in selectors")]
    [InlineData("=x", "empty")]
    [InlineData("Example.com/app=x", "DNS subdomain")]
    public void Invalid_sets_are_refused_with_the_reason(string text, string why)
    {
        Assert.False(LabelSet.TryParse(text, out var set, out var error));
        Assert.Null(set);
        Assert.Contains(why, error);
    }

    [Fact]
    public void Reserved_sets_carry_the_reserved_source_and_numbers_match_design()
    {
        Assert.Equal("reserved:host=", ReservedIdentities.LabelsOf(ReservedIdentities.Host).ToString());
        Assert.Equal((1u, 2u, 3u, 4u, 5u, 6u),
            (ReservedIdentities.Host, ReservedIdentities.World, ReservedIdentities.Unmanaged, ReservedIdentities.Health,
                ReservedIdentities.Init, ReservedIdentities.RemoteNode));
        Assert.Equal(["host", "world", "unmanaged", "health", "init", "remote-node"],
            ReservedIdentities.All.Select(i => ReservedIdentities.NameOf(i.Id)));
        Assert.All(ReservedIdentities.All, i => Assert.True(i.Labels.IsReserved(ReservedIdentities.NameOf(i.Id)!)));
        Assert.True(ReservedIdentities.TryGet("remote-node", out var rn));
        Assert.Equal(6u, rn);
        Assert.False(ReservedIdentities.TryGet("unknown", out _));
    }

    [Fact]
    public void With_and_without_edit_one_label()
    {
        var set = LabelSet.Parse("app=web", "tier=front");
        var changed = set.With(new Label("k8s", "app", "db")).Without("k8s", "tier");
        Assert.Equal("k8s:app=db", changed.ToString());
        Assert.Equal("k8s:app=web;k8s:tier=front", set.ToString());
    }
}
