{{- define "sss.labels" -}}
app.kubernetes.io/name: secret-store-sync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sss.selector" -}}
app.kubernetes.io/name: secret-store-sync
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The manager's user name as the apiserver sees it: the policies match on it. */}}
{{- define "sss.managerUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ .Values.serviceAccountName }}
{{- end }}

{{- define "sss.image" -}}
{{ .image.repository }}:{{ .image.tag | default .appVersion }}
{{- end }}

{{/* Where /healthz and /readyz listen. With hostNetwork the pod's ports are the node's: health
  stays on the node's loopback, where the probes (host: 127.0.0.1) reach it. Otherwise the pod's
  own addresses: the kubelet probes the pod IP, and the NetworkPolicy admits no one else. */}}
{{- define "sss.healthBind" -}}
{{ ternary "127.0.0.1" "0.0.0.0" (eq .Values.hostNetwork true) }}
{{- end }}

{{/* Where /metrics listens: metrics.bindAddress, else every pod address, or with hostNetwork the
  node's own address only (not every interface of the node). */}}
{{- define "sss.metricsBind" -}}
{{ .Values.metrics.bindAddress | default (ternary "$(HOST_IP)" "0.0.0.0" (eq .Values.hostNetwork true)) }}
{{- end }}
