/**
 * `bulkhead`: the main app's entry point.
 * @example
 * ```ts
 * import { Broker } from 'bulkhead';
 * const broker = new Broker({ root: appDir });
 * broker.register({ name: 'com.example.echo', entry: './echo-service.js', protocol: 'com.example.echo' });
 * const echo = broker.connect('com.example.echo');
 * await echo.call('echo', { text: 'hi' }); // launches the helper on demand
 * await broker.close();
 * ```
 * @module
 */
export { Broker, type BrokerOptions, type BrokerEvents, type BrokerConfig, type LogLine, type ReloadResult } from './broker/broker.js';
export { LAUNCH_DEFAULTS, SERVICE_MANIFEST_SCHEMA, checkManifest, type ServiceManifest, type LaunchPolicy, type LaunchTunables, type KeepAliveConditions } from './broker/manifest.js';
export type { ScheduleSpec } from './broker/schedule.js';
export type { JobRunResult, JobStatus } from './broker/job-runner.js';
export { systemClock, type Clock, type ClockTimer } from './broker/clock.js';
export type { ServiceState, ServiceStatus } from './broker/service-supervisor.js';
export type { ExitInfo } from './broker/helper-process.js';
export type { CallBatch } from './connection/call-meter.js';
export { Connection, type AnyEventOf, type CallOptions, type ConnectionOptions, type ConnectionEvents, type StreamOptions } from './connection/connection.js';
export { typedServices, type ServiceConnector, type RegisteredService, type ServiceTypes, type TypedServices } from './broker/typed-services.js';
export { StreamCall } from './connection/stream-call.js';
export { RECEIVER_BYTES_FACTOR, STREAM_WINDOW } from './connection/stream-flow.js';
export { EVENT_BACKLOG } from './connection/event-pressure.js';
export type { CallOwner } from './connection/rpc-client.js';
export { BulkheadError, ERROR_CODES, isBulkheadError, isErrorCode, type BulkheadErrorCode, type SerializedError, type ErrorDataMap, type ErrorData, type ExitData, type SourceData, type RefusalData } from './errors.js';
export type { AnyProtocol, ProtocolShape, MethodName, ParamsOf, ResultOf, YieldsOf, AcceptsOf, EventName, EventPayload } from './protocol/types.js';
export { CompiledProtocol, type CompileOptions, type KnownHash, type ValidationIssue, type ValidationPart } from './protocol/compiled-protocol.js';
export { type ProtocolDocument, type MethodDocument, type EventDocument } from './protocol/document.js';
export { PROTOCOL_DOCUMENT_SCHEMA } from './protocol/document-schema.js';
export { loadProtocol, loadProtocolFile } from './protocol/registry.js';
export { ENDPOINT_KEYWORD, isEndpoint, type Endpoint } from './protocol/endpoint-keyword.js';
export { ENDPOINT_TTL_MS, ENDPOINT_MAX_TTL_MS, ENDPOINT_MAX_PER_ISSUER } from './broker/endpoint-table.js';
export type { PeerInfo } from './wire/envelope.js';
export { DEFAULT_MAX_FRAME_BYTES } from './wire/frame-decoder.js';
export { releaseBytes } from './wire/body-pool.js';
export { PROFILE_SCHEMA, checkProfile, parseProfile, type EnforcementReport, type RuleEnforcement, type SandboxGrants, type SandboxProfile, type ProfileProblem, type NetworkRule, type UidRange } from './sandbox/index.js';
export type { CgroupMemoryEvents } from './sandbox/cgroup.js';
export type { Disposable } from './util/emitter.js';
export { RemoteBroker, connectTo, type RemoteBrokerOptions, type RemoteConnectOptions } from './daemon/remote-broker.js';
export type { ClientIdentity } from './daemon/remote-endpoint.js';
export { BrokerMetrics, CALL_DURATION_BUCKETS, METRICS_CONTENT_TYPE, type MetricsSource } from './broker/metrics.js';
export { DIAGNOSTICS_CHANNELS, type CallRecord } from './broker/diagnostics.js';
