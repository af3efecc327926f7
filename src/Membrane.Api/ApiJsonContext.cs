using System.Text.Json.Serialization;

namespace Membrane.Api;

/// <summary>Source-generated JSON metadata for every API type (no reflection: NativeAOT-safe, fast start).</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CniAddRequest))]
[JsonSerializable(typeof(CniAddResponse))]
[JsonSerializable(typeof(CniDelRequest))]
[JsonSerializable(typeof(CniCheckRequest))]
[JsonSerializable(typeof(CniGcRequest))]
[JsonSerializable(typeof(CniGcResponse))]
[JsonSerializable(typeof(EndpointInfo))]
[JsonSerializable(typeof(List<EndpointInfo>))]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(List<BpfEndpointEntry>))]
[JsonSerializable(typeof(List<BpfMetricEntry>))]
[JsonSerializable(typeof(List<BpfConntrackEntry>))]
[JsonSerializable(typeof(ConntrackFlushResponse))]
[JsonSerializable(typeof(ConntrackGcRunInfo))]
[JsonSerializable(typeof(ConntrackStatsResponse))]
[JsonSerializable(typeof(IdentityEntry))]
[JsonSerializable(typeof(List<IdentityEntry>))]
[JsonSerializable(typeof(EndpointLabelsRequest))]
[JsonSerializable(typeof(EndpointLabelsResponse))]
[JsonSerializable(typeof(PolicyImportRequest))]
[JsonSerializable(typeof(PolicyChangeResponse))]
[JsonSerializable(typeof(List<PolicyInfo>))]
[JsonSerializable(typeof(List<PolicySelectorEntry>))]
[JsonSerializable(typeof(BpfPolicyResponse))]
[JsonSerializable(typeof(PolicyTraceRequest))]
[JsonSerializable(typeof(PolicyTraceResponse))]
public sealed partial class ApiJsonContext : JsonSerializerContext;
