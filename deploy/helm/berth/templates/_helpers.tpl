{{/* Names and labels shared by every template. */}}
{{- define "berth.fullname" -}}
{{- default "berth" .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "berth.component" -}}
{{- if eq .Values.mode "extender" -}}extender{{- else if eq .Values.mode "scheduler" -}}scheduler{{- else -}}
{{- fail (printf "mode must be scheduler or extender, not %q" .Values.mode) -}}
{{- end -}}
{{- end -}}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: berth
app.kubernetes.io/component: {{ include "berth.component" . }}
{{- end -}}

{{- define "berth.labels" -}}
app.kubernetes.io/name: berth
app.kubernetes.io/part-of: berth
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "berth.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{- define "berth.tlsSecret" -}}
{{- default (printf "%s-serving-cert" (include "berth.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{/* The BerthConfiguration: the chart's settings, then .Values.config merged over them. */}}
{{- define "berth.config" -}}
{{- $c := dict "apiVersion" "berth.io/v1alpha1" "kind" "BerthConfiguration" "clientConnection" (dict "qps" 50 "burst" 100) -}}
{{- if eq .Values.mode "scheduler" -}}
{{- $profile := dict "schedulerName" .Values.schedulerName -}}
{{- if .Values.prometheus.enabled -}}
{{- $_ := set $c "metricSources" (list (dict "name" "prom" "type" "prometheus" "url" .Values.prometheus.url "refreshInterval" "15s" "timeout" "5s")) -}}
{{- $metric := dict "name" "cpu" "source" "prom" "query" "100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[2m])))" "nodeLabel" "instance" "direction" "lower" "maxAge" "2m" "estimatePerPod" 2 -}}
{{- $_ := set $profile "plugins" (dict "multiPoint" (dict "enabled" (list (dict "name" "MetricScore" "weight" .Values.prometheus.weight)))) -}}
{{- $_ := set $profile "pluginConfig" (list (dict "name" "MetricScore" "args" (dict "metrics" (list $metric)))) -}}
{{- end -}}
{{- $_ := set $c "profiles" (list $profile) -}}
{{- if .Values.leaderElection.enabled -}}
{{- $_ := set $c "leaderElection" (dict "leaderElect" true "resourceName" .Values.leaderElection.leaseName "resourceNamespace" .Release.Namespace) -}}
{{- end -}}
{{- if .Values.webhook.enabled -}}
{{- $server := printf "%s.%s.svc" (include "berth.fullname" .) .Release.Namespace -}}
{{- $_ := set $c "webhook" (dict "schedulerName" .Values.schedulerName "rules" .Values.webhook.rules "readyzURL" "https://{holderIdentity}/readyz" "readyzServerName" $server "readyzCAFile" "/etc/berth/berth-ca/ca.crt") -}}
{{- end -}}
{{- else -}}
{{- $_ := set $c "profiles" (list (dict "schedulerName" "default-scheduler")) -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite $c (deepCopy .Values.config)) -}}
{{- end -}}

{{- define "berth.webhookSecret" -}}
{{- default (printf "%s-webhook-cert" (include "berth.fullname" .)) .Values.webhook.tls.secretName -}}
{{- end -}}

{{- define "berth.webhookSelectorLabels" -}}
app.kubernetes.io/name: berth
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "berth.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "berth.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}
