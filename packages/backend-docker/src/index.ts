export { DockerBackend, createDockerBackend, type DockerBackendOptions } from "./backend.js";
export { DockerExecTransport, type DockerExecTransportOptions, type DemuxModem } from "./transport.js";
export {
  EXECUTOR_UID,
  EXECUTOR_USER,
  containerTemplate,
  hardenedHostConfig,
  type ContainerTemplate,
} from "./container-spec.js";
export { BUILD_IMAGE_HINT, mapDockerError } from "./errors.js";
export { KeyedMutex } from "./mutex.js";
