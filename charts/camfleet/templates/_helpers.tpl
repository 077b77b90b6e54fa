{{- define "camfleet.name" -}}camfleet-controller{{- end -}}

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
