export { KubernetesBackend, createKubernetesBackend, type KubernetesBackendOptions } from "./backend.js";
export { KubernetesPlatform, type KubernetesPlatformOptions } from "./platform.js";
export { podResource, sessionFromPod, stateFromAnnotations } from "./lookup.js";
export { Pods, type PodsOptions } from "./pods.js";
export {
  ANNOTATION_EXPIRES_AT,
  ANNOTATION_EXPIRES_AT_ISO,
  ANNOTATION_LAST_ACTIVE_AT,
  EXECUTOR_CONTAINER,
  EXECUTOR_UID,
  NETWORK_LOCKDOWN_SCRIPT,
  buildExecutorPod,
  buildSessionPod,
  cpuQuantity,
  executorReapAfter,
  miQuantity,
  restrictedContainerSecurityContext,
} from "./pod-spec.js";
export type { ExecutorPodInput, ImagePullPolicy, PodSpecOptions, SessionPodInput } from "./pod-spec.js";
export { PodExecTransport, exitCodeFromStatus } from "./exec-transport.js";
export { toCoreError, isNotFound, isUnreachable } from "./k8s-errors.js";
