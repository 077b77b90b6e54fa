package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AccessTokenSpec asks for a token for a machine client, such as a cloud worker, kept fresh
// in a Secret the way cert-manager keeps a certificate fresh.
// +kubebuilder:validation:XValidation:rule="!has(self.ttl) || self.nonExpiring || duration(self.ttl) > duration('0s')",message="ttl must be greater than 0; a token that never expires needs nonExpiring: true",fieldPath=".ttl"
// +kubebuilder:validation:XValidation:rule="!self.nonExpiring || !has(self.ttl) || duration(self.ttl) == duration('0s')",message="ttl must be unset or 0 when nonExpiring is true",fieldPath=".ttl"
// +kubebuilder:validation:XValidation:rule="self.nonExpiring || !has(self.ttl) || duration(self.renewBefore) < duration(self.ttl)",message="renewBefore must be shorter than ttl",fieldPath=".renewBefore"
type AccessTokenSpec struct {
	// policyName is the TokenPolicy, in this namespace, that signs the token.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	PolicyName string `json:"policyName"`

	// subject is the token's `sub` claim, such as cloud-worker.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Subject string `json:"subject"`

	// roles granted to the token; each must be defined in the policy.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	Roles []string `json:"roles,omitempty"`

	// ttl is the token's lifetime, such as 24h; the policy's accessTTL when unset. It must
	// not exceed the policy's maxTTL.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+)$')",message="must be a duration such as 24h"
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// nonExpiring asks for a token without expiry; the policy must allow it
	// (spec.tokens.allowNonExpiring). Revoke it by listing its ID in the policy.
	// +optional
	// +kubebuilder:default=false
	NonExpiring bool `json:"nonExpiring,omitempty"`

	// renewBefore is how long before expiry a new token replaces the old one, such as 1h.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",message="must be a positive duration such as 1h"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// secretName is the Secret, in this namespace, the token is written to (key `token`, with
	// its expiry beside it). Immutable: make a new AccessToken to write elsewhere.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="must be a valid Secret name: lower-case letters, digits, '-' and '.'"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="secretName is immutable; create a new AccessToken to write another Secret"
	SecretName string `json:"secretName"`
}

// AccessTokenStatus describes the token currently in the Secret, never the token itself.
type AccessTokenStatus struct {
	// conditions: Ready, and Reconciling or Stalled when abnormal.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// tokenID is the jti of the token in the Secret; list it in the policy's revokedTokenIDs
	// to revoke it.
	// +optional
	TokenID string `json:"tokenID,omitempty"`

	// keyID is the kid of the key that signed the token.
	// +optional
	KeyID string `json:"keyID,omitempty"`

	// issuedTime is when the token was minted.
	// +optional
	IssuedTime *metav1.Time `json:"issuedTime,omitempty"`

	// expirationTime is when the token expires; unset for a non-expiring token.
	// +optional
	ExpirationTime *metav1.Time `json:"expirationTime,omitempty"`

	// renewalTime is when the controller will mint the next token.
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`
}

// AccessToken keeps a signed token for one subject fresh in a Secret, for clients that read
// a Secret instead of logging in.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=atok,categories=camfleet
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.policyName`
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expirationTime`,description="When the token in the Secret expires (RFC 3339): kubectl renders date columns only for past times"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AccessToken struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the token as its owner wants it.
	// +required
	Spec AccessTokenSpec `json:"spec"`

	// status describes the token in the Secret.
	// +optional
	Status AccessTokenStatus `json:"status,omitempty"`
}

// AccessTokenList is a list of AccessTokens.
//
// +kubebuilder:object:root=true
type AccessTokenList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AccessToken `json:"items"`
}

func init() {
	register(&AccessToken{}, &AccessTokenList{})
}
