package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SourceType names the kind of frame source a Camera reads.
// +kubebuilder:validation:Enum=V4L2;TestPattern;MJPEGURL
type SourceType string

const (
	// SourceV4L2 reads a USB or CSI camera through Video4Linux2 on the camera's node.
	SourceV4L2 SourceType = "V4L2"
	// SourceTestPattern generates synthetic frames with scripted motion; no hardware needed.
	SourceTestPattern SourceType = "TestPattern"
	// SourceMJPEGURL reads an IP camera's MJPEG stream over HTTP.
	SourceMJPEGURL SourceType = "MJPEGURL"
)

// PixelFormat is the format a V4L2 device is asked to deliver.
// +kubebuilder:validation:Enum=MJPEG;YUYV
type PixelFormat string

const (
	// PixelFormatMJPEG: the camera compresses frames itself; they are streamed as they are.
	PixelFormatMJPEG PixelFormat = "MJPEG"
	// PixelFormatYUYV: uncompressed 4:2:2 frames; motion reads luma directly.
	PixelFormatYUYV PixelFormat = "YUYV"
)

// CameraSpec is what a camera owner asks of one camera.
type CameraSpec struct {
	// nodeName is the Kubernetes node the camera is attached to; the agent on that node serves
	// it. It is a selectable field: `kubectl get cameras --field-selector spec.nodeName=pi-1`.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	NodeName string `json:"nodeName"`

	// source says where frames come from: exactly one of v4l2, testPattern or mjpegURL,
	// named by type.
	// +required
	Source CameraSource `json:"source"`

	// motion configures motion detection on this camera's frames.
	// +optional
	// +kubebuilder:default={}
	Motion MotionSpec `json:"motion,omitempty"`

	// stream limits the MJPEG stream the agent serves for this camera.
	// +optional
	// +kubebuilder:default={}
	Stream StreamSpec `json:"stream,omitempty"`

	// tokenPolicyRef names the TokenPolicy whose tokens this camera accepts. When unset, the
	// controller's default governs the camera: its --default-token-policy flag names one
	// policy as namespace/name, or, as a bare name, the namespace's own policy of that name.
	// +optional
	TokenPolicyRef *PolicyReference `json:"tokenPolicyRef,omitempty"`

	// suspend stops capture and serving on this camera while true; nothing else changes.
	// +optional
	// +kubebuilder:default=false
	Suspend bool `json:"suspend,omitempty"`
}

// CameraSource is a discriminated union: type names the one member that is set.
// +kubebuilder:validation:XValidation:rule="[has(self.v4l2), has(self.testPattern), has(self.mjpegURL)].filter(x, x).size() == 1",message="exactly one of v4l2, testPattern or mjpegURL must be set"
// +kubebuilder:validation:XValidation:rule="self.type == 'V4L2' ? has(self.v4l2) : self.type == 'TestPattern' ? has(self.testPattern) : has(self.mjpegURL)",message="type must name the source that is set: V4L2 needs v4l2, TestPattern needs testPattern, MJPEGURL needs mjpegURL",fieldPath=".type"
// +kubebuilder:validation:XValidation:rule="!has(self.v4l2) || self.v4l2.pixelFormat != 'YUYV' || self.width % 2 == 0",message="width must be even for YUYV, which packs two pixels in four bytes",fieldPath=".width"
type CameraSource struct {
	// type is the kind of source: V4L2, TestPattern or MJPEGURL.
	// +required
	Type SourceType `json:"type"`

	// width in pixels of the frames to capture (160 to 4096).
	// +optional
	// +kubebuilder:default=640
	// +kubebuilder:validation:Minimum=160
	// +kubebuilder:validation:Maximum=4096
	Width int32 `json:"width,omitempty"`

	// height in pixels of the frames to capture (120 to 3072).
	// +optional
	// +kubebuilder:default=480
	// +kubebuilder:validation:Minimum=120
	// +kubebuilder:validation:Maximum=3072
	Height int32 `json:"height,omitempty"`

	// fps is the frame rate to capture at (1 to 60 frames per second).
	// +optional
	// +kubebuilder:default=15
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=60
	FPS int32 `json:"fps,omitempty"`

	// v4l2 reads a local USB or CSI camera. Set it when type is V4L2.
	// +optional
	V4L2 *V4L2Source `json:"v4l2,omitempty"`

	// testPattern generates frames with scripted motion, for demos and tests. Set it when
	// type is TestPattern.
	// +optional
	TestPattern *TestPatternSource `json:"testPattern,omitempty"`

	// mjpegURL is the http or https URL of an IP camera's MJPEG stream
	// (multipart/x-mixed-replace). Set it when type is MJPEGURL.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="must be an absolute http or https URL such as http://10.0.0.7:8081/stream.mjpeg"
	MJPEGURL string `json:"mjpegURL,omitempty"`
}

// V4L2Source is a Video4Linux2 capture device on the camera's node.
type V4L2Source struct {
	// device is the path of the capture device, such as /dev/video0 or
	// /dev/v4l/by-id/usb-046d_HD_Webcam-video-index0 (stable across reboots).
	// +required
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.matches('^/dev/[A-Za-z0-9_.:/-]+$') && !self.contains('..')",message="must be a device path under /dev, such as /dev/video0"
	Device string `json:"device"`

	// pixelFormat is what the device is asked to deliver: MJPEG (streamed as is, the usual
	// choice for USB cameras) or YUYV.
	// +optional
	// +kubebuilder:default=MJPEG
	PixelFormat PixelFormat `json:"pixelFormat,omitempty"`
}

// TestPatternSource generates frames: a still background with an object that moves across
// it on a schedule, so motion detection and alerts can be seen without a camera.
// +kubebuilder:validation:XValidation:rule="duration(self.motionDuration) < duration(self.motionEvery)",message="motionDuration must be shorter than motionEvery",fieldPath=".motionDuration"
type TestPatternSource struct {
	// motionEvery is how often a moving object crosses the frame, such as 30s.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('1s')",message="must be a duration of at least 1s, such as 30s or 5m"
	MotionEvery *metav1.Duration `json:"motionEvery,omitempty"`

	// motionDuration is how long each crossing lasts, such as 5s.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) >= duration('100ms')",message="must be a duration of at least 100ms, such as 5s"
	MotionDuration *metav1.Duration `json:"motionDuration,omitempty"`

	// objectPerMille is the moving object's side as a share of the frame's width, in
	// thousandths (100 = a tenth of the width).
	// +optional
	// +kubebuilder:default=150
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=1000
	ObjectPerMille int32 `json:"objectPerMille,omitempty"`
}

// MotionSpec tunes motion detection. Detection runs on a reduced luma grid (one cell per 8x8
// pixels) against a slowly adapting background; `camfleet-motion` replays a recording with
// these settings as flags, to tune them.
type MotionSpec struct {
	// enabled turns motion detection on.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// threshold is how much a cell's brightness (0-255) must differ from the background to
	// count as changed.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	Threshold int32 `json:"threshold,omitempty"`

	// minAreaPerMille is the smallest changed area, in thousandths of the unmasked frame,
	// that counts as motion (10 = 1%).
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MinAreaPerMille int32 `json:"minAreaPerMille,omitempty"`

	// consecutiveFrames is how many frames in a row must show motion to start an event.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=300
	ConsecutiveFrames int32 `json:"consecutiveFrames,omitempty"`

	// eventGap is how long without motion ends an event, such as 10s.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) <= duration('1h')",message="must be a duration of at most 1h, such as 10s"
	EventGap *metav1.Duration `json:"eventGap,omitempty"`

	// lightSwitchPerMille: a change covering more than this share of the frame, in
	// thousandths, is taken for lights switched on or an IR filter flipping; it resets the
	// background instead of raising an event. 1000 turns suppression off.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	LightSwitchPerMille int32 `json:"lightSwitchPerMille,omitempty"`

	// masks are regions where motion is ignored (a road, a tree), at most 16.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Masks []MaskRegion `json:"masks,omitempty"`
}

// MaskRegion is a rectangle in normalized frame coordinates, in thousandths: (0,0) is the
// top-left corner and (1000,1000) the bottom-right, whatever the resolution.
// +kubebuilder:validation:XValidation:rule="self.left + self.width <= 1000",message="mask must lie inside the frame: left + width must be at most 1000",fieldPath=".width"
// +kubebuilder:validation:XValidation:rule="self.top + self.height <= 1000",message="mask must lie inside the frame: top + height must be at most 1000",fieldPath=".height"
type MaskRegion struct {
	// left is the distance of the left edge from the frame's left side, 0 to 1000. (Not "x":
	// YAML 1.1 reads a bare y as true, so x/y names would trap users.)
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Left int32 `json:"left"`
	// top is the distance of the top edge from the frame's top, 0 to 1000.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Top int32 `json:"top"`
	// width, 1 to 1000.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Width int32 `json:"width"`
	// height, 1 to 1000.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Height int32 `json:"height"`
}

// StreamSpec limits the MJPEG stream of a camera.
type StreamSpec struct {
	// maxClients is how many stream viewers the agent serves at once for this camera; more
	// get 503.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxClients int32 `json:"maxClients,omitempty"`

	// maxFPS caps the frame rate sent to each viewer; 0 sends every frame.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=60
	MaxFPS int32 `json:"maxFPS,omitempty"`
}

// PolicyReference names a TokenPolicy.
type PolicyReference struct {
	// name of the TokenPolicy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// namespace of the TokenPolicy; the referring object's namespace when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// CameraStatus is written by two hands, each owning its own fields through server-side apply,
// so neither ever overwrites the other: the controller (field manager camfleet-controller)
// writes tokenPolicy, observedGeneration and the Ready, PolicyResolved and NodeResolved
// conditions; the agent serving the camera (field manager camfleet-agent) writes everything
// else, with the Capturing, MotionDetection and KeysLoaded conditions.
type CameraStatus struct {
	// conditions: Ready (the controller's summary), PolicyResolved and NodeResolved (the
	// controller's), Capturing, MotionDetection and KeysLoaded (the agent's).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the controller last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// tokenPolicy is the namespace/name of the TokenPolicy that governs the camera: its
	// tokenPolicyRef, or the controller's default policy when that is unset.
	// +optional
	// +kubebuilder:validation:MaxLength=317
	TokenPolicy string `json:"tokenPolicy,omitempty"`

	// lastHeartbeatTime is when the serving agent last wrote this status. Agents write at
	// least every 75 seconds; the controller reports AgentLost when it is older than 110.
	// +optional
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`

	// endpoint is the URL of the camera's API on its agent.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Endpoint string `json:"endpoint,omitempty"`

	// resolution the source actually delivers, such as 640x480 (drivers may adjust the
	// requested size).
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Resolution string `json:"resolution,omitempty"`

	// fps is the measured frame rate, such as "14.9".
	// +optional
	// +kubebuilder:validation:MaxLength=16
	FPS string `json:"fps,omitempty"`

	// lastFrameTime is when the last frame was captured, as of lastHeartbeatTime.
	// +optional
	LastFrameTime *metav1.Time `json:"lastFrameTime,omitempty"`

	// lastMotionTime is when the last motion event started.
	// +optional
	LastMotionTime *metav1.Time `json:"lastMotionTime,omitempty"`

	// motionEvents counts the motion events since the agent started serving the camera.
	// +optional
	MotionEvents int64 `json:"motionEvents,omitempty"`

	// enforcedKeyID is the kid of the policy's active key as the agent last loaded it.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	EnforcedKeyID string `json:"enforcedKeyID,omitempty"`

	// loadedKeyIDs are the kids of the JWKS the agent has loaded for this camera's policy. The
	// controller activates a new key only once every reporting agent holds it.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=128
	LoadedKeyIDs []string `json:"loadedKeyIDs,omitempty"`
}

// Camera is one camera on one node: where its frames come from, how motion is detected, and
// which TokenPolicy's tokens it accepts.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cam,categories=camfleet
// +kubebuilder:selectablefield:JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.spec.source.type`
// +kubebuilder:printcolumn:name="Resolution",type=string,JSONPath=`.status.resolution`
// +kubebuilder:printcolumn:name="FPS",type=string,JSONPath=`.status.fps`
// +kubebuilder:printcolumn:name="Motion",type=date,JSONPath=`.status.lastMotionTime`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Policy",type=string,priority=1,JSONPath=`.status.tokenPolicy`
// +kubebuilder:printcolumn:name="Message",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Camera struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the camera as its owner wants it.
	// +required
	Spec CameraSpec `json:"spec"`

	// status is what the controller resolves and the serving agent observes.
	// +optional
	Status CameraStatus `json:"status,omitempty"`
}

// CameraList is a list of Cameras.
//
// +kubebuilder:object:root=true
type CameraList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Camera `json:"items"`
}

func init() {
	register(&Camera{}, &CameraList{})
}
