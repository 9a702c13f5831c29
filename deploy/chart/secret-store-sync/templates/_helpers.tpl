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

{{/*
The ValidatingAdmissionPolicy API the cluster serves: v1 from Kubernetes 1.30 (GA, on by default),
v1beta1 on 1.28-1.29 only where the cluster serves it (off by default there), none on 1.27.
Against a cluster (install, upgrade) its discovery alone decides, whatever its release: a 1.30+
cluster may have v1 turned off. Only `helm template` without one decides from --kube-version (or
helm's own default): helm's built-in list names API groups but no kinds, so `v1/Namespace` tells the two apart.
*/}}
{{- define "sss.admissionApiVersion" -}}
{{- $g := "admissionregistration.k8s.io" -}}
{{- $apis := .Capabilities.APIVersions -}}
{{- if .Values.admissionPolicies.apiVersion -}}
{{- printf "%s/%s" $g .Values.admissionPolicies.apiVersion -}}
{{- else if $apis.Has (printf "%s/v1/ValidatingAdmissionPolicy" $g) -}}
{{- printf "%s/v1" $g -}}
{{- else if $apis.Has (printf "%s/v1beta1/ValidatingAdmissionPolicy" $g) -}}
{{- printf "%s/v1beta1" $g -}}
{{- else if and (not ($apis.Has "v1/Namespace")) (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) -}}
{{- printf "%s/v1" $g -}}
{{- end -}}
{{- end -}}

{{/* Every audience some provider gets tokens for, as a JSON list: what the RBAC rule and the
  token admission policy allow, in step with the manager's --provider-token-audiences. */}}
{{- define "sss.tokenAudiences" -}}
{{- $all := .Values.provider.tokenAudiences | default list }}
{{- range .Values.extraProviders | default list }}{{ $all = concat $all (.tokenAudiences | default list) }}{{ end }}
{{- toJson (without (uniq $all) "") }}
{{- end }}
