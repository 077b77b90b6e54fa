package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SigningAlgorithm is the JWS algorithm a policy signs with. HMAC is deliberately absent: an
// agent holds the verification key, and must never hold material that can sign.
// +kubebuilder:validation:Enum=EdDSA;ES256;RS256
type SigningAlgorithm string

const (
	// AlgorithmEdDSA signs with Ed25519: small keys, fast verification. The default.
	AlgorithmEdDSA SigningAlgorithm = "EdDSA"
	// AlgorithmES256 signs with ECDSA on P-256.
	AlgorithmES256 SigningAlgorithm = "ES256"
	// AlgorithmRS256 signs with RSA PKCS#1 v1.5 and SHA-256, for verifiers that know nothing else.
	AlgorithmRS256 SigningAlgorithm = "RS256"
)

// KeyState is where a signing key is in its lifecycle: Pending (published, not signing yet),
// Active (the one key that signs), Retiring (published so its tokens verify, not signing).
// +kubebuilder:validation:Enum=Pending;Active;Retiring
type KeyState string

const (
	// KeyPending is published in the JWKS but does not sign yet.
	KeyPending KeyState = "Pending"
	// KeyActive is the one key that signs.
	KeyActive KeyState = "Active"
	// KeyRetiring is published so the tokens it signed still verify, and signs nothing.
	KeyRetiring KeyState = "Retiring"
)

// TokenPolicySpec is how one group of cameras is protected: who issues tokens, with which
// keys, for how long, and who may have them.
// +kubebuilder:validation:XValidation:rule="!has(self.rsaKeyBits) || self.algorithm == 'RS256'",message="rsaKeyBits applies only when algorithm is RS256",fieldPath=".rsaKeyBits"
// +kubebuilder:validation:XValidation:rule="!has(self.users) || self.users.all(u, !has(u.roles) || u.roles.all(r, has(self.roles) && self.roles.exists(x, x.name == r)))",message="every role named in users[].roles must be defined in roles",fieldPath=".users"
// +kubebuilder:validation:XValidation:rule="!has(self.externalIssuers) || self.externalIssuers.all(e, !has(e.roles) || e.roles.all(r, has(self.roles) && self.roles.exists(x, x.name == r)))",message="every role named in externalIssuers[].roles must be defined in roles",fieldPath=".externalIssuers"
type TokenPolicySpec struct {
	// issuer is the `iss` claim of the tokens this policy signs. When unset it is the token
	// service's external URL followed by /policies/<namespace>/<name>, where OpenID Connect
	// discovery finds its documents.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https']",message="must be an absolute http or https URL"
	Issuer string `json:"issuer,omitempty"`

	// audience lists the `aud` values of issued tokens; agents accept a token whose aud
	// contains one of them.
	// +optional
	// +listType=set
	// +kubebuilder:default={"camfleet"}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Audience []string `json:"audience,omitempty"`

	// algorithm signs every token of this policy: EdDSA (default), ES256 or RS256. Changing
	// it rotates to a key of the new algorithm through the normal lifecycle.
	// +optional
	// +kubebuilder:default=EdDSA
	Algorithm SigningAlgorithm `json:"algorithm,omitempty"`

	// rsaKeyBits is the RSA modulus size for RS256 keys: 2048 to 8192, 3072 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=2048
	// +kubebuilder:validation:Maximum=8192
	// +kubebuilder:validation:MultipleOf=256
	RSAKeyBits int32 `json:"rsaKeyBits,omitempty"`

	// rotation schedules signing-key rotation.
	// +optional
	// +kubebuilder:default={}
	Rotation RotationSpec `json:"rotation,omitempty"`

	// tokens sets token lifetimes and what verifiers tolerate.
	// +optional
	// +kubebuilder:default={}
	Tokens TokenLifetimes `json:"tokens,omitempty"`

	// roles map names to permissions, such as viewer: ["camera:stream,snapshot:*"].
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Roles []Role `json:"roles,omitempty"`

	// users who log in with a password at the token service.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	Users []User `json:"users,omitempty"`

	// externalIssuers are other issuers whose tokens agents accept, such as a home-automation
	// server that signs with its own RS256 key.
	// +optional
	// +listType=map
	// +listMapKey=issuer
	// +kubebuilder:validation:MaxItems=8
	ExternalIssuers []ExternalIssuer `json:"externalIssuers,omitempty"`

	// revokedTokenIDs lists token IDs (jti) that every agent refuses from now on.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4096
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	RevokedTokenIDs []string `json:"revokedTokenIDs,omitempty"`
}

// RotationSpec schedules key rotation.
// +kubebuilder:validation:XValidation:rule="!has(self.period) || !has(self.publishAhead) || duration(self.period) > duration(self.publishAhead)",message="period must be longer than publishAhead, so each new key is published before it must sign",fieldPath=".period"
// +kubebuilder:validation:XValidation:rule="!has(self.maxActivationWait) || !has(self.publishAhead) || duration(self.maxActivationWait) >= duration(self.publishAhead)",message="maxActivationWait must be at least publishAhead",fieldPath=".maxActivationWait"
type RotationSpec struct {
	// period is how long a key signs before the next one takes over, such as 720h (30 days).
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('1m')",message="must be a duration of at least 1m, such as 720h"
	Period *metav1.Duration `json:"period,omitempty"`

	// publishAhead is how long a new key is published before it signs; it must cover the
	// agents' worst-case delay in loading the JWKS.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+)$')",message="must be a duration such as 10m"
	PublishAhead *metav1.Duration `json:"publishAhead,omitempty"`

	// maxActivationWait is how long a published key waits for every agent to load it before
	// it signs anyway; the Ready condition then names the agents that lag.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+)$')",message="must be a duration such as 1h"
	MaxActivationWait *metav1.Duration `json:"maxActivationWait,omitempty"`
}

// TokenLifetimes sets how long tokens live and what verifiers tolerate.
// +kubebuilder:validation:XValidation:rule="!has(self.accessTTL) || duration(self.accessTTL) != duration('0s') || (has(self.allowNonExpiring) && self.allowNonExpiring)",message="accessTTL may be 0 (tokens that never expire) only when allowNonExpiring is true",fieldPath=".accessTTL"
// +kubebuilder:validation:XValidation:rule="!has(self.accessTTL) || !has(self.refreshTTL) || duration(self.accessTTL) == duration('0s') || duration(self.refreshTTL) >= duration(self.accessTTL)",message="refreshTTL must not be shorter than accessTTL",fieldPath=".refreshTTL"
// +kubebuilder:validation:XValidation:rule="!has(self.accessTTL) || !has(self.maxTTL) || duration(self.accessTTL) <= duration(self.maxTTL)",message="accessTTL must not be longer than maxTTL",fieldPath=".accessTTL"
type TokenLifetimes struct {
	// accessTTL is the lifetime of access tokens from login and refresh, such as 15m. 0 means
	// they never expire, for clients that cannot refresh; it needs allowNonExpiring.
	// +optional
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+)$')",message="must be a duration such as 15m, or 0"
	AccessTTL *metav1.Duration `json:"accessTTL,omitempty"`

	// refreshTTL is the lifetime of refresh tokens, such as 720h.
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 720h"
	RefreshTTL *metav1.Duration `json:"refreshTTL,omitempty"`

	// maxTTL is the longest lifetime (exp - iat) of any token this policy's verifiers accept,
	// AccessTokens included; retired keys stay published at least this long plus leeway.
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 720h"
	MaxTTL *metav1.Duration `json:"maxTTL,omitempty"`

	// leeway is the clock skew verifiers tolerate on exp, nbf and iat: at most 5m.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+)$') && duration(self) <= duration('5m')",message="must be a duration of at most 5m, such as 30s"
	Leeway *metav1.Duration `json:"leeway,omitempty"`

	// allowNonExpiring permits tokens without expiry (accessTTL 0, or an AccessToken with
	// nonExpiring). Such a token can only be stopped by revoking its ID or its key.
	// +optional
	// +kubebuilder:default=false
	AllowNonExpiring bool `json:"allowNonExpiring,omitempty"`

	// allowQueryToken lets a browser pass the access token as ?access_token= on the MJPEG
	// stream, where it cannot send a header. Off by default; such tokens are never logged.
	// +optional
	// +kubebuilder:default=false
	AllowQueryToken bool `json:"allowQueryToken,omitempty"`
}

// Permission is a Shiro-style permission: parts separated by ':' (resource:action:instance),
// alternatives by ',', and '*' as a wildcard, such as camera:stream,snapshot:cams/*.
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_.*/-]+(,[A-Za-z0-9_.*/-]+)*(:[A-Za-z0-9_.*/-]+(,[A-Za-z0-9_.*/-]+)*)*$')",message="must be a permission such as camera:stream:cams/backyard: parts separated by ':', alternatives by ',', '*' as wildcard"
type Permission string

// Role is a named set of permissions.
type Role struct {
	// name of the role, such as viewer or admin.
	// +required
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="must be lower-case letters, digits and '-', such as viewer"
	Name string `json:"name"`

	// permissions the role grants.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Permissions []Permission `json:"permissions"`
}

// User is a person or device that logs in with a password.
type User struct {
	// name is what the user types at login.
	// +required
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9][A-Za-z0-9_.@-]*$')",message="must start with a letter or digit and hold only letters, digits, '_', '.', '@' and '-'"
	Name string `json:"name"`

	// roles granted to the user; each must be defined in the policy's roles.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	Roles []string `json:"roles,omitempty"`

	// passwordSecretRef names the Secret key, in the policy's namespace, holding the user's
	// bcrypt password hash. The Secret must carry the label camfleet.io/password: "true";
	// the token service reads no other Secret, so a login with an unlabelled one fails as a
	// wrong password does. The hash never appears in status, Events or logs.
	// +required
	PasswordSecretRef SecretKeyReference `json:"passwordSecretRef"`
}

// SecretKeyReference names one key of a Secret in the referring object's namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key in the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// ConfigMapKeyReference names one key of a ConfigMap in the referring object's namespace.
type ConfigMapKeyReference struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key in the ConfigMap's data; jwks.json when unset.
	// +optional
	// +kubebuilder:default="jwks.json"
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// ExternalIssuer is another issuer whose tokens this policy's verifiers accept, with the same
// strictness as the policy's own.
// +kubebuilder:validation:XValidation:rule="has(self.publicKeys) != has(self.jwksConfigMapRef)",message="set exactly one of publicKeys or jwksConfigMapRef"
type ExternalIssuer struct {
	// issuer is the exact `iss` of the external tokens.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Issuer string `json:"issuer"`

	// audience is the `aud` the external tokens must carry; the policy's audience when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Audience string `json:"audience,omitempty"`

	// publicKeys are the issuer's verification keys, each a PEM public key or a JWK (JSON).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=16384
	PublicKeys []string `json:"publicKeys,omitempty"`

	// jwksConfigMapRef names a ConfigMap key holding the issuer's JWKS.
	// +optional
	JWKSConfigMapRef *ConfigMapKeyReference `json:"jwksConfigMapRef,omitempty"`

	// subjectClaim is the claim whose value becomes the subject; sub when unset.
	// +optional
	// +kubebuilder:default="sub"
	// +kubebuilder:validation:MaxLength=128
	SubjectClaim string `json:"subjectClaim,omitempty"`

	// roles granted to every token of this issuer; each must be defined in the policy's roles.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	Roles []string `json:"roles,omitempty"`
}

// KeyStatus describes one signing key. Its private half stays in the policy's Secret.
type KeyStatus struct {
	// kid is the key's RFC 7638 thumbprint, as published in the JWKS.
	// +required
	KeyID string `json:"kid"`
	// algorithm of the key.
	// +required
	Algorithm SigningAlgorithm `json:"algorithm"`
	// state: Pending, Active or Retiring.
	// +required
	State KeyState `json:"state"`
	// created is when the key was generated and first published.
	// +required
	Created metav1.Time `json:"created"`
	// activates is when the key starts (or started) signing.
	// +optional
	Activates *metav1.Time `json:"activates,omitempty"`
	// retires is when the key stops (or stopped) signing.
	// +optional
	Retires *metav1.Time `json:"retires,omitempty"`
	// removeAfter is when the key leaves the JWKS, once every token it signed has expired.
	// +optional
	RemoveAfter *metav1.Time `json:"removeAfter,omitempty"`
	// agents, on the pending and the active key, is how many of the agents serving the
	// policy's cameras have loaded the key, out of how many, such as 3/3.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Agents string `json:"agents,omitempty"`
	// laggingNodes, on the pending and the active key, names the nodes whose agent has not
	// loaded the key yet, sorted; at most 16 are named, and agents counts them all.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	LaggingNodes []string `json:"laggingNodes,omitempty"`
}

// TokenPolicyStatus is the state of a policy's keys and of the agents enforcing it.
type TokenPolicyStatus struct {
	// conditions: Ready, KeysPublished, and Reconciling or Stalled when abnormal.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// issuer is the effective `iss` of this policy's tokens.
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// keys lists every key in the JWKS, with its state and times.
	// +optional
	// +listType=map
	// +listMapKey=kid
	// +kubebuilder:validation:MaxItems=16
	Keys []KeyStatus `json:"keys,omitempty"`

	// activeKeyID is the kid of the key that signs now.
	// +optional
	ActiveKeyID string `json:"activeKeyID,omitempty"`

	// lastRotationTime is when a key last became active.
	// +optional
	LastRotationTime *metav1.Time `json:"lastRotationTime,omitempty"`

	// nextRotationTime is when the next scheduled rotation is due.
	// +optional
	NextRotationTime *metav1.Time `json:"nextRotationTime,omitempty"`

	// lastRotateRequest is the last value of the camfleet.io/rotate annotation acted on.
	// +optional
	LastRotateRequest string `json:"lastRotateRequest,omitempty"`

	// secretName is the Secret holding this policy's private keys.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// configMapName is the ConfigMap holding this policy's public JWKS and revocation list.
	// +optional
	ConfigMapName string `json:"configMapName,omitempty"`

	// agentsLoaded counts the agents serving this policy's cameras that hold the active key.
	// +optional
	AgentsLoaded int32 `json:"agentsLoaded,omitempty"`

	// agentsTotal counts the agents serving this policy's cameras.
	// +optional
	AgentsTotal int32 `json:"agentsTotal,omitempty"`

	// agents is agentsLoaded/agentsTotal, for display.
	// +optional
	Agents string `json:"agents,omitempty"`

	// verification is everything a verifier needs to check this policy's tokens, public
	// material only: agents read it here, so they never need Secrets or ConfigMaps.
	// +optional
	Verification *VerificationStatus `json:"verification,omitempty"`
}

// VerificationStatus is what the controller publishes for verifiers: the policy's public keys,
// the revoked token IDs and each trusted external issuer's resolved keys. It never holds
// anything that can sign.
type VerificationStatus struct {
	// jwks is the JSON Web Key Set (RFC 7517) of every published key of this policy, public
	// members only, the same document as the ConfigMap's jwks.json.
	// +optional
	// +kubebuilder:validation:MaxLength=262144
	JWKS string `json:"jwks,omitempty"`

	// revokedTokenIDs are the token IDs (jti) every verifier refuses, sorted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4096
	// +kubebuilder:validation:items:MaxLength=128
	RevokedTokenIDs []string `json:"revokedTokenIDs,omitempty"`

	// externalIssuers are the trusted external issuers with their keys resolved (inline keys
	// and ConfigMap JWKS alike, as a JWKS).
	// +optional
	// +listType=map
	// +listMapKey=issuer
	// +kubebuilder:validation:MaxItems=8
	ExternalIssuers []ExternalIssuerStatus `json:"externalIssuers,omitempty"`
}

// ExternalIssuerStatus is one trusted external issuer as verifiers use it.
type ExternalIssuerStatus struct {
	// issuer is the exact `iss` of the external tokens.
	// +required
	// +kubebuilder:validation:MaxLength=512
	Issuer string `json:"issuer"`

	// audience is the `aud` its tokens must carry.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Audience string `json:"audience,omitempty"`

	// subjectClaim is the claim whose value becomes the subject.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	SubjectClaim string `json:"subjectClaim,omitempty"`

	// roles granted to every token of this issuer.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	Roles []string `json:"roles,omitempty"`

	// jwks is the issuer's resolved public keys as a JSON Web Key Set; empty when they could
	// not be resolved (message says why), and then its tokens are refused.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	JWKS string `json:"jwks,omitempty"`

	// message says why the keys could not be resolved, when they could not.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// TokenPolicy governs how a group of cameras is protected: its signing keys and their
// rotation, token lifetimes, roles, users and trusted external issuers.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tp,categories=camfleet
// +kubebuilder:printcolumn:name="Algorithm",type=string,JSONPath=`.spec.algorithm`
// +kubebuilder:printcolumn:name="Active Key",type=string,JSONPath=`.status.activeKeyID`
// +kubebuilder:printcolumn:name="Last Rotation",type=date,JSONPath=`.status.lastRotationTime`
// +kubebuilder:printcolumn:name="Next Rotation",type=string,JSONPath=`.status.nextRotationTime`,description="When the next scheduled rotation is due (RFC 3339): kubectl renders date columns only for past times"
// +kubebuilder:printcolumn:name="Agents",type=string,JSONPath=`.status.agents`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TokenPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the policy as its owner wants it.
	// +required
	Spec TokenPolicySpec `json:"spec"`

	// status is what the controller has done about it.
	// +optional
	Status TokenPolicyStatus `json:"status,omitempty"`
}

// TokenPolicyList is a list of TokenPolicies.
//
// +kubebuilder:object:root=true
type TokenPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TokenPolicy `json:"items"`
}

func init() {
	register(&TokenPolicy{}, &TokenPolicyList{})
}
