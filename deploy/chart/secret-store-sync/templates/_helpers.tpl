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
