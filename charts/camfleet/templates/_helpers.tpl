{{- define "camfleet.name" -}}camfleet-controller{{- end -}}

{{- define "camfleet.tokenService.name" -}}camfleet-token-service{{- end -}}

{{- define "camfleet.labels" -}}
app.kubernetes.io/name: camfleet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "camfleet.selector" -}}
app.kubernetes.io/name: camfleet
app.kubernetes.io/component: controller
{{- end -}}

{{- define "camfleet.tokenService.selector" -}}
app.kubernetes.io/name: camfleet
app.kubernetes.io/component: token-service
{{- end -}}

{{/*
camfleet.grant grants one ServiceAccount its rules: a ClusterRole and a ClusterRoleBinding,
or, with watchNamespaces, a Role and a RoleBinding in each of those namespaces and nothing
cluster-wide. It takes a dict: root (the chart's context), name (of the ServiceAccount and
the roles) and rules.
*/}}
{{- define "camfleet.grant" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $rules := .rules -}}
{{- if $root.Values.watchNamespaces }}
{{- range $ns := $root.Values.watchNamespaces }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  labels: {{- include "camfleet.labels" $root | nindent 4 }}
rules: {{- $rules | toYaml | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $name }}
  namespace: {{ $ns }}
  labels: {{- include "camfleet.labels" $root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- else }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $name }}
  labels: {{- include "camfleet.labels" $root | nindent 4 }}
rules: {{- $rules | toYaml | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $name }}
  labels: {{- include "camfleet.labels" $root | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $name }}
subjects:
  - kind: ServiceAccount
    name: {{ $name }}
    namespace: {{ $root.Release.Namespace }}
{{- end }}
{{- end -}}

{{- define "camfleet.agent.selector" -}}
app.kubernetes.io/name: camfleet
app.kubernetes.io/component: agent
{{- end -}}

{{/* camfleet.tokenServiceInClusterURL is where agents forward logins: the Service. */}}
{{- define "camfleet.tokenServiceInClusterURL" -}}
http://{{ include "camfleet.tokenService.name" . }}.{{ .Release.Namespace }}.svc:{{ .Values.tokenService.service.port }}
{{- end -}}
