namespace Membrane.Testing;

/// <summary>Policy YAML the agent, CLI and node tests share.</summary>
public static class PolicyFixtures
{
    /// <summary>A CiliumNetworkPolicy in namespace default: pods app=backend accept app=frontend on 8080/TCP.</summary>
    public const string Backend = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: backend
          namespace: default
        spec:
          endpointSelector:
            matchLabels:
              app: backend
          ingress:
          - fromEndpoints:
            - matchLabels:
                app: frontend
            toPorts:
            - ports:
              - port: "8080"
                protocol: TCP
        """;
}
