{{/* Names, labels and the pieces the Deployment and the migration Job share. */}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sluice.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
{{- end }}

{{- define "sluice.configMapName" -}}
{{- .Values.existingConfigMap | default (printf "%s-config" (include "sluice.fullname" .)) }}
{{- end }}

{{- define "sluice.policiesConfigMapName" -}}
{{- .Values.policies.existingConfigMap | default (printf "%s-policies" (include "sluice.fullname" .)) }}
{{- end }}

{{- define "sluice.checkpointDir" -}}/var/run/secrets/sluice/checkpoint{{- end }}

{{/*
sluice.yaml: the user's config with what the chart owns laid over it. Secrets appear only as
${env:…} / ${file:…} references; the values come from Secrets at run time.
*/}}
{{- define "sluice.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $store := get $config "store" | default dict }}
{{- $_ := set $store "migrateOnStart" (eq .Values.migration.mode "onStart") }}
{{- if .Values.store.embedded }}
{{- $_ := set $store "dataDir" "/var/lib/sluice" }}
{{- end }}
{{- $_ := set $config "store" $store }}
{{- if .Values.checkpointKey.existingSecret }}
{{- $recording := get $config "recording" | default dict }}
{{- $_ := set $recording "checkpointKey" (printf "${file:%s/%s}" (include "sluice.checkpointDir" .) .Values.checkpointKey.key) }}
{{- $_ := set $config "recording" $recording }}
{{- end }}
{{- if .Values.webhook.existingSecret }}
{{- $recording := get $config "recording" | default dict }}
{{- $hook := get $recording "webhook" | default dict }}
{{- $_ := set $hook "secret" "${env:SLUICE_WEBHOOK_SECRET}" }}
{{- $_ := set $recording "webhook" $hook }}
{{- $_ := set $config "recording" $recording }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* Environment both the gateway and the migration Job need: the store. */}}
{{- define "sluice.storeEnv" -}}
{{- if not .Values.store.embedded }}
- name: SLUICE_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.store.existingSecret }}
      key: {{ .Values.store.urlKey }}
{{- end }}
{{- end }}

{{/* Refuse values that would render a deployment that cannot work. */}}
{{- define "sluice.validate" -}}
{{- if and .Values.store.embedded (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) }}
{{- fail "store.embedded keeps the store inside one pod: use replicaCount 1 without autoscaling, or a PostgreSQL store (store.existingSecret)" }}
{{- end }}
{{- if and (not .Values.store.embedded) (not .Values.store.existingSecret) }}
{{- fail "store.existingSecret: name the Secret holding the PostgreSQL URL (or set store.embedded for a single trial pod)" }}
{{- end }}
{{- if and (not .Values.store.embedded) (not .Values.secretsKey.existingSecret) }}
{{- fail "secretsKey.existingSecret: replicas on one PostgreSQL store must share secrets.key; name the Secret holding it" }}
{{- end }}
{{- if and .Values.store.embedded (eq .Values.migration.mode "job") }}
{{- fail "migration.mode job needs a PostgreSQL store: the embedded store lives in the pod, use migration.mode onStart" }}
{{- end }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (add (int .Values.preStopSleepSeconds) 16) }}
{{- fail (printf "terminationGracePeriodSeconds must be at least preStopSleepSeconds + 16 (the gateway drains for up to 15 s): %d" (add (int .Values.preStopSleepSeconds) 16)) }}
{{- end }}
{{- end }}
