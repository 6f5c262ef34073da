export { DockerBackend, DEFAULT_IMAGE, createDockerBackend, type DockerBackendOptions } from "./backend.js";
export { DockerPlatform, type DockerPlatformOptions } from "./platform.js";
export { DockerExecTransport, type DockerExecTransportOptions, type DemuxModem } from "./transport.js";
export {
  EXECUTOR_UID,
  EXECUTOR_USER,
  STATE_MOUNT,
  containerTemplate,
  hardenedHostConfig,
  type ContainerTemplate,
} from "./container-spec.js";
export { BUILD_IMAGE_HINT, mapDockerError } from "./errors.js";
export { KeyedMutex } from "@code-interpreter/core/backend-kit";
