export { KubernetesBackend, createKubernetesBackend, type KubernetesBackendOptions } from "./backend.js";
export { KubernetesPlatform, type KubernetesPlatformOptions } from "./platform.js";
export { podResource, sessionFromPod, stateFromAnnotations } from "./lookup.js";
export { Pods, type PodsOptions } from "./pods.js";
export { KubernetesPool, MEMBER_SELECTOR, type KubernetesPoolOptions } from "./pool.js";
export {
  ANNOTATION_CLAIMED_AT,
  ANNOTATION_CLAIM_ID,
  CLAIM_ANNOTATIONS,
  LABEL_POOL_CLAIMED,
  buildMemberPod,
  claimPatch,
  deadlineSecondsFor,
  layerName,
  memberPodName,
  podNameOf,
  splitTags,
  type ClaimPatch,
  type MemberPodInput,
} from "./pool-spec.js";
export {
  ANNOTATION_EXPIRES_AT,
  ANNOTATION_EXPIRES_AT_ISO,
  ANNOTATION_LAST_ACTIVE_AT,
  EXECUTOR_CONTAINER,
  EXECUTOR_UID,
  DEFAULT_KEEPER_SLACK_SECONDS,
  KEEPER_STATE_ARG,
  KEEPER_STATE_DIR,
  KEEPER_STATE_PATH,
  buildExecutorPod,
  buildSessionPod,
  cpuQuantity,
  executorReapAfter,
  miQuantity,
  podMemoryLimitMb,
  restrictedContainerSecurityContext,
} from "./pod-spec.js";
export type { ExecutorPodInput, ImagePullPolicy, PodSpecOptions, SessionPodInput } from "./pod-spec.js";
export { EXEC_V5_PROTOCOL, PodExecTransport, exitCodeFromStatus } from "./exec-transport.js";
export {
  isNotFound,
  isUnreachable,
  refusalCause,
  toCoreError,
  unschedulableError,
  type RefusalCause,
} from "./k8s-errors.js";
export {
  DEFAULT_K8S_REQUEST_TIMEOUT_MS,
  DeadlineKubeConfig,
  DeadlineWebSocketHandler,
  KubernetesRequestCancelledError,
  KubernetesTimeoutError,
  deadlineHttpLibrary,
  loadDeadlineKubeConfig,
  withSignal,
  type DeadlineOptions,
} from "./deadline.js";
export { CREATE_FAILURES, IMAGE_FAILURES, describePending, podStartError } from "./pod-status.js";
export { deletePodQuietly, startPod, waitForPodRunning, type StartPodOptions } from "./pod-start.js";
