package v1alpha1

// Condition types shared by every camfleet kind. Ready is the summary a user reads first;
// Reconciling and Stalled are "abnormal-true" (kstatus): present and True only while the
// controller is working or cannot make progress without a change from the user.
const (
	// ConditionReady is True when the object does what its spec asks.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the controller is moving the object toward its spec.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when progress needs a change from the user, such as a fixed spec.
	ConditionStalled = "Stalled"
	// ConditionKeysPublished is True on a TokenPolicy whose JWKS ConfigMap holds every key
	// that must be published, active key included.
	ConditionKeysPublished = "KeysPublished"
)

// Condition reasons. CamelCase, stable: alerts and scripts may match on them.
const (
	// ReasonSucceeded: the last reconcile reached the spec.
	ReasonSucceeded = "Succeeded"
	// ReasonProgressing: the controller is part way through a change.
	ReasonProgressing = "Progressing"
	// ReasonInvalidSpec: the spec cannot be acted on; the message says which field and why.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonDependencyNotReady: a referenced object is missing or not ready yet.
	ReasonDependencyNotReady = "DependencyNotReady"
	// ReasonSuspended: spec.suspend is true, so the controller leaves the object alone.
	ReasonSuspended = "Suspended"
)

// Annotations a user sets to ask a controller for something once.
const (
	// AnnotationRotate asks for an emergency key rotation of a TokenPolicy. Every new value
	// rotates exactly once, so `kubectl annotate tokenpolicies --all -A camfleet.io/rotate=$(date +%s)`
	// rotates a whole fleet.
	AnnotationRotate = "camfleet.io/rotate"
	// AnnotationRotateRevoke, set to "true" beside AnnotationRotate, removes the previous keys
	// from the JWKS at once, so every token they signed stops working.
	AnnotationRotateRevoke = "camfleet.io/rotate-revoke"
)

// Labels a user sets to hand an object to camfleet.
const (
	// LabelPassword, set to LabelPasswordValue on a Secret, lets the token service read the
	// password hashes in it. A passwordSecretRef to a Secret without it fails every login: a
	// policy author must not be able to turn any Secret of the namespace into a password oracle.
	LabelPassword = "camfleet.io/password"
	// LabelPasswordValue is the one value of LabelPassword that marks a password Secret.
	LabelPasswordValue = "true"
)

// ConditionAgentsInSync is False on a TokenPolicy while agents serving its cameras have not
// loaded its newest key; the message names them. Absent when all is well.
const ConditionAgentsInSync = "AgentsInSync"

// ConditionSessionStoreAvailable is False on a TokenPolicy while a ConfigMap named like its
// refresh-session store, <policy>-sessions, exists that the policy does not own: the token
// service neither reads nor writes it, so every login and refresh of the policy fails. The
// message names the ConfigMap. Keys still rotate and tokens already issued still verify, so
// it stalls nothing. Absent when all is well.
const ConditionSessionStoreAvailable = "SessionStoreAvailable"

// ConditionExternalIssuersTrusted is False on a TokenPolicy while one or more of its
// spec.externalIssuers are left out: their keys cannot be resolved, or one reuses the kid of
// one of the policy's own keys. Their tokens are refused; the policy's own tokens and the other
// issuers' are unaffected. The message names each issuer left out and why, as
// status.verification.externalIssuers does. Absent when every external issuer is trusted.
const ConditionExternalIssuersTrusted = "ExternalIssuersTrusted"

// ReasonExternalIssuerLeftOut: at least one external issuer's keys cannot be used.
const ReasonExternalIssuerLeftOut = "ExternalIssuerLeftOut"

// ReasonForeignConfigMap: a ConfigMap under a name the policy's store needs belongs to
// someone else; the message says which, and to delete or rename it.
const ReasonForeignConfigMap = "ForeignConfigMap"

// Conditions of a Camera. The controller owns Ready, PolicyResolved and NodeResolved; the
// agent serving the camera owns Capturing, MotionDetection and KeysLoaded.
const (
	// ConditionPolicyResolved is True when the TokenPolicy governing the Camera exists.
	ConditionPolicyResolved = "PolicyResolved"
	// ConditionNodeResolved is True when the Node the Camera names exists.
	ConditionNodeResolved = "NodeResolved"
	// ConditionCapturing is True while the camera's source delivers frames.
	ConditionCapturing = "Capturing"
	// ConditionMotionDetection is True while motion detection runs on the frames (or is off).
	ConditionMotionDetection = "MotionDetection"
	// ConditionKeysLoaded is True when the agent holds verification keys for the camera's
	// policy; without them it refuses every request.
	ConditionKeysLoaded = "KeysLoaded"
)

// Reasons of a Camera's conditions.
const (
	// ReasonPolicyNotFound: the TokenPolicy the camera names, or the default, does not exist.
	ReasonPolicyNotFound = "PolicyNotFound"
	// ReasonNoPolicy: the camera names no TokenPolicy and the controller has no default.
	ReasonNoPolicy = "NoPolicy"
	// ReasonNodeNotFound: no Node of the camera's spec.nodeName exists.
	ReasonNodeNotFound = "NodeNotFound"
	// ReasonWaitingForAgent: no agent has reported on the camera yet.
	ReasonWaitingForAgent = "WaitingForAgent"
	// ReasonAgentLost: the agent's heartbeat in status is older than the bound.
	ReasonAgentLost = "AgentLost"
	// ReasonNoFrames: the agent is alive but the camera's frames have stopped.
	ReasonNoFrames = "NoFrames"
	// ReasonNoVerificationKeys: the agent holds no keys for the camera's policy.
	ReasonNoVerificationKeys = "NoVerificationKeys"
)
