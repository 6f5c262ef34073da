export * from "./errors.js";
export * from "./naming.js";
export * from "./labels.js";
export * from "./paths.js";
export * from "./lifetime.js";
export * from "./backend.js";
export * from "./output.js";
export * from "./config.js";
export * from "./session.js";
export * from "./executor-scripts.js";
export * from "./exec-runner.js";
export {
  AgentChannel,
  AgentChannelError,
  type AgentChannelOptions,
  type AgentExecResult,
  type AgentHello,
  type StateReset,
} from "./agent/channel.js";
export { AgentChannels, type AgentChannelsOptions } from "./agent/channels.js";
export {
  AGENT_HEADER_BYTES,
  AGENT_MAX_PAYLOAD,
  AgentFrameParser,
  AgentReplyKind,
  AgentRequestKind,
  encodeAgentFrame,
} from "./agent/protocol.js";
